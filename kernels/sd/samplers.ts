// Preview samplers as A1111/ComfyUI name them — Euler, Euler ancestral, DDIM, DPM++ 2M (optionally
// with Karras sigmas) — for epsilon and v prediction, with classifier-free guidance. The loop runs on
// the host; each step is one batched model call (uncond and cond together). Seeded and reproducible.
import { Rng } from '../random';
import type { DdpmSchedule, PredictionType } from '../schedules/ddpm';
import { discreteModelSampling, schedulerSigmas } from '../schedules/schedulers';

export type SamplerName = 'euler' | 'euler_ancestral' | 'ddim' | 'dpmpp_2m';
export const SAMPLER_NAMES: readonly SamplerName[] = ['euler', 'euler_ancestral', 'ddim', 'dpmpp_2m'];
/** DDIM steps on SD's even ("leading") timesteps, not on a scheduler's noise levels: the schedulers it takes. */
export const DDIM_SCHEDULERS: readonly string[] = ['auto', 'normal'];

/**
 * One model evaluation: `x` holds 2n latents (the n unconditional first, then the n conditional),
 * `timestep` is the (possibly fractional) training timestep; returns the raw prediction (ε or v) in
 * the same layout.
 */
export type ModelCall = (x: Float32Array, timestep: number) => Promise<Float32Array>;

export interface SampleOptions {
  sampler: SamplerName;
  steps: number;
  /** Guidance scale; 1 = conditional prediction only. */
  cfgScale: number;
  seed: number;
  /** Latent shape of one image [C, h, w] and how many images. */
  latentShape: [number, number, number];
  batch?: number;
  schedule: DdpmSchedule;
  prediction: PredictionType;
  /** ComfyUI's scheduler (k-diffusion samplers; DDIM steps on even timesteps); `auto` and absent: normal. */
  scheduler?: string;
  /** DDIM eta (0 = deterministic). */
  eta?: number;
  onStep?: (step: number, total: number) => void;
}

/** Sigmas of the training timesteps: σ_t = sqrt((1-ᾱ)/ᾱ). */
function trainingSigmas(s: DdpmSchedule): Float64Array {
  return s.alphasCumprod.map((a) => Math.sqrt((1 - a) / a));
}

/** Fractional timestep of a sigma by interpolating log σ over the training sigmas (k-diffusion's sigma_to_t). */
export function sigmaToTimestep(sigma: number, sigmas: Float64Array): number {
  const ls = Math.log(sigma);
  const n = sigmas.length;
  if (ls <= Math.log(sigmas[0])) return 0;
  if (ls >= Math.log(sigmas[n - 1])) return n - 1;
  let lo = 0;
  while (lo < n - 2 && Math.log(sigmas[lo + 1]) < ls) lo++;
  const a = Math.log(sigmas[lo]), b = Math.log(sigmas[lo + 1]);
  return lo + (ls - a) / (b - a);
}

/** The step sigmas, high to low, ending with 0, of ComfyUI's scheduler on the training sigmas (`auto` = normal: evenly spaced timesteps). */
export function samplingSigmas(s: DdpmSchedule, steps: number, scheduler = 'auto'): Float64Array {
  return Float64Array.from(schedulerSigmas(scheduler === 'auto' ? 'normal' : scheduler, discreteModelSampling(trainingSigmas(s)), steps));
}

function guided(pred: Float32Array, perImage: number, n: number, scale: number): Float32Array {
  const out = new Float32Array(perImage * n);
  const half = perImage * n;
  for (let i = 0; i < half; i++) out[i] = pred[i] + scale * (pred[half + i] - pred[i]);
  return out;
}

function twice(x: Float32Array, scale: number): Float32Array {
  const out = new Float32Array(x.length * 2);
  for (let i = 0; i < x.length; i++) out[i] = out[x.length + i] = x[i] * scale;
  return out;
}

/** Runs the sampler; returns the final latents [batch, C, h, w] (in UNet latent space, not yet unscaled). */
export async function sample(model: ModelCall, o: SampleOptions): Promise<Float32Array> {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`sampler: steps must be a positive integer, got ${o.steps}`);
  if (!SAMPLER_NAMES.includes(o.sampler)) throw new Error(`unknown sampler '${o.sampler}' (known: ${SAMPLER_NAMES.join(', ')})`);
  const n = o.batch ?? 1;
  const perImage = o.latentShape[0] * o.latentShape[1] * o.latentShape[2];
  const rng = new Rng(o.seed);
  const noise = rng.fork('initial-noise').fillNormal(new Float32Array(perImage * n));
  const ancestral = rng.fork('ancestral-noise');
  return o.sampler === 'ddim' ? ddim(model, o, noise, ancestral, n, perImage) : kdiffusion(model, o, noise, ancestral, n, perImage);
}

