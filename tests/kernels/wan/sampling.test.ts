// Wan previews: the shifted schedule, and dual-expert sampling that routes each step to the expert
// owning its noise level with that expert's CFG scale (checked against a hand-written Euler loop).
import { describe, it, expect } from 'vitest';
import { WAN21_I2V_14B, WAN22_I2V_A14B, WAN22_T2V_A14B } from '../../../kernels/wan/config';
import { defaultSampleShift, wanExpertModel, wanSigmas } from '../../../kernels/wan/sampling';
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
});
