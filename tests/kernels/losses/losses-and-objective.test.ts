// Losses match their formulas (values and finite-difference gradients); the in-graph diffusion
// objective equals the host references in kernels/schedules; min-SNR weights and noise offset behave.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { elementLoss, perSampleLoss, batchLoss, ddpmTrainingPair, flowTrainingPair, minSnrWeights, applyNoiseOffset, type LossOptions } from '../../../kernels/losses';
import { ddpmSchedule, ddpmNoisy, ddpmTarget, flowNoisy, flowTarget, minSnrWeight, snrAt } from '../../../kernels/schedules';
import { Rng } from '../../../kernels/random';
import { gradCheck, runtime } from '../gradcheck';

afterAll(() => runtime().close());
const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

async function run(inputs: K.Tensor[], outs: Record<string, K.Tensor>, feeds: Record<string, K.HostTensor>) {
  return (await runtime().load(K.compileGraph(inputs, outs))).run(feeds);
}

describe('losses', () => {
  const pred = Float32Array.from([0.2, -1.5, 3, 0.05, -0.4, 2.5]);
  const target = Float32Array.from([0, 0.5, 0.5, 0, -0.3, -0.5]);
  const formulas: [LossOptions, (d: number) => number][] = [
    [{ type: 'mse' }, (d) => d * d],
    [{ type: 'l1' }, (d) => Math.abs(d)],
    [{ type: 'huber', delta: 1 }, (d) => (Math.abs(d) <= 1 ? 0.5 * d * d : Math.abs(d) - 0.5)],
    [{ type: 'huber', delta: 0.3 }, (d) => (Math.abs(d) <= 0.3 ? 0.5 * d * d : 0.3 * (Math.abs(d) - 0.15))],
    [{ type: 'pseudo_huber', c: 0.1 }, (d) => 2 * 0.1 * (Math.sqrt(d * d + 0.01) - 0.1)],
  ];
  for (const [o, f] of formulas) {
    it(`${o.type}${o.delta ? ` δ=${o.delta}` : ''}: values, per-sample means and weighted batch mean`, async () => {
      const p = K.input('p', [2, 3]), t = K.input('t', [2, 3]), w = K.input('w', [2]);
      const per = perSampleLoss(p, t, o);
      const out = await run([p, t, w], { e: elementLoss(p, t, o), per, batch: batchLoss(per, w) },
        { p: f32([2, 3], pred), t: f32([2, 3], target), w: f32([2], Float32Array.from([2, 0.5])) });
      const expected = Array.from(pred, (v, i) => f(v - target[i]));
      (out.e.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
      const s0 = (expected[0] + expected[1] + expected[2]) / 3, s1 = (expected[3] + expected[4] + expected[5]) / 3;
      expect(out.per.data[0]).toBeCloseTo(s0, 5);
      expect(out.batch.data[0]).toBeCloseTo((2 * s0 + 0.5 * s1) / 2, 5);
    });
  }
  it('gradients match finite differences (Huber, pseudo-Huber)', async () => {
    const away = Float32Array.from([0.5, -1.7, 0.1, 2.2, -0.05, 0.9]); // clear of Huber's kink at ±δ
    expect(await gradCheck((a, b) => elementLoss(a, b, { type: 'huber', delta: 1 }), [{ shape: [6], data: away }, { shape: [6], data: new Float32Array(6) }])).toBeLessThan(2e-2);
    expect(await gradCheck((a, b) => perSampleLoss(a, b, { type: 'pseudo_huber', c: 0.5 }), [{ shape: [2, 3] }, { shape: [2, 3] }])).toBeLessThan(2e-2);
  });
  it('bad options are named', () => {
    const p = K.input('p', [2]);
    expect(() => elementLoss(p, p, { type: 'huber', delta: 0 })).toThrow(/huber delta must be > 0/);
    expect(() => elementLoss(p, p, { type: 'l3' as never })).toThrow(/unknown loss type 'l3'/);
  });
});

describe('diffusion objective in the graph equals the host references', () => {
  const B = 3, C = 2, S = 4, n = C * S;
  const rng = new Rng('objective');
  const x0 = rng.fillNormal(new Float32Array(B * n)), noise = rng.fillNormal(new Float32Array(B * n));
  const sched = ddpmSchedule();
  const steps = [0, 437, 999];
  const x = K.input('x0', [B, C, S]), e = K.input('noise', [B, C, S]);
  const feeds = { x0: f32([B, C, S], x0), noise: f32([B, C, S], noise) };
  const close = (a: Float32Array, b: Float32Array) => a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-5));

  for (const prediction of ['epsilon', 'v_prediction'] as const) {
    it(`DDPM ${prediction}`, async () => {
      const t = K.input('t', [B], 'int64');
      const { noisy, target } = ddpmTrainingPair(x, e, t, sched, prediction);
      const out = await run([x, e, t], { noisy, target, w: minSnrWeights(t, sched, 5, prediction) },
        { ...feeds, t: { dtype: 'int64', shape: [B], data: BigInt64Array.from(steps.map(BigInt)) } });
      steps.forEach((ts, b) => {
        const sl = (a: Float32Array) => a.subarray(b * n, (b + 1) * n);
        close(sl(out.noisy.data as Float32Array), ddpmNoisy(sl(x0), sl(noise), ts, sched));
        close(sl(out.target.data as Float32Array), ddpmTarget(prediction, sl(x0), sl(noise), ts, sched));
        expect(out.w.data[b]).toBeCloseTo(minSnrWeight(snrAt(sched, ts), 5, prediction), 5);
      });
      // min-SNR-γ down-weights low-noise steps (high SNR) and leaves noisy ones at ≤ 1.
      expect(out.w.data[0] as number).toBeLessThan(0.01);
    });
  }

  it('flow matching', async () => {
    const sig = K.input('sigma', [B]);
    const sigmas = [0, 0.3, 1];
    const { noisy, target } = flowTrainingPair(x, e, sig);
    const out = await run([x, e, sig], { noisy, target }, { ...feeds, sigma: f32([B], Float32Array.from(sigmas)) });
    sigmas.forEach((s, b) => {
      const sl = (a: Float32Array) => a.subarray(b * n, (b + 1) * n);
      close(sl(out.noisy.data as Float32Array), flowNoisy(sl(x0), sl(noise), s));
      close(sl(out.target.data as Float32Array), flowTarget(sl(x0), sl(noise)));
    });
  });
});

describe('noise offset', () => {
  it('adds one N(0, offset²) shift per (sample, channel), reproducibly, without touching the input', () => {
    const shape = [64, 4, 8, 8];
    const noise = new Rng('n').fillNormal(new Float32Array(64 * 4 * 64));
    const a = applyNoiseOffset(noise, shape, 0.1, new Rng('off'));
    const b = applyNoiseOffset(noise, shape, 0.1, new Rng('off'));
    expect(b).toEqual(a);
    const shifts: number[] = [];
    for (let p = 0; p < 256; p++) {
      const d0 = a[p * 64] - noise[p * 64];
      for (let i = 1; i < 64; i++) expect(Math.abs(a[p * 64 + i] - noise[p * 64 + i] - d0)).toBeLessThan(1e-6);
      shifts.push(d0);
    }
    const std = Math.sqrt(shifts.reduce((s, v) => s + v * v, 0) / shifts.length);
    expect(std).toBeGreaterThan(0.08);
    expect(std).toBeLessThan(0.12);
    expect(applyNoiseOffset(noise, shape, 0, new Rng('off'))).toEqual(noise);
    expect(() => applyNoiseOffset(noise, [1, 2], 0.1, new Rng('x'))).toThrow(/noise offset: noise has/);
  });
});
