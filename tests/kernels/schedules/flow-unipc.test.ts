// Flow UniPC on an ODE whose solution is known in closed form: data x0 ~ N(μ, s²) per coordinate, noised as
// x_σ = (1 − σ)x0 + σε. The exact velocity is affine in x and the flow keeps each point's standardised
// coordinate, so x at σ = 0 is μ + s·(x_σ0 − (1 − σ0)μ)/std(σ0). UniPC must beat Euler at few steps and
// converge with order > 1 as steps double; one step of each update is checked against the paper's formulas.
import { describe, expect, it } from 'vitest';
import { sampleFlowUniPC, type FlowVelocity } from '../../../kernels/schedules/flow-unipc';
import { shiftSigma } from '../../../kernels/schedules/flow-matching';
import { Rng } from '../../../kernels/random';

const DIM = 64;
const rng = new Rng(3);
const mu = Float64Array.from({ length: DIM }, (_, i) => -2 + (4 * i) / (DIM - 1));
const sd = Float64Array.from({ length: DIM }, (_, i) => 0.3 + 1.2 * ((i * 37) % DIM) / DIM);
const start = rng.fork('x').fillNormal(new Float32Array(DIM));

const std = (s: number, i: number) => Math.sqrt((1 - s) ** 2 * sd[i]! ** 2 + s * s);

/** E[ε − x0 | x_σ = x] for the Gaussian data. */
const exactVelocity: FlowVelocity = async (x, s) => Float32Array.from(x, (xi, i) => {
  const c = xi - (1 - s) * mu[i]!;
  const v2 = std(s, i) ** 2;
  const eps = (s * c) / v2;
  const data = mu[i]! + ((1 - s) * sd[i]! ** 2 * c) / v2;
  return eps - data;
});

function exactEnd(x: Float32Array, s0: number): Float64Array {
  return Float64Array.from(x, (xi, i) => mu[i]! + (sd[i]! * (xi - (1 - s0) * mu[i]!)) / std(s0, i));
}

/** Wan's grid: linspace(1 − 1/1000, 0, n + 1) without its last, shifted, then 0. */
const grid = (n: number, shift: number) => [...Array.from({ length: n }, (_, i) => shiftSigma(0.999 * (1 - i / n), shift)), 0];

async function euler(sigmas: number[]): Promise<Float32Array> {
  const x = Float32Array.from(start);
  for (let k = 0; k + 1 < sigmas.length; k++) {
    const v = await exactVelocity(x, sigmas[k]!, k);
    for (let i = 0; i < DIM; i++) x[i] += (sigmas[k + 1]! - sigmas[k]!) * v[i]!;
  }
  return x;
}

/** Root-mean-square distance to the exact end point. */
const rmsErr = (a: Float32Array, b: Float64Array) => Math.sqrt(a.reduce((n, v, i) => n + (v - b[i]!) ** 2, 0) / a.length);

