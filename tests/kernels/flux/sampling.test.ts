// FLUX sampling schedules and the flow Euler sampler's guidance modes, with a model whose velocity is
// known so the result can be computed by hand.
import { describe, it, expect } from 'vitest';
import { flux1Sigmas, flux2EmpiricalMu, flux2Sigmas, sampleFlowEuler } from '../../../kernels/flux/sampling';
import { Rng } from '../../../kernels/random';

describe('FLUX schedules', () => {
  it('FLUX.2 empirical mu: the 10- and 200-step fits, interpolated in steps, linear past 4300 tokens', () => {
    expect(flux2EmpiricalMu(4096, 200)).toBeCloseTo(0.00016927 * 4096 + 0.45666666, 8);
    expect(flux2EmpiricalMu(4096, 10)).toBeCloseTo(8.73809524e-5 * 4096 + 1.89833333, 8);
    const m50 = flux2EmpiricalMu(4096, 50);
    expect(m50).toBeCloseTo(flux2EmpiricalMu(4096, 10) + (40 / 190) * (flux2EmpiricalMu(4096, 200) - flux2EmpiricalMu(4096, 10)), 8);
    expect(flux2EmpiricalMu(6000, 4)).toBeCloseTo(0.00016927 * 6000 + 0.45666666, 8);
  });
  it('FLUX.2 sigmas: 1 → 0, decreasing, shifted toward high noise by exp(mu)', () => {
    const s = flux2Sigmas(50, 4096);
    expect(s).toHaveLength(51);
    expect(s[0]).toBe(1);
    expect(s[50]).toBe(0);
    for (let i = 1; i < s.length; i++) expect(s[i]).toBeLessThan(s[i - 1]);
    const e = Math.exp(flux2EmpiricalMu(4096, 50));
    expect(s[25]).toBeCloseTo(e / (e + 1), 10); // t = 0.5 maps to e^μ / (e^μ + 1)
  });
  it('FLUX.1: dev shifts by the resolution, schnell is linear', () => {
    expect(flux1Sigmas(4, 4096, false)).toEqual([1, 0.75, 0.5, 0.25, 0]);
    const dev = flux1Sigmas(4, 4096, true);
    expect(dev[2]).toBeCloseTo(Math.exp(1.15) / (Math.exp(1.15) + 1), 10);
  });
});

describe('flow Euler sampler', () => {
  const perImage = 6;
  const noise = () => new Rng(9).fork('initial-noise').fillNormal(new Float32Array(perImage));

  it('true CFG: one batched call per step, v_u + g(v_c − v_u), integrated from 1 to 0', async () => {
    const calls: { n: number; cfg: boolean }[] = [];
    // Unconditional velocity 1, conditional 3 (constant): x0 = ε − (1 + g·2).
    const out = await sampleFlowEuler(async (x, _t, o) => {
      calls.push({ n: x.length, cfg: o.cfg });
      return Float32Array.from(x, (_, i) => (i < x.length / 2 ? 1 : 3));
    }, { sigmas: flux2Sigmas(5, 256), guidance: { mode: 'cfg', scale: 4 }, seed: 9, perImage });
    expect(calls).toEqual(new Array(5).fill({ n: 2 * perImage, cfg: true }));
    noise().forEach((e, i) => expect(out[i]).toBeCloseTo(e - 9, 5));
  });

  it('klein\'s 4-step distilled release through CFG scale 1: one conditional call per step at the FLUX.2 schedule\'s levels', async () => {
    // The Sampler and Train's previews hand klein { mode: 'cfg', scale }: at 1 there is no empty-prompt
    // prediction to mix, so each step is the conditional call alone, as the distilled release samples.
    const calls: { n: number; cfg: boolean; t: number }[] = [];
    const sigmas = flux2Sigmas(4, 1024);
    const out = await sampleFlowEuler(async (x, t, o) => {
      calls.push({ n: x.length, cfg: o.cfg, t });
      return new Float32Array(x.length).fill(2);
    }, { sigmas, guidance: { mode: 'cfg', scale: 1 }, seed: 9, perImage });
    expect(calls.map((c) => ({ n: c.n, cfg: c.cfg }))).toEqual(new Array(4).fill({ n: perImage, cfg: false }));
    calls.forEach((c, i) => expect(c.t).toBeCloseTo(sigmas[i], 6));
    // A constant velocity 2 integrated from 1 to 0: x0 = ε − 2.
    noise().forEach((e, i) => expect(out[i]).toBeCloseTo(e - 2, 5));
  });

  it('distilled: conditional calls only; embedded guidance passes the scale to the model', async () => {
    const seen: (number | undefined)[] = [];
    const model = async (x: Float32Array, t: number, o: { cfg: boolean; guidance?: number }) => {
      seen.push(o.guidance);
      expect(o.cfg).toBe(false);
      return new Float32Array(x.length).fill(-t); // v = −t: x = ε + Σ (t_next − t)·(−t)
    };
    const sigmas = [1, 0.5, 0];
    const out = await sampleFlowEuler(model, { sigmas, guidance: { mode: 'distilled' }, seed: 9, perImage });
    noise().forEach((e, i) => expect(out[i]).toBeCloseTo(e + (-0.5) * -1 + (-0.5) * -0.5, 5));
    expect(seen).toEqual([undefined, undefined]);
    seen.length = 0;
    await sampleFlowEuler(model, { sigmas, guidance: { mode: 'embedded', scale: 3.5 }, seed: 9, perImage });
    expect(seen).toEqual([3.5, 3.5]);
  });
});
