// ai-toolkit's flow-matching timestep types by name, checked on fixed-seed draws against moments and
// histograms computed here from the published formulas (not from the sampler's CDF code):
//   linear  t = u;  sigmoid  t = sigmoid(z), z ~ N(0, 1);  shift  t = s·u / (1 + (s − 1)·u);
//   dynamic shift  s = e^μ, μ = 0.5 + (L − 256)·(1.15 − 0.5)/(4096 − 256) for L latent tokens (FLUX);
//   weighted  uniform draws like linear (its weighting is on the loss, not the draw);
//   content / style bias: the level is 1 − u³ / u³ (ai-toolkit's cubic index sampling).
import { describe, expect, it } from 'vitest';
import { sampleTimesteps, type TimestepSamplingConfig } from '../../../kernels/schedules/timestep-sampling';
import { imageSeqLen } from '../../../kernels/schedules/flow-matching';
import { Rng } from '../../../kernels/random';
import scheduleNode, { type ScheduleValue } from '../../../nodes/timestep-schedule';
import { nodeContext } from '../../nodes/context';

const N = 200_000;
/** ∫₀¹ f by Simpson's rule. */
function integrate01(f: (x: number) => number, n = 20_000): number {
  const h = 1 / n;
  let s = f(0) + f(1);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(i * h);
  return (s * h) / 3;
}
/** E[g(z)] for z ~ N(0, 1), by Simpson's rule on [−12, 12]. */
function normalExpectation(g: (z: number) => number): number {
  return 24 * integrate01((x) => { const z = -12 + 24 * x; return g(z) * Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI); });
}
/** Mean and variance of t = g(u), u uniform. */
const fromUniform = (g: (u: number) => number) => {
  const m = integrate01(g);
  return { mean: m, variance: integrate01((u) => g(u) ** 2) - m * m };
};

function drawn(cfg: TimestepSamplingConfig, seed = 1) {
  const t = sampleTimesteps(new Rng(seed), N, cfg);
  let m = 0;
  for (const x of t) m += x;
  m /= N;
  let v = 0, m4 = 0;
  for (const x of t) { v += (x - m) ** 2; m4 += (x - m) ** 4; }
  v /= N; m4 /= N;
  return { t, mean: m, variance: v, meanSe: Math.sqrt(v / N), varianceSe: Math.sqrt((m4 - v * v) / N) };
}
function expectMoments(cfg: TimestepSamplingConfig, want: { mean: number; variance: number }) {
  const d = drawn(cfg);
  expect(Math.abs(d.mean - want.mean), `${JSON.stringify(cfg)} mean ${d.mean} vs ${want.mean}`).toBeLessThan(5 * d.meanSe);
  expect(Math.abs(d.variance - want.variance), `${JSON.stringify(cfg)} variance ${d.variance} vs ${want.variance}`).toBeLessThan(5 * d.varianceSe);
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const shiftBy = (s: number) => (u: number) => (s * u) / (1 + (s - 1) * u);
const fluxMu = (tokens: number) => 0.5 + ((tokens - 256) * (1.15 - 0.5)) / (4096 - 256);

describe('timestep types: moments of 200k seeded draws match the formulas', () => {
  it('linear: uniform, mean 1/2, variance 1/12', () => expectMoments({ timestepType: 'linear' }, { mean: 0.5, variance: 1 / 12 }));

  it('sigmoid: sigmoid of a standard normal (and of a scaled one)', () => {
    for (const scale of [1, 1.5]) {
      const mean = normalExpectation((z) => sigmoid(scale * z));
      expectMoments({ timestepType: 'sigmoid', sigmoidScale: scale }, { mean, variance: normalExpectation((z) => sigmoid(scale * z) ** 2) - mean * mean });
    }
  });

  it('shift: s·u / (1 + (s − 1)·u) of a uniform, for s = 3 (SD3) and s = 1 (no shift)', () => {
    expectMoments({ timestepType: 'shift', shift: 3 }, fromUniform(shiftBy(3)));
    expectMoments({ timestepType: 'shift', shift: 1 }, { mean: 0.5, variance: 1 / 12 });
  });

  it('dynamic shift: e^μ with μ from the image token count (FLUX: 256 → 0.5, 4096 → 1.15)', () => {
    for (const size of [256, 512, 1024]) {
      const tokens = imageSeqLen(size, size);
      expect(tokens).toBe((size / 16) ** 2);
      expectMoments({ timestepType: 'shift', shift: 3, dynamicShift: { imageSeqLen: tokens } }, fromUniform(shiftBy(Math.exp(fluxMu(tokens)))));
    }
  });

  it('weighted: uniform like linear, mean 1/2, variance 1/12 (ai-toolkit draws its index uniformly)', () => expectMoments({ timestepType: 'weighted' }, { mean: 0.5, variance: 1 / 12 }));

  it('content / style bias: the level 1 − u³ (content, high noise) or u³ (style, low noise)', () => {
    expectMoments({ timestepType: 'linear', timestepBias: 'high_noise' }, fromUniform((u) => 1 - u ** 3));
    expectMoments({ timestepType: 'linear', timestepBias: 'low_noise' }, fromUniform((u) => u ** 3));
    expectMoments({ timestepType: 'shift', shift: 3, timestepBias: 'high_noise' }, fromUniform((u) => shiftBy(3)(1 - u ** 3)));
  });
});

describe('Timestep Schedule node: dynamic shift', () => {
  const run = async (w: Record<string, unknown>) => {
    const { ctx, warnings } = nodeContext();
    const r = await scheduleNode.execute({ inputs: {}, widgets: scheduleNode.widgets.parse(w), ctx });
    return { value: r.outputs.schedule as ScheduleValue, histogram: r.ui!.histogram as number[], warnings };
  };

  it('sets μ from the resolution, or from the batch\'s token count when the trainer passes it; histogram follows', async () => {
    const { value, histogram } = await run({ timestepType: 'shift', dynamicShift: true, resolution: 512 });
    expect(value.config.dynamicShift).toEqual({ imageSeqLen: 1024 });
    const cdf = (s: number) => (t: number) => t / (s - (s - 1) * t); // inverse of the shift: P(T ≤ t)
    const s512 = Math.exp(fluxMu(1024));
    // The preview's 50 bins are the formula's bin masses.
    histogram.forEach((p, i) => expect(p).toBeCloseTo(cdf(s512)((i + 1) / 50) - cdf(s512)(i / 50), 6));
    // Seeded draws land in the 10 bins as the formula says, at the resolution's μ and at a batch's own μ.
    for (const [seqLen, s] of [[undefined, s512], [4096, Math.exp(1.15)]] as const) {
      const t = value.sample(new Rng(3), N, 0, seqLen);
      const counts = new Array(10).fill(0);
      for (const x of t) counts[Math.min(9, Math.floor(x * 10))]++;
      counts.forEach((c, i) => {
        const p = cdf(s)((i + 1) / 10) - cdf(s)(i / 10);
        expect(Math.abs(c / N - p), `seqLen ${seqLen} bin ${i}`).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
      });
    }
  });

  it('a fixed shift ignores the token count; dynamicShift on another type warns', async () => {
    const fixed = (await run({ timestepType: 'shift', shift: 3 })).value;
    expect(fixed.sample(new Rng(4), 100, 0, 4096)).toEqual(fixed.sample(new Rng(4), 100, 0));
    const { warnings } = await run({ timestepType: 'sigmoid', dynamicShift: true });
    expect(warnings.join()).toMatch(/dynamicShift applies to the shift type only/);
  });
});
