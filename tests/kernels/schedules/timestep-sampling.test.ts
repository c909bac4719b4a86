import { describe, expect, it } from 'vitest';
import { normalCdf, normalQuantile, Rng } from '../../../kernels/random';
import {
  sampleTimesteps,
  shiftSigma,
  timestepDistribution,
  timestepHistogram,
  timestepLossWeight,
  TIMESTEP_TYPES,
  type TimestepBias,
  type TimestepSamplingConfig,
  type TimestepType,
} from '../../../kernels/schedules';

const N = 100_000;
/** Kolmogorov–Smirnov critical distance at α = 0.001 for N draws: 1.95 / sqrt(N) ≈ 0.0062. */
const KS_BOUND = 1.95 / Math.sqrt(N);

function ksDistance(samples: ArrayLike<number>, cdf: (t: number) => number, upTo = Infinity): number {
  const xs = Float64Array.from(samples).sort();
  let d = 0;
  for (let i = 0; i < xs.length && xs[i] < upTo; i++) {
    const f = cdf(xs[i]);
    d = Math.max(d, (i + 1) / xs.length - f, f - i / xs.length);
  }
  return d;
}

// Reference CDFs written out independently of the implementation (closed forms / numeric integration).
const logit = (t: number) => Math.log(t / (1 - t));
const lognormMax = Math.exp(0.333 * normalQuantile(1 - 1 / 750));
const referenceCdf: Record<TimestepType, (t: number) => number> = {
  linear: (t) => Math.min(1, Math.max(0, t)),
  sigmoid: (t) => (t <= 0 ? 0 : t >= 1 ? 1 : normalCdf(logit(t))),
  shift: (t) => (t <= 0 ? 0 : t >= 1 ? 1 : t / (3 - 2 * t)), // inverse of 3u / (1 + 2u)
  weighted: (t) => Math.min(1, Math.max(0, t)), // ai-toolkit draws `weighted` like `linear`
  lognorm_blend: (t) =>
    t < 0 ? 0 : t >= 1 ? 1 : 0.25 * t + 0.75 * (1 - normalCdf(Math.log(lognormMax * (1 - t)) / 0.333)),
};

describe('timestep types match their intended distributions (KS over 100k draws < 1.95/sqrt(N))', () => {
  for (const type of TIMESTEP_TYPES) {
    it(`${type}`, () => {
      const ts = sampleTimesteps(new Rng(`ts-${type}`), N, { timestepType: type });
      expect(ksDistance(ts, referenceCdf[type])).toBeLessThan(KS_BOUND);
      // The implementation's own CDF (used by the preview) agrees with the reference everywhere.
      const dist = timestepDistribution({ timestepType: type });
      for (let t = 0; t <= 1; t += 0.01) expect(Math.abs(dist.cdf(t) - referenceCdf[type](t))).toBeLessThan(1e-6);
    });
  }

  it('sigmoid equals sigmoid(z) for a standard normal z drawn by Box–Muller', () => {
    const rng = new Rng('box-muller');
    const direct = Float64Array.from({ length: N }, () => 1 / (1 + Math.exp(-rng.normal())));
    expect(ksDistance(direct, timestepDistribution({ timestepType: 'sigmoid' }).cdf)).toBeLessThan(KS_BOUND);
  });

  it('weighted draws exactly what linear draws, with every bias and range', () => {
    for (const cfg of [{}, { timestepBias: 'high_noise' }, { timestepBias: 'low_noise', minTimestep: 0.1, maxTimestep: 0.8 }] as const) {
      const w = sampleTimesteps(new Rng('same'), 1000, { ...cfg, timestepType: 'weighted' });
      expect(w).toEqual(sampleTimesteps(new Rng('same'), 1000, { ...cfg, timestepType: 'linear' }));
    }
  });

  it('lognorm_blend equals ai-toolkit\'s recipe: 75% 1 - X/max with X lognormal(0, 0.333), 25% uniform', () => {
    const rng = new Rng('lognorm');
    const direct = Float64Array.from({ length: N }, () =>
      rng.uniform() < 0.75 ? Math.max(0, 1 - Math.exp(0.333 * rng.normal()) / lognormMax) : rng.uniform(),
    );
    expect(ksDistance(direct, timestepDistribution({ timestepType: 'lognorm_blend' }).cdf)).toBeLessThan(KS_BOUND);
  });

  it('shift follows the fixed or the resolution-dependent shift', () => {
    const fixed = sampleTimesteps(new Rng(1), N, { timestepType: 'shift', shift: 5 });
    expect(ksDistance(fixed, (t) => t / (5 - 4 * t))).toBeLessThan(KS_BOUND);
    // 1024x1024 Flux: μ = 1.15, so the shift is e^1.15.
    const dynamic = sampleTimesteps(new Rng(2), N, { timestepType: 'shift', dynamicShift: { imageSeqLen: 4096 } });
    const s = Math.exp(1.15);
    expect(ksDistance(dynamic, (t) => t / (s - (s - 1) * t))).toBeLessThan(KS_BOUND);
    expect(shiftSigma(0.5, s)).toBeGreaterThan(0.75);
  });
});

