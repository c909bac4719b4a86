// ComfyUI's schedulers over a flow model's shifted noise levels (FLUX.2's empirical-μ shift tabulated at
// 10000 levels as ModelSamplingFlux does, Wan's fixed shift at 1000 as ModelSamplingDiscreteFlow does),
// each checked against its formula written out here, and the FLUX.2 / Wan families stepping on them.
import { describe, expect, it } from 'vitest';
import { betaCdf, betaQuantile, flowModelSampling, flowSamplerSigmas, schedulerSigmas, SCHEDULER_NAMES } from '../../../kernels/schedules/schedulers';
import { flux2Family, tinyFlux2Config } from '../../../kernels/flux/family';
import { sampleWan } from '../../../kernels/wan/sampling';
import { WAN21_T2V_14B } from '../../../kernels/wan/config';
import { ddpmSchedule } from '../../../kernels/schedules/ddpm';
import { samplingSigmas } from '../../../kernels/sd/samplers';
import { empiricalMu, fakeCall, shifted } from '../flux/flow-reference';

const steps = 10;
// FLUX.2 at 512² (1024 tokens), 10 steps: μ ≈ 1.85, so the levels crowd near 1.
const mu = empiricalMu(1024, steps);
const fluxShift = (t: number) => shifted(mu, t);
const wanShift = (t: number) => (5 * t) / (1 + 4 * t);
const cases = [
  { name: 'FLUX.2', shift: fluxShift, n: 10000 },
  { name: 'Wan', shift: wanShift, n: 1000 },
];

const lin = (a: number, b: number, k: number) => Array.from({ length: k }, (_, i) => (k === 1 ? a : a + ((b - a) * i) / (k - 1)));

/** Each scheduler from its published formula, over levels shift(i / n), i = 1 … n. */
function expected(name: string, shift: (t: number) => number, n: number, k: number): number[] {
  const level = (i: number) => shift((i + 1) / n); // the table ComfyUI keeps, index i
  const lo = level(0), hi = level(n - 1);
  switch (name) {
    case 'simple': return [...Array.from({ length: k }, (_, x) => level(n - 1 - Math.floor((x * n) / k))), 0];
    case 'normal': return [...lin(hi, lo, k).map(shift), 0];
    case 'sgm_uniform': return [...lin(hi, lo, k + 1).slice(0, k).map(shift), 0];
    case 'karras': return [...lin(0, 1, k).map((r) => (hi ** (1 / 7) + r * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7), 0];
    case 'exponential': return [...lin(Math.log(hi), Math.log(lo), k).map(Math.exp), 0];
    case 'ddim_uniform': {
      const out = [0];
      for (let x = 1; x < n; x += Math.floor(n / k)) out.push(level(x));
      return out.reverse();
    }
    case 'linear_quadratic': {
      // Mochi: 1 − σ runs linearly to 0.025 over k/2 steps, then quadratically to 1.
      const m = Math.floor(k / 2), q = k - m, tau = 0.025;
      const a = (m - tau * k) / (m * q * q), b = tau / m - (2 * (m - tau * k)) / (q * q);
      const u = [...Array.from({ length: m }, (_, i) => (i * tau) / m), ...Array.from({ length: q }, (_, j) => a * (m + j) ** 2 + b * (m + j) + a * m * m), 1];
      return u.map((v) => (1 - v) * hi);
    }
    case 'kl_optimal': return [...lin(0, 1, k).map((r) => Math.tan(r * Math.atan(lo) + (1 - r) * Math.atan(hi))), 0];
    default: throw new Error(name);
  }
}

describe('ComfyUI schedulers on flow models', () => {
  for (const { name, shift, n } of cases) {
    it(`${name}: every scheduler matches its formula, falls monotonically from the shifted σ_max to 0`, () => {
      const ms = flowModelSampling(shift, n);
      expect(ms.sigmas.length).toBe(n);
      expect(ms.sigmas[n - 1]).toBe(1);
      for (const scheduler of SCHEDULER_NAMES.filter((s) => s !== 'auto' && s !== 'beta')) {
        const got = schedulerSigmas(scheduler, ms, steps);
        const want = expected(scheduler, shift, n, steps);
        expect(got.length, scheduler).toBe(want.length);
        got.forEach((v, i) => expect(v, `${scheduler}[${i}]`).toBeCloseTo(want[i]!, 12));
        expect(got.at(-1), scheduler).toBe(0);
        for (let i = 1; i < got.length; i++) expect(got[i]!, `${scheduler} ${i}`).toBeLessThan(got[i - 1]!);
        // ddim_uniform starts at the largest level on its stride, as in ComfyUI; the rest at σ_max itself.
        if (scheduler === 'ddim_uniform') expect(got[0]).toBeCloseTo(shift((1 + Math.floor(n / steps) * (steps - 1) + 1) / n), 12);
        else expect(got[0], scheduler).toBeCloseTo(1, 12);
      }
    });
  }

  it('the schedulers give different levels from each other and from the family\'s own', () => {
    const own = flowSamplerSigmas('euler', 'auto', steps, fluxShift, 10000);
    const all = SCHEDULER_NAMES.filter((s) => s !== 'simple').map((s) => flowSamplerSigmas('euler', s, steps, fluxShift, 10000).join());
    expect(new Set(all).size).toBe(all.length);
    // simple takes every (n / steps)-th level from the top: the family's own Euler schedule.
    flowSamplerSigmas('euler', 'simple', steps, fluxShift, 10000).forEach((v, i) => expect(v).toBeCloseTo(own[i]!, 12));
  });

  it('beta: timesteps at the Beta(0.6, 0.6) quantiles as scipy gives them, repeats dropped', () => {
    // numpy.rint(scipy.stats.beta.ppf(1 − linspace(0, 1, k, endpoint=False), 0.6, 0.6) · (n − 1)), printed by scipy 1.17.
    const scipy: [number, number, number[]][] = [
      [1000, 10, [999, 959, 876, 765, 637, 500, 362, 234, 123, 40]],
      [10000, 8, [9999, 9427, 8242, 6706, 5000, 3293, 1757, 572]],
      [1000, 25, [999, 990, 972, 946, 913, 876, 835, 789, 741, 690, 637, 582, 527, 472, 417, 362, 309, 258, 210, 164, 123, 86, 53, 27, 9]],
    ];
    for (const [n, k, idx] of scipy) {
      const got = schedulerSigmas('beta', flowModelSampling(wanShift, n), k);
      expect(got).toEqual([...idx.map((i) => wanShift((i + 1) / n)), 0]);
    }
    // More steps than distinct rounded timesteps: repeats are dropped.
    expect(schedulerSigmas('beta', flowModelSampling(wanShift, 20), 60).length).toBeLessThan(61);
  });

  it('the Beta quantile inverts a CDF integrated numerically here', () => {
    // Beta(a, a) is symmetric: F(x) = ∫₀ˣ t^(a−1)(1−t)^(a−1) dt / (2·∫₀^½ …), 1 − F(1 − x) above ½; t = s^(1/a)
    // removes the singularity at 0, and below ½ the other factor is smooth (Simpson's rule).
    const cdf = (x: number, a: number): number => {
      if (x > 0.5) return 1 - cdf(1 - x, a);
      const f = (s: number) => (1 - s ** (1 / a)) ** (a - 1) / a;
      const simpson = (hiS: number) => { const m = 20000, h = hiS / m; let acc = f(0) + f(hiS); for (let i = 1; i < m; i++) acc += (i % 2 ? 4 : 2) * f(i * h); return (acc * h) / 3; };
      return simpson(x ** a) / (2 * simpson(0.5 ** a));
    };
    for (const q of [0.05, 0.3, 0.5, 0.8]) {
      const x = betaQuantile(q, 0.6, 0.6);
      expect(cdf(x, 0.6)).toBeCloseTo(q, 6);
      expect(betaCdf(x, 0.6, 0.6)).toBeCloseTo(q, 12);
    }
    expect(betaQuantile(0.5, 0.6, 0.6)).toBeCloseTo(0.5, 12);
  });

  it('UniPC levels stay below 1: lowered to where its own schedule starts, repeats dropped', () => {
    const top = fluxShift(0.999);
    for (const s of ['karras', 'normal', 'simple', 'beta']) {
      const got = flowSamplerSigmas('unipc', s, steps, fluxShift, 10000);
      expect(got[0], s).toBe(top);
      for (let i = 1; i < got.length; i++) expect(got[i]!, s).toBeLessThan(got[i - 1]!);
    }
    // auto: the family's own UniPC levels (t from 1 − 1/1000, shifted, then 0).
    expect(flowSamplerSigmas('unipc', 'auto', 4, fluxShift, 10000)).toEqual([...[0, 1, 2, 3].map((i) => fluxShift(0.999 * (1 - i / 4))), 0]);
  });

  it('an unknown scheduler is refused by name', () => {
    expect(() => schedulerSigmas('turbo', flowModelSampling(wanShift, 1000), 4)).toThrow(/unknown scheduler 'turbo'/);
  });

  it('SD\'s auto and normal are evenly spaced training timesteps, interpolated in log σ', () => {
    const s = ddpmSchedule();
    const sig = Array.from(s.alphasCumprod, (a) => Math.sqrt((1 - a) / a));
    const want = [...lin(999, 0, 6).map((t) => { const f = Math.floor(t), w = t - f; return Math.exp((1 - w) * Math.log(sig[f]!) + w * Math.log(sig[Math.min(999, f + 1)]!)); }), 0];
    for (const name of ['auto', 'normal']) samplingSigmas(s, 6, name).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 10));
  });
});

