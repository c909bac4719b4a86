// ComfyUI's `scheduler` choices — the noise levels a sampler steps through — computed over a model's own
// noise range, its "model sampling": the training sigmas of a DDPM model (SD), or the shifted flow levels
// of a flow-matching model (FLUX's time shift, Wan's fixed shift), as ComfyUI's ModelSamplingDiscrete,
// ModelSamplingFlux and ModelSamplingDiscreteFlow tabulate them. Formulas follow comfy/samplers.py and
// k-diffusion's get_sigmas_*; `auto` (the model's own schedule) is resolved by each family (flowSamplerSigmas
// below for the flow families).
import { flowUniPCSigmas } from './flow-unipc';

/** The Sampler widget's choices: `auto`, then ComfyUI's SCHEDULER_HANDLERS in its order. */
export const SCHEDULER_NAMES = ['auto', 'simple', 'sgm_uniform', 'karras', 'exponential', 'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** What ComfyUI calls a model's `model_sampling`: its table of noise levels and the timestep ↔ σ maps. */
export interface ModelSampling {
  /** σ of each training timestep, ascending (sigma_min first, sigma_max last). */
  readonly sigmas: Float64Array;
  /** A σ's timestep, in whatever units `sigma` reads. */
  timestep(sigma: number): number;
  /** The σ of a (fractional) timestep. */
  sigma(timestep: number): number;
}

/**
 * A DDPM model's noise levels (ModelSamplingDiscrete): σ_t = sqrt((1 − ᾱ_t)/ᾱ_t); a σ's timestep is the
 * nearest index in log σ, and a fractional timestep's σ interpolates log σ.
 */
export function discreteModelSampling(trainingSigmas: Float64Array): ModelSampling {
  const logs = trainingSigmas.map(Math.log);
  const n = logs.length;
  return {
    sigmas: trainingSigmas,
    timestep: (sigma) => {
      const l = Math.log(sigma);
      let best = 0;
      for (let i = 1; i < n; i++) if (Math.abs(logs[i]! - l) < Math.abs(logs[best]! - l)) best = i;
      return best;
    },
    sigma: (t) => {
      const c = Math.min(n - 1, Math.max(0, t));
      const lo = Math.floor(c), hi = Math.ceil(c), w = c - lo;
      return Math.exp((1 - w) * logs[lo]! + w * logs[hi]!);
    },
  };
}

/**
 * A flow-matching model's noise levels: `shift` (the family's schedule, from an evenly spaced time t ∈ [0, 1]
 * to σ) at t = i / timesteps for i = 1 … timesteps — 10000 levels for FLUX (ModelSamplingFlux), 1000 for
 * SD3-style discrete flow models such as Wan (ModelSamplingDiscreteFlow). The denoiser's timestep is σ
 * itself (ComfyUI scales both ways by the same multiplier), and a timestep's σ is shift(t).
 */
export function flowModelSampling(shift: (t: number) => number, timesteps: number): ModelSampling {
  if (!(Number.isInteger(timesteps) && timesteps >= 2)) throw new RangeError(`flow model sampling needs an integer number of timesteps >= 2, got ${timesteps}`);
  return {
    sigmas: Float64Array.from({ length: timesteps }, (_, i) => shift((i + 1) / timesteps)),
    timestep: (sigma) => sigma,
    sigma: shift,
  };
}

const linspace = (a: number, b: number, n: number) => Array.from({ length: n }, (_, i) => (n === 1 ? a : a + ((b - a) * i) / (n - 1)));
const nearZero = (x: number) => Math.abs(x) <= 1e-5;

/**
 * The `steps + 1` noise levels (the last 0) of ComfyUI's scheduler `name` on a model's sampling. Some give
 * fewer (beta drops repeated timesteps) and ddim_uniform starts below σ_max, as they do in ComfyUI.
 */
export function schedulerSigmas(name: string, ms: ModelSampling, steps: number): number[] {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  const table = ms.sigmas, n = table.length;
  const sigmaMin = table[0]!, sigmaMax = table[n - 1]!;
  switch (name) {
    case 'simple': {
      // Every (n / steps)-th level from the top.
      const every = n / steps;
      return [...Array.from({ length: steps }, (_, x) => table[n - 1 - Math.floor(x * every)]!), 0];
    }
    case 'normal':
    case 'sgm_uniform': {
      // Evenly spaced timesteps from σ_max's to σ_min's; sgm_uniform drops the last one and lands on 0 instead.
      const start = ms.timestep(sigmaMax), end = ms.timestep(sigmaMin);
      if (name === 'sgm_uniform') return [...linspace(start, end, steps + 1).slice(0, -1).map((t) => ms.sigma(t)), 0];
      // A schedule whose smallest σ is already 0 ends on it instead of appending one.
      const endsAtZero = nearZero(ms.sigma(end));
      return [...linspace(start, end, endsAtZero ? steps + 1 : steps).map((t) => ms.sigma(t)), ...(endsAtZero ? [] : [0])];
    }
    case 'karras': {
      // Karras et al. 2022, ρ = 7: evenly spaced in σ^(1/ρ).
      const rho = 7, hi = sigmaMax ** (1 / rho), lo = sigmaMin ** (1 / rho);
      return [...linspace(0, 1, steps).map((r) => (hi + r * (lo - hi)) ** rho), 0];
    }
    case 'exponential':
      return [...linspace(Math.log(sigmaMax), Math.log(sigmaMin), steps).map(Math.exp), 0];
    case 'ddim_uniform': {
      // Every (n / steps)-th level from the second smallest up, reversed.
      const zeroFirst = nearZero(table[1]!);
      const every = Math.max(Math.floor(n / (zeroFirst ? steps + 1 : steps)), 1);
      const levels: number[] = zeroFirst ? [] : [0];
      for (let x = 1; x < n; x += every) levels.push(table[x]!);
      return levels.reverse();
    }
    case 'beta': {
      // Timesteps at the quantiles of Beta(0.6, 0.6) (Lee et al. 2024, arXiv 2407.12173), repeats dropped.
      const out: number[] = [];
      let last = -1;
      for (let i = 0; i < steps; i++) {
        const t = roundHalfEven(betaQuantile(1 - i / steps, 0.6, 0.6) * (n - 1));
        if (t !== last) out.push(table[t]!);
        last = t;
      }
      return [...out, 0];
    }
    case 'linear_quadratic': {
      // Mochi's schedule: linear to 0.025 over the first half of the steps, quadratic after, scaled to σ_max.
      if (steps === 1) return [sigmaMax, 0];
      const threshold = 0.025, linearSteps = Math.floor(steps / 2), quadSteps = steps - linearSteps;
      const diff = linearSteps - threshold * steps;
      const quadCoef = diff / (linearSteps * quadSteps ** 2);
      const linCoef = threshold / linearSteps - (2 * diff) / quadSteps ** 2;
      const c = quadCoef * linearSteps ** 2;
      const t = [
        ...Array.from({ length: linearSteps }, (_, i) => (i * threshold) / linearSteps),
        ...Array.from({ length: quadSteps }, (_, j) => { const i = linearSteps + j; return quadCoef * i * i + linCoef * i + c; }),
        1,
      ];
      return t.map((x) => (1 - x) * sigmaMax);
    }
    case 'kl_optimal': {
      // Evenly spaced in arctan σ (A1111 PR 15608); one step is σ_max alone.
      const a = Math.atan(sigmaMin), b = Math.atan(sigmaMax);
      return [...Array.from({ length: steps }, (_, i) => { const r = steps === 1 ? 0 : i / (steps - 1); return Math.tan(r * a + (1 - r) * b); }), 0];
    }
    default:
      throw new Error(`scheduler: unknown scheduler '${name}' (known: ${SCHEDULER_NAMES.join(', ')})`);
  }
}

/**
 * The levels a flow sampler (euler or unipc) runs for `scheduler` on a family's schedule `shift` (noise level of
 * an evenly spaced time t ∈ [0, 1]) tabulated at `timesteps` levels: `auto` is the family's own — Euler on
 * shift(linspace(1, 0)), UniPC on flowUniPCSigmas — and any other name is ComfyUI's scheduler on those levels.
 * UniPC steps in λ = log((1 − σ)/σ), −∞ at σ = 1, so its levels are lowered to where its own schedule starts,
 * shift(1 − 1/1000), and repeats dropped.
 */
export function flowSamplerSigmas(sampler: string, scheduler: string, steps: number, shift: (t: number) => number, timesteps: number): number[] {
  if (scheduler === 'auto') {
    if (!(Number.isInteger(steps) && steps >= 1)) throw new RangeError(`steps must be a positive integer, got ${steps}`);
    return sampler === 'unipc' ? flowUniPCSigmas(steps, shift) : Array.from({ length: steps + 1 }, (_, i) => shift(1 - i / steps));
  }
  const sigmas = schedulerSigmas(scheduler, flowModelSampling(shift, timesteps), steps);
  if (sampler !== 'unipc') return sigmas;
  const top = shift(1 - 1 / 1000);
  return sigmas.map((s) => Math.min(s, top)).filter((s, i, all) => i === 0 || s < all[i - 1]!);
}

/** numpy.rint: to the nearest integer, halves to the even one. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** log Γ(x) for x > 0 (Lanczos, g = 7: about 15 significant digits). */
function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  const z = x - 1;
  let s = c[0]!;
  for (let i = 1; i < 9; i++) s += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** The continued fraction of the incomplete beta function (modified Lentz), valid for x < (a + 1)/(a + b + 2). */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1, d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 300; m++) {
    for (const num of [(m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)), (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b): the CDF of Beta(a, b) at x. */
export function betaCdf(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(a * Math.log(x) + b * Math.log(1 - x) + logGamma(a + b) - logGamma(a) - logGamma(b));
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(1 - x, b, a)) / b;
}

/** The q-quantile of Beta(a, b) (scipy.stats.beta.ppf), by bisection on the CDF. */
export function betaQuantile(q: number, a: number, b: number): number {
  if (q <= 0) return 0;
  if (q >= 1) return 1;
  // The median of a symmetric Beta is ½ exactly (bisection would land a rounding error off, and ComfyUI rounds it).
  if (a === b && q === 0.5) return 0.5;
  let lo = 0, hi = 1;
  for (let i = 0; i < 100 && hi - lo > 1e-15; i++) {
    const mid = (lo + hi) / 2;
    if (betaCdf(mid, a, b) < q) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}
