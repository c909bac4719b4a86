// Measures what quantisation costs in output accuracy, through ORT: for each quantised layer, the
// relative RMS error of y = W x with the in-graph dequantised weight against the float32 weight, on
// seeded normal inputs (a conv as its im2col matmul: the same sums over in·kh·kw). Reported per layer
// kind with the bytes saved.
import { constant, input, type HostTensor } from '../tensor';
import { matmul } from '../ops/nn';
import { transpose } from '../ops/shape-and-reduce';
import { compileGraph } from '../compile';
import type { Runtime } from '../runtime';
import { Rng } from '../random';
import { dequantizeInGraph } from './dequant';
import type { QuantizedLayer, QuantizedWeights } from './graph-weights';

export interface QuantKindReport { layers: number; fp32Bytes: number; quantBytes: number; savedBytes: number; outputRelError: number }

export async function measureQuantization(weights: QuantizedWeights, rt: Runtime, opts: { batch?: number; seed?: string } = {}): Promise<Record<'linear' | 'conv', QuantKindReport>> {
  const batch = opts.batch ?? 16;
  const rng = new Rng(opts.seed ?? 'quant-report');
  const summary = weights.summary();
  const errSq = { linear: 0, conv: 0 };
  for (const l of weights.layers.values()) {
    const [rows, cols] = l.quantized.shape;
    const x = input('x', [batch, cols]);
    const exactW = constant(dequantizeWeightOriginal(l), [rows, cols], 'float32', 'w_fp32');
    const y = matmul(x, transpose(dequantizeInGraph(l.quantized, 'w', [rows, cols])));
    const y0 = matmul(x, transpose(exactW));
    const s = await rt.load(compileGraph([x], { y, y0 }));
    const feed: HostTensor = { dtype: 'float32', shape: [batch, cols], data: rng.fork(l.path).fillNormal(new Float32Array(batch * cols)) };
    const out = await s.run({ x: feed });
    errSq[l.kind] += relErr(out.y.data as Float32Array, out.y0.data as Float32Array) ** 2;
  }
  const report = (k: 'linear' | 'conv'): QuantKindReport => ({ ...summary[k], outputRelError: summary[k].layers ? Math.sqrt(errSq[k] / summary[k].layers) : 0 });
  return { linear: report('linear'), conv: report('conv') };
}

function dequantizeWeightOriginal(l: QuantizedLayer): Float32Array {
  if (!l.original) throw new Error(`measureQuantization: '${l.path}' kept no float32 original (construct QuantizedWeights with keepOriginals: true)`);
  return l.original;
}

export function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / den);
}