describe('flow families step on the chosen scheduler', () => {
  it('FLUX.2 [klein]: karras drives the model at Karras levels of BFL\'s shift for the size and step count', async () => {
    const c = tinyFlux2Config();
    const run = { sampler: 'euler', steps: 4, cfgScale: 1, seed: 1, latentShape: [128, 2, 2], batch: 1 };
    const karras = fakeCall();
    await flux2Family.sample(karras.call, c, { ...run, scheduler: 'karras' });
    const m = empiricalMu(4, 4);
    const want = expected('karras', (t) => shifted(m, t), 10000, 4).slice(0, 4);
    karras.timesteps.forEach((t, i) => expect(t / 1000).toBeCloseTo(want[i]!, 6));
    const own = fakeCall();
    await flux2Family.sample(own.call, c, { ...run, scheduler: 'auto' });
    own.timesteps.forEach((t, i) => expect(t / 1000).toBeCloseTo(shifted(m, 1 - i / 4), 6));
    expect(karras.timesteps).not.toEqual(own.timesteps);
  });

  it('Wan: exponential drives the model at exponential levels of its fixed shift', async () => {
    const seen: number[] = [];
    const call = async (x: Float32Array, t: number) => { seen.push(t); return new Float32Array(x.length); };
    const shift = (t: number) => (5 * t) / (1 + 4 * t); // WAN21_T2V_14B samples at shift 5
    await sampleWan(call, WAN21_T2V_14B, { sampler: 'euler', scheduler: 'exponential', steps: 5, cfgScale: 1, seed: 2, latentShape: [2, 1, 2, 2], batch: 1 });
    const want = expected('exponential', shift, 1000, 5).slice(0, 5);
    seen.forEach((t, i) => expect(t / 1000).toBeCloseTo(want[i]!, 6));
  });
});
