// Wan previews: the shifted schedule, and dual-expert sampling that routes each step to the expert
// owning its noise level with that expert's CFG scale (checked against a hand-written Euler loop).
import { describe, it, expect } from 'vitest';
import { WAN21_I2V_14B, WAN22_I2V_A14B, WAN22_T2V_A14B } from '../../../kernels/wan/config';
import { defaultSampleShift, sampleWan, wanExpertModel, wanSigmas, wanUniPCSigmas } from '../../../kernels/wan/sampling';
import { sampleFlowUniPC } from '../../../kernels/schedules/flow-unipc';
import { shiftSigma } from '../../../kernels/schedules/flow-matching';
import { sampleFlowEuler, type FlowModelCall } from '../../../kernels/flux/sampling';
import { Rng } from '../../../kernels/random';
import type { WanExpert } from '../../../kernels/wan/detect';

describe('Wan sampling', () => {
  it('shifted schedule from 1 to 0; shift 12 for 2.2 T2V A14B, 5 for I2V', () => {
    const s = wanSigmas(4, 5);
    expect(s[0]).toBe(1);
    expect(s[4]).toBe(0);
    expect(s[2]).toBeCloseTo((5 * 0.5) / (1 + 4 * 0.5), 12);
    expect(s.every((v, i) => i === 0 || v < s[i - 1])).toBe(true);
    expect(defaultSampleShift(WAN22_T2V_A14B)).toBe(12);
    expect(defaultSampleShift(WAN22_I2V_A14B)).toBe(5);
    expect(defaultSampleShift(WAN21_I2V_14B)).toBe(5);
  });

  it('each step runs the expert that owns its noise level, with that expert\'s CFG scale', async () => {
    const n = 6;
    // Toy experts: velocity = a·x + b (cond adds c), different per expert.
    const toy = (a: number, b: number, c: number): FlowModelCall => async (x, _t, o) => {
      const out = new Float32Array(x.length);
      const half = o.cfg ? x.length / 2 : x.length;
      for (let i = 0; i < x.length; i++) out[i] = a * x[i] + b + (o.cfg && i >= half ? c : 0);
      return out;
    };
    const experts = { high_noise: { call: toy(0.3, 0.1, 0.5), cfgScale: 3.5 }, low_noise: { call: toy(-0.2, 0.05, 0.2), cfgScale: 3 } };
    const sigmas = wanSigmas(8, 12);
    const calls: WanExpert[] = [];
    const got = await sampleFlowEuler(wanExpertModel(experts, 0.875, 4, (e) => calls.push(e)), { sigmas, guidance: { mode: 'cfg', scale: 4 }, seed: 7, perImage: n });
    expect(calls).toEqual(sigmas.slice(0, -1).map((t) => (t >= 0.875 ? 'high_noise' : 'low_noise')));
    expect(calls).toContain('low_noise');
    // The same Euler loop by hand with each expert's own scale.
    const x = new Rng(7).fork('initial-noise').fillNormal(new Float32Array(n));
    for (let s = 0; s < 8; s++) {
      const t = sigmas[s];
      const [a, b, c, g] = t >= 0.875 ? [0.3, 0.1, 0.5, 3.5] : [-0.2, 0.05, 0.2, 3];
      for (let i = 0; i < n; i++) { const u = a * x[i] + b; x[i] += (sigmas[s + 1] - t) * (u + g * c); }
    }
    expect(Math.max(...got.map((v, i) => Math.abs(v - x[i])))).toBeLessThan(1e-5);
  });

  it('UniPC runs on Wan\'s grid: shift(1 − 1/1000) down to 0', () => {
    const s = wanUniPCSigmas(10, 5);
    expect(s).toHaveLength(11);
    expect(s[0]).toBeCloseTo(shiftSigma(0.999, 5), 12);
    expect(s[10]).toBe(0);
    expect(s[5]).toBeCloseTo(shiftSigma(0.999 * 0.5, 5), 12);
    expect(() => wanUniPCSigmas(0, 5)).toThrow(/steps/);
  });

  it('sampleWan: UniPC and Euler over one batched model call, the high-noise expert\'s CFG at σ ≥ boundary', async () => {
    const n = 5;
    const seen: number[] = [];
    // uncond = 0.5·x, cond = 0.5·x + 0.2 + t/1000: CFG g gives v = 0.5x + g·(0.2 + σ).
    const call = async (xs: Float32Array, t: number) => {
      seen.push(t);
      const half = xs.length / 2;
      return Float32Array.from(xs, (x, i) => 0.5 * x + (i >= half ? 0.2 + t / 1000 : 0));
    };
    const run = { sampler: 'unipc', steps: 8, cfgScale: 3, cfgScaleHighNoise: 4.5, seed: 11, latentShape: [n], batch: 1, scheduler: 'auto' };
    const got = await sampleWan(call, WAN22_T2V_A14B, run, { boundary: 0.875 });
    const sigmas = wanUniPCSigmas(8, 12);
    expect(seen.map((t) => t / 1000)).toEqual(sigmas.slice(0, -1).map((s) => expect.closeTo(s, 6)));
    const noise = new Rng(11).fork('initial-noise').fillNormal(new Float32Array(n));
    const want = await sampleFlowUniPC(async (x, s) => Float32Array.from(x, (v) => 0.5 * v + (s >= 0.875 ? 4.5 : 3) * (0.2 + s)), noise, sigmas);
    expect(sigmas.some((s) => s > 0 && s < 0.875) && sigmas[0]! >= 0.875).toBe(true);
    for (let i = 0; i < n; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
    // Without a high-noise scale (or without experts) one scale runs throughout; Euler is the flow Euler loop.
    const euler = await sampleWan(call, WAN21_I2V_14B, { ...run, sampler: 'euler', cfgScaleHighNoise: undefined });
    const ref = await sampleFlowEuler(async (x, t) => Float32Array.from(x, (v) => 0.5 * v + 3 * (0.2 + t)), { sigmas: wanSigmas(8, 5), guidance: { mode: 'distilled' }, seed: 11, perImage: n });
    for (let i = 0; i < n; i++) expect(euler[i]).toBeCloseTo(ref[i]!, 5);
    await expect(sampleWan(call, WAN21_I2V_14B, { ...run, sampler: 'dpmpp_2m' })).rejects.toThrow(/euler or unipc/);
  });
});
