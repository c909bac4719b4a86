// Central finite-difference gradient checks for graphs built with the engine: the analytic gradient
// (from autodiff, run in ORT) must match (f(x+εv) − f(x−εv)) / 2ε along random and axis directions.
import { input, constant, grad, compileGraph, mul, reduceSum, Runtime, type Tensor, type HostTensor } from '../../kernels';

export interface CheckInput { shape: number[]; data?: Float32Array; /** skip: not differentiated (e.g. indices) */ fixed?: HostTensor }

let seed = 12345;
export function rand(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    a[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
  }
  return a;
}

let rt: Runtime | undefined;
export function runtime() { return (rt ??= new Runtime({ threads: 1 })); }

/**
 * Checks d(sum(f(xs) * R))/dxs for a fixed random R. Returns the worst relative error seen.
 * float32 throughout, so tolerances are ~1e-2 relative; ε is chosen for float32 round-off.
 */
export async function gradCheck(f: (...xs: Tensor[]) => Tensor, inputs: CheckInput[], opts: { eps?: number; directions?: number } = {}) {
  const eps = opts.eps ?? 1e-2;
  const xs = inputs.map((inp, i) => input(`x${i}`, inp.shape, inp.fixed?.dtype ?? 'float32'));
  const y = f(...xs);
  const r = constant(rand(y.size), y.shape);
  const loss = reduceSum(mul(y, r));
  const diffIdx = inputs.map((inp, i) => (inp.fixed ? -1 : i)).filter((i) => i >= 0);
  const grads = grad(loss, diffIdx.map((i) => xs[i]));
  const outs: Record<string, Tensor> = { loss };
  grads.forEach((g, k) => { outs[`g${diffIdx[k]}`] = g; });
  const session = await runtime().load(compileGraph(xs, outs));
  const values: HostTensor[] = inputs.map((inp) => inp.fixed ?? { dtype: 'float32', shape: inp.shape, data: inp.data ?? rand(inp.shape.reduce((a, b) => a * b, 1)) });
  const feeds = () => Object.fromEntries(values.map((v, i) => [`x${i}`, v]));
  const base = await session.run(feeds());
  let worst = 0;
  for (const i of diffIdx) {
    const g = base[`g${i}`].data as Float32Array;
    const x0 = values[i].data as Float32Array;
    const n = x0.length;
    const dirs: Float32Array[] = [];
    // Axis directions for small tensors catch per-element mistakes; random ones cover big tensors.
    if (n <= 12) for (let k = 0; k < n; k++) { const d = new Float32Array(n); d[k] = 1; dirs.push(d); }
    for (let k = 0; k < (opts.directions ?? 3); k++) dirs.push(rand(n));
    for (const d of dirs) {
      const at = async (s: number) => {
        values[i] = { ...values[i], data: x0.map((v, k) => v + s * eps * d[k]) };
        return (await session.run(feeds(), { fetch: ['loss'] })).loss.data[0] as number;
      };
      const fd = ((await at(1)) - (await at(-1))) / (2 * eps);
      values[i] = { ...values[i], data: x0 };
      let an = 0;
      for (let k = 0; k < n; k++) an += g[k] * d[k];
      const err = Math.abs(fd - an) / Math.max(1e-2, Math.abs(fd), Math.abs(an));
      worst = Math.max(worst, err);
    }
  }
  return worst;
}
