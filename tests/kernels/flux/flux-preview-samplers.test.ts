// The FLUX previews honour the Sampler's choice: flow UniPC runs on each family's schedule (started at
// 1 − 1/1000 before the shift) with the family's guidance mode, checked against hand-written schedules and
// guidance mixing driving the shared UniPC solver; it is second order where Euler is first (on the exact
// velocity of Gaussian data it lands ~100× nearer the ODE's end point over 50 steps); a sampler without
// a flow-matching form is refused naming the sampler widget.
import { describe, expect, it } from 'vitest';
import { flux2Family, tinyFlux2Config } from '../../../kernels/flux/family';
import { flux1Family, tinyFlux1Config } from '../../../kernels/flux/family1';
import { FLUX1_SCHNELL } from '../../../kernels/flux/config';
import { sampleFlowUniPC } from '../../../kernels/schedules/flow-unipc';
import { Rng } from '../../../kernels/random';
import { empiricalMu, fakeCall, shifted, velocity } from './flow-reference';

/** UniPC's levels: N evenly spaced times from 0.999 down, shifted, then 0. */
const uniPCLevels = (steps: number, shift: (t: number) => number) => [...Array.from({ length: steps }, (_, i) => shift(0.999 * (1 - i / steps))), 0];

const run = (sampler: string, steps: number, cfgScale: number, latentShape: number[]) => ({ sampler, scheduler: 'auto', steps, cfgScale, seed: 5, latentShape, batch: 1 });
const noise = (n: number) => new Rng(5).fork('initial-noise').fillNormal(new Float32Array(n));

describe('FLUX previews with UniPC', () => {
  it('FLUX.2 [klein] base: UniPC with true CFG against the empty prompt on the empirical-μ schedule', async () => {
    const { call, timesteps } = fakeCall();
    const n = 128 * 6, g = 4;
    const out = await flux2Family.sample(call, tinyFlux2Config(), run('unipc', 12, g, [128, 2, 3]));
    const sigmas = uniPCLevels(12, (t) => shifted(empiricalMu(6, 12), t));
    expect(timesteps).toHaveLength(12);
    timesteps.forEach((ts, i) => expect(ts).toBeCloseTo(sigmas[i]! * 1000, 6));
    const want = await sampleFlowUniPC(async (x, s) => Float32Array.from(x, (v, i) => velocity(v, s, false, i) + g * (velocity(v, s, true, i) - velocity(v, s, false, i))), noise(n), sigmas);
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
    const euler = await flux2Family.sample(fakeCall().call, tinyFlux2Config(), run('euler', 12, g, [128, 2, 3]));
    expect(Math.max(...out.map((v, i) => Math.abs(v - euler[i]!)))).toBeGreaterThan(1e-3);
  });

  it('FLUX.1 dev: UniPC makes one conditional prediction per step (the scale is embedded) on the resolution-shifted schedule; schnell on linear levels', async () => {
    const { call, timesteps } = fakeCall();
    const out = await flux1Family.sample(call, tinyFlux1Config(), run('unipc', 6, 3.5, [64, 2, 2]));
    const sigmas = uniPCLevels(6, (t) => shifted(0.5 + ((1.15 - 0.5) * (4 - 256)) / (4096 - 256), t));
    timesteps.forEach((ts, i) => expect(ts).toBeCloseTo(sigmas[i]! * 1000, 6));
    const cond = async (x: Float32Array, s: number) => Float32Array.from(x, (v, i) => velocity(v, s, true, i));
    const want = await sampleFlowUniPC(cond, noise(64 * 4), sigmas);
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));

    const schnell = { ...tinyFlux1Config(), transformer: { ...tinyFlux1Config().transformer, guidanceEmbed: FLUX1_SCHNELL.guidanceEmbed } };
    const s = await flux1Family.sample(fakeCall().call, schnell, run('unipc', 4, 7, [64, 2, 2]));
    const wantS = await sampleFlowUniPC(cond, noise(64 * 4), [0.999, 0.74925, 0.4995, 0.24975, 0]);
    s.forEach((v, i) => expect(v).toBeCloseTo(wantS[i]!, 5));
  });

  it('UniPC is second order: on the exact velocity of Gaussian data, 50 steps land far nearer the ODE\'s end point than Euler\'s', async () => {
    // Data N(μ, s²): E[x0 | x_σ] is linear in x, and the probability-flow ODE carries x_σ = (1−σ)μ + √((1−σ)²s² + σ²)·z to μ + s·z.
    const mu = 0.7, sd = 0.5;
    const exactVelocity = (x: number, sigma: number) => {
      const a = 1 - sigma;
      return (x - (mu + ((a * sd * sd) / (a * a * sd * sd + sigma * sigma)) * (x - a * mu))) / sigma;
    };
    const call = async (xs: Float32Array, t: number) => Float32Array.from(xs, (x) => exactVelocity(x, t / 1000));
    const steps = 50, shape = [128, 2, 2], n = 512;
    const z = noise(n);
    const errorOf = (out: Float32Array, start: number) => Math.max(...out.map((v, i) => {
      const zi = (z[i]! - (1 - start) * mu) / Math.sqrt((1 - start) ** 2 * sd * sd + start * start);
      return Math.abs(v - (mu + sd * zi));
    }));
    const euler = errorOf(await flux2Family.sample(call, tinyFlux2Config(), run('euler', steps, 1, shape)), 1);
    const unipc = errorOf(await flux2Family.sample(call, tinyFlux2Config(), run('unipc', steps, 1, shape)), shifted(empiricalMu(4, steps), 0.999));
    expect(unipc).toBeLessThan(euler / 20);
    expect(unipc).toBeLessThan(0.01);
  });

  it('a sampler without a flow-matching form is refused, naming the sampler widget', async () => {
    const { call, timesteps } = fakeCall();
    for (const sampler of ['euler_ancestral', 'ddim', 'dpmpp_2m']) {
      await expect(flux2Family.sample(call, tinyFlux2Config(), run(sampler, 4, 4, [128, 2, 2]))).rejects.toThrow(new RegExp(`^sampler: FLUX\\.2 \\[klein\\] is a flow-matching model and samples with euler or unipc; '${sampler}'.*Sampler or Sampler Settings node's sampler widget`));
      await expect(flux1Family.sample(call, tinyFlux1Config(), run(sampler, 4, 4, [64, 2, 2]))).rejects.toThrow(/^sampler: FLUX\.1 is a flow-matching model/);
    }
    expect(timesteps).toHaveLength(0);
    expect(flux2Family.samplers).toEqual(['euler', 'unipc']);
    expect(flux1Family.samplers).toEqual(['euler', 'unipc']);
  });
});
