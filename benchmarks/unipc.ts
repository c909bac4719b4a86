// npm run bench:unipc — how far flow UniPC (Wan's default sampler) and flow Euler land from the exact end point of
// the probability-flow ODE for the same number of model calls, on data whose flow is known in closed form
// (x0 ~ N(μ, s²) per coordinate, 256 coordinates, s from 0.3 to 1.5). Prints RMS error per step count for shift 1
// and Wan's shift 5, the ratio Euler / UniPC, and the empirical order of each (log2 of the error ratio as steps
// double). Pure JS, a second or two.
import { sampleFlowUniPC, type FlowVelocity } from '../kernels/schedules/flow-unipc';
import { shiftSigma } from '../kernels/schedules/flow-matching';
import { Rng } from '../kernels/random';

const DIM = 256;
const mu = Float64Array.from({ length: DIM }, (_, i) => -2 + (4 * i) / (DIM - 1));
const sd = Float64Array.from({ length: DIM }, (_, i) => 0.3 + (1.2 * ((i * 37) % DIM)) / DIM);
const start = new Rng(3).fork('x').fillNormal(new Float32Array(DIM));
const std = (s: number, i: number) => Math.sqrt((1 - s) ** 2 * sd[i]! ** 2 + s * s);
const velocity: FlowVelocity = async (x, s) => Float32Array.from(x, (xi, i) => {
  const c = xi - (1 - s) * mu[i]!, v2 = std(s, i) ** 2;
  return (s * c) / v2 - (mu[i]! + ((1 - s) * sd[i]! ** 2 * c) / v2);
});
const exactEnd = (s0: number) => Float64Array.from(start, (xi, i) => mu[i]! + (sd[i]! * (xi - (1 - s0) * mu[i]!)) / std(s0, i));
const rms = (a: Float32Array, b: Float64Array) => Math.sqrt(a.reduce((n, v, i) => n + (v - b[i]!) ** 2, 0) / a.length);
/** Wan's flow UniPC grid; Euler runs on the same levels so both make the same model calls. */
const grid = (n: number, shift: number) => [...Array.from({ length: n }, (_, i) => shiftSigma(0.999 * (1 - i / n), shift)), 0];

async function euler(sigmas: number[]): Promise<Float32Array> {
  const x = Float32Array.from(start);
  for (let k = 0; k + 1 < sigmas.length; k++) {
    const v = await velocity(x, sigmas[k]!, k);
    for (let i = 0; i < DIM; i++) x[i] += (sigmas[k + 1]! - sigmas[k]!) * v[i]!;
  }
  return x;
}

for (const shift of [1, 5]) {
  console.log(`shift ${shift}: steps | RMS error UniPC | Euler | Euler / UniPC`);
  const u: number[] = [], e: number[] = [];
  for (const n of [5, 10, 20, 40, 80]) {
    const sigmas = grid(n, shift);
    const want = exactEnd(sigmas[0]!);
    u.push(rms(await sampleFlowUniPC(velocity, start, sigmas), want));
    e.push(rms(await euler(sigmas), want));
    console.log(`  ${String(n).padStart(3)} | ${u.at(-1)!.toExponential(2)} | ${e.at(-1)!.toExponential(2)} | ${(e.at(-1)! / u.at(-1)!).toFixed(1)}×`);
  }
  const order = (x: number[]) => x.slice(1).map((v, i) => Math.log2(x[i]! / v).toFixed(2)).join(' ');
  console.log(`  empirical order as steps double — UniPC: ${order(u)}; Euler: ${order(e)}`);
}