describe('flow UniPC (bh2)', () => {
  for (const shift of [1, 5]) {
    it(`beats Euler and converges with order > 1 (shift ${shift})`, async () => {
      const uni: number[] = [], eul: number[] = [];
      for (const n of [6, 12, 24, 48]) {
        const sigmas = grid(n, shift);
        const want = exactEnd(start, sigmas[0]!);
        uni.push(rmsErr(await sampleFlowUniPC(exactVelocity, start, sigmas), want));
        eul.push(rmsErr(await euler(sigmas), want));
      }
      uni.forEach((e, i) => expect(e).toBeLessThan(eul[i]!));
      expect(uni[2]).toBeLessThan(eul[2]! / 3);
      expect(uni[3]).toBeLessThan(eul[3]! / 5);
      // From 12 to 48 steps: a second-order method shrinks the error ~16× (order 2), Euler ~4× (order 1).
      const order = (e: number[]) => Math.log2(e[1]! / e[3]!) / 2;
      expect(order(uni)).toBeGreaterThan(1.5);
      expect(order(eul)).toBeLessThan(1.2);
    });
  }

  it('a second-order predictor beats the first-order one; third order is no worse', async () => {
    const sigmas = grid(12, 5);
    const want = exactEnd(start, sigmas[0]!);
    const e1 = rmsErr(await sampleFlowUniPC(exactVelocity, start, sigmas, { order: 1 }), want);
    const e2 = rmsErr(await sampleFlowUniPC(exactVelocity, start, sigmas, { order: 2 }), want);
    const e3 = rmsErr(await sampleFlowUniPC(exactVelocity, start, sigmas, { order: 3 }), want);
    expect(e2).toBeLessThan(e1);
    expect(e3).toBeLessThan(e2 * 1.2);
  });

  it('each step matches the UniPC formulas written out for order 1 and 2 (α = 1 − σ, λ = log α/σ)', async () => {
    // A velocity that is not the exact flow, so the corrector visibly changes the sample.
    const seen: Float32Array[] = [];
    const vel: FlowVelocity = async (x, s) => {
      seen.push(Float32Array.from(x));
      return Float32Array.from(x, (xi, i) => Math.sin(xi + i) * (1 + s));
    };
    const s = [0.95, 0.7, 0.4, 0.2, 0];
    const x0 = Float32Array.from(start.subarray(0, 4));
    const got = await sampleFlowUniPC(vel, x0, s);
    const lam = (v: number) => Math.log((1 - v) / v);
    const data = (x: Float64Array, v: number) => Float64Array.from(x, (xi, i) => xi - v * Math.sin(xi + i) * (1 + v));
    /** First-order step σa → σb: (σb/σa)·x + αb·(1 − e^{−h})·m. */
    const ddim = (x: Float64Array, m: Float64Array, a: number, b: number) => Float64Array.from(x, (xi, i) => (b / a) * xi + (1 - b) * (1 - Math.exp(lam(a) - lam(b))) * m[i]!);
    /** Second-order predictor: the first-order step less αb·B(h)·½·D1, D1 = (m_prev − m)/r. */
    const predict2 = (x: Float64Array, m: Float64Array, mPrev: Float64Array, sPrev: number, a: number, b: number) => {
      const h = lam(b) - lam(a), r = (lam(sPrev) - lam(a)) / h;
      return Float64Array.from(ddim(x, m, a, b), (v, i) => v - (1 - b) * Math.expm1(-h) * 0.5 * (mPrev[i]! - m[i]!) / r);
    };
    // Step 0: first-order predictor.
    const m0 = data(Float64Array.from(x0), s[0]!);
    const x1p = ddim(Float64Array.from(x0), m0, s[0]!, s[1]!);
    // Step 1: first-order corrector (ρ = ½ on the new data prediction), then the second-order predictor.
    const m1 = data(x1p, s[1]!);
    const B1 = Math.expm1(-(lam(s[1]!) - lam(s[0]!)));
    const x1 = Float64Array.from(ddim(Float64Array.from(x0), m0, s[0]!, s[1]!), (v, i) => v - (1 - s[1]!) * B1 * 0.5 * (m1[i]! - m0[i]!));
    const x2p = predict2(x1, m1, m0, s[0]!, s[1]!, s[2]!);
    // Step 2: second-order corrector, ρ from [[1, 1], [r, 1]]·ρ = [b1, b2] with b_i = i!·φ_{i+1}/B(h).
    const m2 = data(x2p, s[2]!);
    const h2 = lam(s[2]!) - lam(s[1]!), hh = -h2, B2 = Math.expm1(hh), r = (lam(s[0]!) - lam(s[1]!)) / h2;
    const phi = Math.expm1(hh) / hh - 1;
    const b1 = phi / B2, b2 = (2 * (phi / hh - 0.5)) / B2;
    const rho0 = (b1 - b2) / (1 - r), rho1 = b1 - rho0;
    const x2 = Float64Array.from(ddim(x1, m1, s[1]!, s[2]!), (v, i) => v - (1 - s[2]!) * B2 * (rho0 * (m0[i]! - m1[i]!) / r + rho1 * (m2[i]! - m1[i]!)));
    const x3p = predict2(x2, m2, m1, s[1]!, s[2]!, s[3]!);
    // Step 3 lands on σ = 0: the data prediction at x3p (first order, the final step).
    const want = data(x3p, s[3]!);
    expect(seen).toHaveLength(4);
    for (const [i, w] of [x1p, x2p, x3p].entries()) for (let j = 0; j < 4; j++) expect(seen[i + 1]![j]).toBeCloseTo(w[j]!, 5);
    for (let j = 0; j < 4; j++) expect(got[j]).toBeCloseTo(want[j]!, 5);
    // The corrector did something (else this test would not see it).
    expect(Math.max(...Array.from(x2, (v, j) => Math.abs(v - x2p[j]!)))).toBeGreaterThan(1e-3);
  });

  it('refuses a noise level of 1, rising levels and a 0 before the end', async () => {
    await expect(sampleFlowUniPC(exactVelocity, start, [1, 0.5, 0])).rejects.toThrow(/level 0 is 1.*1 − 1\/1000/);
    await expect(sampleFlowUniPC(exactVelocity, start, [0.5, 0.6, 0])).rejects.toThrow(/must decrease/);
    await expect(sampleFlowUniPC(exactVelocity, start, [0.5, 0, 0])).rejects.toThrow(/decrease|only the last/);
  });
});