describe('timestep bias', () => {
  const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('high noise moves mass up, low noise moves it down, for every type', () => {
    for (const type of TIMESTEP_TYPES) {
      const m = (bias: TimestepBias) => mean(sampleTimesteps(new Rng(`bias-${type}`), 20_000, { timestepType: type, timestepBias: bias }));
      const [balanced, high, low] = [m('balanced'), m('high_noise'), m('low_noise')];
      expect(high).toBeGreaterThan(balanced + 0.05);
      expect(low).toBeLessThan(balanced - 0.05);
    }
  });

  it('follows ai-toolkit\'s cubic index sampling: P(t <= x) = 1 - (1 - F(x))^(1/3) for high noise, F(x)^(1/3) for low', () => {
    for (const type of ['linear', 'sigmoid'] as const) {
      const F = referenceCdf[type];
      const high = sampleTimesteps(new Rng(`h-${type}`), N, { timestepType: type, timestepBias: 'high_noise' });
      expect(ksDistance(high, (t) => 1 - Math.cbrt(1 - F(t)))).toBeLessThan(KS_BOUND);
      const low = sampleTimesteps(new Rng(`l-${type}`), N, { timestepType: type, timestepBias: 'low_noise' });
      expect(ksDistance(low, (t) => Math.cbrt(F(t)))).toBeLessThan(KS_BOUND);
    }
  });

  it('matches a literal emulation of ai-toolkit (sorted descending schedule indexed by u³·N) below its top entry', () => {
    // ai-toolkit: timesteps = sort(sigmoid(randn(1000)), descending); t = timesteps[floor(u^3 * 1000)].
    // Its index 0 catches every u < 0.1, so 10% of its draws sit on the single noisiest entry; the
    // continuous sampler spreads that mass over the top 0.1% quantile. Each of the next few entries
    // still carries percents of the mass, so compare below the top 1% quantile (the 10 noisiest entries).
    const rng = new Rng('emulate');
    const emulated: number[] = [];
    for (let round = 0; round < 100; round++) {
      const schedule = Float64Array.from({ length: 1000 }, () => 1 / (1 + Math.exp(-rng.normal()))).sort().reverse();
      for (let i = 0; i < 1000; i++) emulated.push(schedule[Math.floor(rng.uniform() ** 3 * 1000)]);
    }
    const ours = timestepDistribution({ timestepType: 'sigmoid', timestepBias: 'high_noise' });
    const top = 1 / (1 + Math.exp(-normalQuantile(0.99)));
    expect(ksDistance(emulated, ours.cdf, top)).toBeLessThan(0.01);
    expect(ksDistance(emulated, ours.cdf)).toBeLessThan(0.1);
  });
});

describe('timestep range', () => {
  it('every draw lies in [min, max], with the type and bias acting inside the range', () => {
    const cfg: TimestepSamplingConfig = { timestepType: 'sigmoid', timestepBias: 'high_noise', minTimestep: 0.2, maxTimestep: 0.7 };
    const ts = sampleTimesteps(new Rng(3), N, cfg);
    expect(Math.min(...ts)).toBeGreaterThanOrEqual(0.2);
    expect(Math.max(...ts)).toBeLessThanOrEqual(0.7);
    const F = referenceCdf.sigmoid;
    const truncated = (t: number) => (t <= 0.2 ? 0 : t >= 0.7 ? 1 : (F(t) - F(0.2)) / (F(0.7) - F(0.2)));
    expect(ksDistance(ts, (t) => 1 - Math.cbrt(1 - truncated(t)))).toBeLessThan(KS_BOUND);
  });

  it('refuses empty or inverted ranges and unknown names', () => {
    expect(() => timestepDistribution({ timestepType: 'linear', minTimestep: 0.6, maxTimestep: 0.4 })).toThrow(/minTimestep < maxTimestep/);
    expect(() => timestepDistribution({ timestepType: 'cubic' as never })).toThrow(/unknown timestep type "cubic"/);
    expect(() => timestepDistribution({ timestepType: 'linear', timestepBias: 'content' as never })).toThrow(/unknown timestep bias/);
  });
});

