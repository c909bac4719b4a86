// Plain float64 JS reference implementations of the optimizers, written from their papers' / packages'
// update rules, and the small least-squares problem the graph versions are checked on.
import * as K from '../../../kernels';
import { codeThresholds, dynamicMap, BLOCK_SIZE } from '../../../kernels/optim';

export type Params = Record<string, Float64Array>;
export interface RefOptimizer { step(params: Params, grads: Params, lr: number, t: number): void }

// --- the problem: loss = mean((X Wᵀ + b − Y)²), W [OUT, IN] (factored for Adafactor, 2 blocks for 8-bit), b [OUT]
export const IN = 16, OUT = 20, ROWS = 12;
const wave = (n: number, s: number, scale = 1) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 43758.5453 % 1 * scale);
export const X = wave(ROWS * IN, 1);
export const Y = wave(ROWS * OUT, 2);
export const initial = (): Params => ({ W: wave(OUT * IN, 3, 0.5), b: wave(OUT, 4, 0.5) });

export function lossAndGrads(p: Params): { loss: number; grads: Params } {
  const gW = new Float64Array(OUT * IN), gb = new Float64Array(OUT);
  let loss = 0;
  const n = ROWS * OUT;
  for (let r = 0; r < ROWS; r++) for (let o = 0; o < OUT; o++) {
    let y = p.b[o];
    for (let i = 0; i < IN; i++) y += X[r * IN + i] * p.W[o * IN + i];
    const e = y - Y[r * OUT + o];
    loss += (e * e) / n;
    const d = (2 * e) / n;
    gb[o] += d;
    for (let i = 0; i < IN; i++) gW[o * IN + i] += d * X[r * IN + i];
  }
  return { loss, grads: { W: gW, b: gb } };
}

export function graphProblem() {
  const x = K.input('x', [ROWS, IN]);
  const y = K.input('y', [ROWS, OUT]);
  const W = K.input('W', [OUT, IN]);
  const b = K.input('b', [OUT]);
  const loss = K.reduceMean(K.square(K.sub(K.add(K.linear(x, W), b), y)));
  const feeds = { x: f32([ROWS, IN], X), y: f32([ROWS, OUT], Y) };
  return { inputs: [x, y], params: { W, b }, loss, feeds };
}

export const f32 = (shape: number[], data: ArrayLike<number>): K.HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) });

/** Runs `steps` reference steps from `initial()` (params rounded to float32 first, as the graph starts). */
export function runReference(opt: RefOptimizer, steps: number, lr: (t: number) => number): Params {
  const p = initial();
  for (const k of Object.keys(p)) p[k] = Float64Array.from(Float32Array.from(p[k]));
  for (let t = 1; t <= steps; t++) opt.step(p, lossAndGrads(p).grads, lr(t), t);
  return p;
}

const each = (params: Params, f: (name: string, p: Float64Array) => void) => { for (const [k, v] of Object.entries(params)) f(k, v); };
const zerosLike = (state: Map<string, Float64Array>, key: string, n: number) => {
  if (!state.has(key)) state.set(key, new Float64Array(n));
  return state.get(key)!;
};