/** Euler, Euler ancestral and DPM++ 2M on the k-diffusion σ parameterisation (x = x0 + σ ε). */
async function kdiffusion(model: ModelCall, o: SampleOptions, noise: Float32Array, rng: Rng, n: number, perImage: number) {
  const train = trainingSigmas(o.schedule);
  const sigmas = samplingSigmas(o.schedule, o.steps, o.scheduler);
  const x = noise.map((v) => v * sigmas[0]);
  let oldDenoised: Float32Array | undefined;
  const denoise = async (sigma: number) => {
    const cIn = 1 / Math.sqrt(sigma * sigma + 1);
    const pred = guided(await model(twice(x, cIn), sigmaToTimestep(sigma, train)), perImage, n, o.cfgScale);
    const d = new Float32Array(x.length);
    if (o.prediction === 'epsilon') for (let i = 0; i < x.length; i++) d[i] = x[i] - sigma * pred[i];
    else {
      const cSkip = 1 / (sigma * sigma + 1), cOut = -sigma * cIn;
      for (let i = 0; i < x.length; i++) d[i] = cSkip * x[i] + cOut * pred[i];
    }
    return d;
  };
  // Some schedulers give fewer levels than steps (beta drops repeated timesteps).
  const steps = sigmas.length - 1;
  for (let s = 0; s < steps; s++) {
    const sigma = sigmas[s], next = sigmas[s + 1];
    const den = await denoise(sigma);
    if (o.sampler === 'euler') {
      for (let i = 0; i < x.length; i++) x[i] += ((x[i] - den[i]) / sigma) * (next - sigma);
    } else if (o.sampler === 'euler_ancestral') {
      const up = next > 0 ? Math.min(next, Math.sqrt((next * next * (sigma * sigma - next * next)) / (sigma * sigma))) : 0;
      const down = Math.sqrt(next * next - up * up);
      for (let i = 0; i < x.length; i++) x[i] += ((x[i] - den[i]) / sigma) * (down - sigma);
      if (next > 0) {
        const z = rng.fillNormal(new Float32Array(x.length));
        for (let i = 0; i < x.length; i++) x[i] += z[i] * up;
      }
    } else {
      // DPM++ 2M: second-order multistep in log-σ time, first order on the first and last steps.
      const t = -Math.log(sigma), h = next > 0 ? -Math.log(next) - t : Infinity;
      const decay = next / sigma, mix = -Math.expm1(-h);
      if (!oldDenoised || next === 0) {
        for (let i = 0; i < x.length; i++) x[i] = decay * x[i] + mix * den[i];
      } else {
        const r = (t + Math.log(sigmas[s - 1])) / h;
        const a = 1 + 1 / (2 * r), b = 1 / (2 * r);
        for (let i = 0; i < x.length; i++) x[i] = decay * x[i] + mix * (a * den[i] - b * oldDenoised[i]);
      }
      oldDenoised = den;
    }
    o.onStep?.(s + 1, steps);
  }
  return x;
}

/** DDIM (Song et al.) with SD's "leading" timestep spacing and steps_offset 1. */
async function ddim(model: ModelCall, o: SampleOptions, noise: Float32Array, rng: Rng, n: number, perImage: number) {
  if (!DDIM_SCHEDULERS.includes(o.scheduler ?? 'auto')) throw new Error(`scheduler: DDIM steps on even timesteps and takes ${DDIM_SCHEDULERS.join(' or ')}, not '${o.scheduler}'`);
  const ac = o.schedule.alphasCumprod;
  const T = ac.length;
  const stride = Math.floor(T / o.steps);
  if (stride < 1) throw new Error(`ddim: at most ${T} steps`);
  const timesteps = Array.from({ length: o.steps }, (_, i) => (o.steps - 1 - i) * stride + 1).map((t) => Math.min(t, T - 1));
  const eta = o.eta ?? 0;
  const x = noise.slice();
  for (let s = 0; s < timesteps.length; s++) {
    const t = timesteps[s];
    const prev = t - stride;
    const a = ac[t], ap = prev >= 0 ? ac[prev] : ac[0];
    const pred = guided(await model(twice(x, 1), t), perImage, n, o.cfgScale);
    const sa = Math.sqrt(a), sb = Math.sqrt(1 - a);
    const sigma = eta * Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(1 - a / ap);
    const dirScale = Math.sqrt(Math.max(0, 1 - ap - sigma * sigma));
    const z = sigma > 0 ? rng.fillNormal(new Float32Array(x.length)) : undefined;
    for (let i = 0; i < x.length; i++) {
      let x0: number, eps: number;
      if (o.prediction === 'epsilon') { eps = pred[i]; x0 = (x[i] - sb * eps) / sa; }
      else { x0 = sa * x[i] - sb * pred[i]; eps = sa * pred[i] + sb * x[i]; }
      x[i] = Math.sqrt(ap) * x0 + dirScale * eps + (z ? sigma * z[i] : 0);
    }
    o.onStep?.(s + 1, o.steps);
  }
  return x;
}