describe('preview histogram', () => {
  it('sums to 1 and agrees with 100k draws bin by bin (within 5 standard errors)', () => {
    for (const cfg of [
      { timestepType: 'sigmoid' },
      { timestepType: 'lognorm_blend', timestepBias: 'low_noise' },
      { timestepType: 'shift', shift: 3, minTimestep: 0.1 },
    ] as TimestepSamplingConfig[]) {
      const h = timestepHistogram(cfg, 20);
      expect(h.edges.length).toBe(21);
      expect(h.probability.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      const counts = new Array(20).fill(0);
      for (const t of sampleTimesteps(new Rng(9), N, cfg)) counts[t === 0 ? 0 : Math.min(19, Math.ceil(t * 20) - 1)]++;
      for (let i = 0; i < 20; i++) {
        const p = h.probability[i];
        expect(Math.abs(counts[i] / N - p)).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / N) + 1e-9);
      }
    }
  });

  it('shows the shapes users expect: sigmoid peaks mid-range, linear is flat, a range zeroes the outside', () => {
    const sig = timestepHistogram({ timestepType: 'sigmoid' }, 10).probability;
    expect(sig[4]).toBeGreaterThan(sig[0] * 3);
    for (const p of timestepHistogram({ timestepType: 'linear' }, 10).probability) expect(p).toBeCloseTo(0.1, 12);
    const ranged = timestepHistogram({ timestepType: 'linear', minTimestep: 0.5 }, 10).probability;
    expect(ranged.slice(0, 5).every((p) => p === 0)).toBe(true);
  });
});

describe('weighted loss weight: ai-toolkit\'s table (toolkit/timestep_weighing/default_weighing_scheme.py)', () => {
  // Entries of ai-toolkit's table as it prints them, at schedule index i (timestep 1000 − i, noise level (1000 − i)/1000).
  const published: [number, number][] = [[0, 0.905706524848938], [1, 0.9097874164581299], [124, 1.5226575136184692], [500, 0.9254037141799927], [750, 0.715220034122467], [997, 0.4447800815105438], [999, 0.4472601115703583]];

  it('is the table entry at each of ai-toolkit\'s timesteps (float32 precision)', () => {
    for (const [i, w] of published) expect(Math.abs(timestepLossWeight('weighted', (1000 - i) / 1000) - w), `index ${i}`).toBeLessThan(1e-7);
  });

  it('is linear between entries, held at the end entries beyond them, and has mean 1 over uniform draws', () => {
    const mid = timestepLossWeight('weighted', 0.9995);
    expect(mid).toBeCloseTo((0.905706524848938 + 0.9097874164581299) / 2, 7);
    expect(timestepLossWeight('weighted', 0)).toBeCloseTo(0.4472601115703583, 7);
    expect(timestepLossWeight('weighted', 0.0004)).toBeCloseTo(0.4472601115703583, 7);
    let sum = 0;
    for (let i = 0; i < 1000; i++) sum += timestepLossWeight('weighted', (1000 - i) / 1000);
    expect(sum / 1000).toBeCloseTo(1, 6);
    // Its peak is at high noise, not the middle: a bell over t would be highest at ½.
    let best = 0;
    for (let t = 0; t <= 1; t += 0.001) if (timestepLossWeight('weighted', t) > timestepLossWeight('weighted', best)) best = t;
    expect(best).toBeCloseTo(0.876, 3);
  });

  it('is 1 for every other type', () => {
    for (const type of TIMESTEP_TYPES.filter((x) => x !== 'weighted')) for (const t of [0, 0.3, 0.876, 1]) expect(timestepLossWeight(type, t)).toBe(1);
  });
});
