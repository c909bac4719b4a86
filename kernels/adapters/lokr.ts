// LoKr (LyCORIS): ΔW = kron(w1, w2) × scale, the output and input dimensions each split into two
// factors (`factorization`, LyCORIS' rule), w1 the small [out_l, in_m] factor and w2 the large
// [out_k, in_n(, kh, kw)] one. w2 is low-rank (lokr_w2_a · lokr_w2_b) when the rank is under half its
// size, and w1 too with `decomposeBoth`; `fullMatrix` keeps both whole. Initialisation as LyCORIS:
// w1 (or its factors) and w2_a kaiming-uniform, w2 (or w2_b) zero. scale = alpha / rank, except 1
// when both factors are full matrices (alpha is then meaningless and saved as the rank).
import type { Tensor } from '../tensor';
import { conv2d } from '../ops/nn';
import { mul } from '../ops/elementwise';
import { reshape } from '../ops/shape-and-reduce';
import { matmul } from '../ops/nn';
import { transposeLast2 } from '../ops/shape-and-reduce';
import type { ModuleInfo } from '../nn/builder';
import { matmulHost, type AdapterModule, type AdapterParam } from './module';

export interface LokrConfig {
  /** Rank of the low-rank factors (LyCORIS' linear_dim / conv_dim). */
  rank: number;
  alpha?: number;
  /** Size of the smaller factor; −1 (default) splits as close to √dim as possible. */
  factor?: number;
  /** Also decompose w1 into w1_a · w1_b when the rank is small enough. */
  decomposeBoth?: boolean;
  /** Full-rank: w1 and w2 both whole matrices. */
  fullMatrix?: boolean;
}

/** LyCORIS' factorization: (m, n) with m·n = dimension, m ≤ n, m as close to `factor` (or √dimension) as allowed. */
export function factorization(dimension: number, factor = -1): [number, number] {
  if (factor > 0 && dimension % factor === 0) {
    const m = factor, n = dimension / factor;
    return m > n ? [n, m] : [m, n];
  }
  const limit = factor < 0 ? dimension : factor;
  let m = 1, n = dimension;
  const length = m + n;
  while (m < n) {
    let newM = m + 1;
    while (dimension % newM !== 0) newM++;
    const newN = dimension / newM;
    if (newM + newN > length || newM > limit) break;
    m = newM; n = newN;
  }
  return m > n ? [n, m] : [m, n];
}

export function lokrModule(name: string, info: ModuleInfo, cfg: LokrConfig): AdapterModule {
  const { rank, factor = -1, decomposeBoth = false, fullMatrix = false } = cfg;
  if (!(Number.isInteger(rank) && rank >= 1)) throw new Error(`${info.module}: LoKr rank must be a positive integer, got ${rank}`);
  if (info.kind === 'conv' && info.groups !== 1) throw new Error(`${info.module}: grouped convolutions cannot take a LoKr`);
  const outDim = info.kind === 'linear' ? info.outFeatures : info.outChannels;
  const inDim = info.kind === 'linear' ? info.inFeatures : info.inChannels;
  const k = info.kind === 'conv' ? info.kernel : [1, 1];
  const kArea = k[0] * k[1];
  const [inM, inN] = factorization(inDim, factor);
  const [outL, outK] = factorization(outDim, factor);
  const useW1 = !(decomposeBoth && rank < Math.max(outL, inM) / 2 && !fullMatrix);
  const useW2 = fullMatrix || !(rank < Math.max(outK, inN) / 2);
  let alpha = cfg.alpha === undefined || cfg.alpha === 0 ? rank : cfg.alpha;
  if (useW1 && useW2) alpha = rank;
  const scale = alpha / rank;

  const key = (s: string) => `${name}.${s}`;
  const params: AdapterParam[] = [];
  if (useW1) params.push({ key: key('lokr_w1'), shape: [outL, inM], init: 'kaiming', fanIn: inM });
  else params.push({ key: key('lokr_w1_a'), shape: [outL, rank], init: 'kaiming', fanIn: rank }, { key: key('lokr_w1_b'), shape: [rank, inM], init: 'kaiming', fanIn: inM });
  const w2Shape = info.kind === 'conv' ? [outK, inN, k[0], k[1]] : [outK, inN];
  if (useW2) params.push({ key: key('lokr_w2'), shape: w2Shape, init: 'zeros', fanIn: inN * kArea });
  else params.push({ key: key('lokr_w2_a'), shape: [outK, rank], init: 'kaiming', fanIn: rank }, { key: key('lokr_w2_b'), shape: [rank, inN * kArea], init: 'zeros', fanIn: inN * kArea });

  const w1Of = (p: (k: string) => Tensor) => (useW1 ? p(key('lokr_w1')) : matmul(p(key('lokr_w1_a')), p(key('lokr_w1_b'))));
  // w2 as a [outK, inN·kh·kw] matrix.
  const w2Of = (p: (k: string) => Tensor) => (useW2 ? reshape(p(key('lokr_w2')), [outK, inN * kArea]) : matmul(p(key('lokr_w2_a')), p(key('lokr_w2_b'))));

  return {
    algo: 'lokr', name, info, rank, alpha, scale, params,
    delta(x, p) {
      const w1 = w1Of(p), w2 = w2Of(p);
      let y: Tensor;
      if (info.kind === 'linear') {
        // (w1 ⊗ w2) x without forming the Kronecker product: x as [.., inM, inN], then w1 · X · w2ᵀ.
        const lead = x.shape.slice(0, -1);
        const X = reshape(x, [...lead, inM, inN]);
        y = reshape(matmul(matmul(w1, X), transposeLast2(w2)), [...lead, outDim]);
      } else {
        // kron(w1[l,m,1,1], w2[k,n,kh,kw])[i·k+a, j·n+b] = w1[i,j]·w2[a,b]: a broadcast product.
        const W = reshape(mul(reshape(w1, [outL, 1, inM, 1, 1]), reshape(w2, [1, outK, 1, inN, kArea])), [outDim, inDim, k[0], k[1]]);
        y = conv2d(x, W, undefined, { stride: info.stride, padding: info.padding });
      }
      return scale === 1 ? y : mul(y, scale);
    },
    weightDelta(value) {
      const w1 = useW1 ? Float64Array.from(value(key('lokr_w1'))) : matmulHost(value(key('lokr_w1_a')), value(key('lokr_w1_b')), outL, rank, inM);
      const w2 = useW2 ? Float64Array.from(value(key('lokr_w2'))) : matmulHost(value(key('lokr_w2_a')), value(key('lokr_w2_b')), outK, rank, inN * kArea);
      const cols = inN * kArea;
      const out = new Float64Array(outDim * inDim * kArea);
      for (let i = 0; i < outL; i++) for (let a = 0; a < outK; a++) for (let j = 0; j < inM; j++) {
        const s = w1[i * inM + j] * scale;
        const rowBase = (i * outK + a) * inDim * kArea + j * cols;
        for (let c = 0; c < cols; c++) out[rowBase + c] = s * w2[a * cols + c];
      }
      return out;
    },
  };
}