export function refAdamW({ beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = {}): RefOptimizer {
  const st = new Map<string, Float64Array>();
  return { step(params, grads, lr, t) {
    each(params, (k, p) => {
      const m = zerosLike(st, `${k}.m`, p.length), v = zerosLike(st, `${k}.v`, p.length), g = grads[k];
      const bc1 = 1 - beta1 ** t, bc2 = 1 - beta2 ** t;
      for (let i = 0; i < p.length; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        p[i] = p[i] * (1 - lr * weightDecay) - (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
      }
    });
  } };
}

/** bitsandbytes-style: moments stored as block-wise dynamic-map codes, dequantised each step. */
export function refAdamW8bit({ beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, min8bitSize = 4096 } = {}): RefOptimizer {
  const st = new Map<string, Float64Array>();
  const signed = dynamicMap(true), unsigned = dynamicMap(false);
  const store = (x: Float64Array, code: Float64Array) => {
    const th = codeThresholds(code);
    for (let b0 = 0; b0 < x.length; b0 += BLOCK_SIZE) {
      const end = Math.min(x.length, b0 + BLOCK_SIZE);
      let amax = 0;
      for (let i = b0; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
      const a32 = Math.fround(amax);
      for (let i = b0; i < end; i++) {
        const nrm = amax ? x[i] / amax : 0;
        let j = 255;
        while (th[j] > nrm) j--;
        x[i] = Math.fround(code[j]) * a32;
      }
    }
  };
  return { step(params, grads, lr, t) {
    each(params, (k, p) => {
      const m = zerosLike(st, `${k}.m`, p.length), v = zerosLike(st, `${k}.v`, p.length), g = grads[k];
      const bc1 = 1 - beta1 ** t, bc2 = 1 - beta2 ** t;
      for (let i = 0; i < p.length; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        p[i] = p[i] * (1 - lr * weightDecay) - (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
      }
      if (p.length >= min8bitSize) { store(m, signed); store(v, unsigned); }
    });
  } };
}

export function refSgd({ momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = {}): RefOptimizer {
  const st = new Map<string, Float64Array>();
  return { step(params, grads, lr, t) {
    each(params, (k, p) => {
      const buf = zerosLike(st, `${k}.buf`, p.length);
      for (let i = 0; i < p.length; i++) {
        let g = grads[k][i] + weightDecay * p[i];
        if (momentum) {
          buf[i] = t === 1 ? g : momentum * buf[i] + (1 - dampening) * g;
          g = nesterov ? g + momentum * buf[i] : buf[i];
        }
        p[i] -= lr * g;
      }
    });
  } };
}

export function refLion({ beta1 = 0.9, beta2 = 0.99, weightDecay = 0 } = {}): RefOptimizer {
  const st = new Map<string, Float64Array>();
  return { step(params, grads, lr) {
    each(params, (k, p) => {
      const m = zerosLike(st, `${k}.m`, p.length), g = grads[k];
      for (let i = 0; i < p.length; i++) {
        p[i] = p[i] * (1 - lr * weightDecay) - lr * Math.sign(beta1 * m[i] + (1 - beta1) * g[i]);
        m[i] = beta2 * m[i] + (1 - beta2) * g[i];
      }
    });
  } };
}

/** transformers.optimization.Adafactor for a 2-D W [OUT, IN] and a 1-D b. */
export function refAdafactor({ eps1 = 1e-30, eps2 = 1e-3, clipThreshold = 1, decayRate = -0.8, beta1 = undefined as number | undefined, weightDecay = 0, scaleParameter = true, relativeStep = true, warmupInit = false } = {}): RefOptimizer {
  const st = new Map<string, Float64Array>();
  const rms = (x: Float64Array) => Math.sqrt(x.reduce((a, b) => a + b * b, 0) / x.length);
  return { step(params, grads, lr0, t) {
    each(params, (k, p) => {
      const g = grads[k];
      let lr = relativeStep ? Math.min(warmupInit ? 1e-6 * t : 1e-2, 1 / Math.sqrt(t)) : lr0;
      if (scaleParameter) lr *= Math.max(eps2, rms(p));
      const b2t = 1 - t ** decayRate;
      const u = new Float64Array(p.length);
      if (k === 'W') {
        const row = zerosLike(st, 'W.row', OUT), col = zerosLike(st, 'W.col', IN);
        for (let o = 0; o < OUT; o++) { let s = 0; for (let i = 0; i < IN; i++) s += g[o * IN + i] ** 2 + eps1; row[o] = b2t * row[o] + (1 - b2t) * (s / IN); }
        for (let i = 0; i < IN; i++) { let s = 0; for (let o = 0; o < OUT; o++) s += g[o * IN + i] ** 2 + eps1; col[i] = b2t * col[i] + (1 - b2t) * (s / OUT); }
        const rowMean = row.reduce((a, b) => a + b, 0) / OUT;
        for (let o = 0; o < OUT; o++) for (let i = 0; i < IN; i++) u[o * IN + i] = g[o * IN + i] / Math.sqrt(row[o] / rowMean) / Math.sqrt(col[i]);
      } else {
        const v = zerosLike(st, `${k}.v`, p.length);
        for (let i = 0; i < p.length; i++) { v[i] = b2t * v[i] + (1 - b2t) * (g[i] * g[i] + eps1); u[i] = g[i] / Math.sqrt(v[i]); }
      }
      const c = Math.max(rms(u) / clipThreshold, 1);
      for (let i = 0; i < u.length; i++) u[i] = (u[i] / c) * lr;
      if (beta1 !== undefined) {
        const m = zerosLike(st, `${k}.m`, p.length);
        for (let i = 0; i < u.length; i++) { m[i] = beta1 * m[i] + (1 - beta1) * u[i]; u[i] = m[i]; }
      }
      for (let i = 0; i < p.length; i++) p[i] = p[i] - p[i] * weightDecay * lr - u[i];
    });
  } };
}

/** prodigyopt.Prodigy (one parameter group). */
export function refProdigy({ beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decouple = true, useBiasCorrection = false, safeguardWarmup = false, d0 = 1e-6, dCoef = 1, growthRate = Infinity } = {}): RefOptimizer {
  const beta3 = Math.sqrt(beta2);
  let d = d0, dMax = d0, dNum = 0;
  const st = new Map<string, Float64Array>();
  return { step(params, grads, lr, t) {
    const bc = useBiasCorrection ? Math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) : 1;
    const dlr = d * lr * bc;
    dNum *= beta3;
    let dDen = 0;
    each(params, (k, p) => {
      if (!st.has(`${k}.p0`)) st.set(`${k}.p0`, p.slice());
      const p0 = st.get(`${k}.p0`)!, s = zerosLike(st, `${k}.s`, p.length), m = zerosLike(st, `${k}.m`, p.length), v = zerosLike(st, `${k}.v`, p.length);
      const g = grads[k].map((x, i) => (weightDecay && !decouple ? x + weightDecay * p[i] : x));
      let dot = 0;
      for (let i = 0; i < p.length; i++) dot += g[i] * (p0[i] - p[i]);
      dNum += (d / d0) * dlr * dot;
      for (let i = 0; i < p.length; i++) {
        m[i] = beta1 * m[i] + d * (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + d * d * (1 - beta2) * g[i] * g[i];
        s[i] = beta3 * s[i] + (d / d0) * (safeguardWarmup ? d : dlr) * g[i];
        dDen += Math.abs(s[i]);
      }
    });
    if (dDen === 0) return;
    const dHat = (dCoef * dNum) / dDen;
    if (d === d0) d = Math.max(d, dHat);
    dMax = Math.max(dMax, dHat);
    d = Math.min(dMax, d * growthRate);
    each(params, (k, p) => {
      const m = st.get(`${k}.m`)!, v = st.get(`${k}.v`)!;
      for (let i = 0; i < p.length; i++) {
        const den = Math.sqrt(v[i]) + d * eps;
        if (weightDecay && decouple) p[i] -= weightDecay * dlr * p[i];
        p[i] -= (dlr * m[i]) / den;
      }
    });
  } };
}
