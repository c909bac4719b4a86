// Sampling the FLUX models: flow Euler (x ← x + (t_next − t)·v) or flow UniPC (kernels/schedules) over
// the noise levels of each family's schedule, with the guidance modes the releases need:
//   true CFG against the empty prompt (klein base: guidance ~4, ~50 steps), v = v_u + g·(v_c − v_u);
//   distilled (klein's 4-step release, FLUX.1 schnell): the conditional prediction only;
//   guidance embedding (FLUX.1 dev, FLUX.2 dev): the scale goes into the model, one call per step.
// FLUX.2's schedule shifts linspace(1, 0) with BFL's empirical μ (a function of the image's token count
// and the step count); FLUX.1 dev uses the resolution-dependent μ of kernels/schedules.
import { Rng } from '../random';
import { dynamicShiftMu, timeShiftExponential } from '../schedules/flow-matching';
import { sampleFlowUniPC } from '../schedules/flow-unipc';
import { flowSamplerSigmas } from '../schedules/schedulers';
import type { ModelCall } from '../families/contract';

/** BFL's compute_empirical_mu: μ fitted over token counts and step counts (10 and 200 steps), linear beyond 4300 tokens. */
export function flux2EmpiricalMu(imageSeqLen: number, steps: number): number {
  const a1 = 8.73809524e-5, b1 = 1.89833333;
  const a2 = 0.00016927, b2 = 0.45666666;
  if (imageSeqLen > 4300) return a2 * imageSeqLen + b2;
  const m200 = a2 * imageSeqLen + b2;
  const m10 = a1 * imageSeqLen + b1;
  const a = (m200 - m10) / 190;
  return a * steps + (m200 - 200 * a);
}

const linspace1to0 = (steps: number) => Array.from({ length: steps + 1 }, (_, i) => 1 - i / steps);

/** A family's schedule: the noise level of an evenly spaced time t ∈ [0, 1]. */
export type FlowShift = (t: number) => number;

/** FLUX.2's schedule for `steps` steps of an image of `imageSeqLen` tokens (BFL's empirical μ). */
export function flux2Shift(steps: number, imageSeqLen: number): FlowShift {
  const mu = flux2EmpiricalMu(imageSeqLen, steps);
  return (t) => timeShiftExponential(mu, t);
}

/** FLUX.1's schedule: dev shifts by the resolution's μ (256 → 0.5, 4096 → 1.15 tokens); schnell does not. */
export function flux1Shift(imageSeqLen: number, shift: boolean): FlowShift {
  const mu = dynamicShiftMu(imageSeqLen);
  return (t) => (shift ? timeShiftExponential(mu, t) : t);
}

/** FLUX.2 noise levels, steps + 1 values from 1 to 0. */
export function flux2Sigmas(steps: number, imageSeqLen: number): number[] {
  return linspace1to0(steps).map(flux2Shift(steps, imageSeqLen));
}

/** FLUX.1 noise levels (see flux1Shift). */
export function flux1Sigmas(steps: number, imageSeqLen: number, shift: boolean): number[] {
  return linspace1to0(steps).map(flux1Shift(imageSeqLen, shift));
}

export type FluxGuidance =
  | { mode: 'cfg'; scale: number }
  | { mode: 'distilled' }
  | { mode: 'embedded'; scale: number };

/**
 * One model evaluation. `x` holds `batch` token tensors (each [L, C] flattened); with true CFG it holds
 * 2·batch, the unconditional ones first. `t` is the noise level; `guidance` the embedded scale when the
 * model takes one. Returns the velocity in the same layout.
 */
export type FlowModelCall = (x: Float32Array, t: number, o: { cfg: boolean; guidance?: number }) => Promise<Float32Array>;

export interface FlowSampleOptions {
  sigmas: readonly number[];
  guidance: FluxGuidance;
  seed: number;
  /** Elements of one image's tokens (L · C). */
  perImage: number;
  batch?: number;
  /** Progress after each step. */
  onStep?: (step: number, steps: number) => void;
}

/** The velocity a sampler integrates at (x, t): the model's, with the guidance mode applied. */
export function guidedVelocity(model: FlowModelCall, guidance: FluxGuidance): (x: Float32Array, t: number) => Promise<Float32Array> {
  if (guidance.mode === 'cfg' && guidance.scale !== 1) {
    const g = guidance.scale;
    return async (x, t) => {
      const both = new Float32Array(x.length * 2);
      both.set(x);
      both.set(x, x.length);
      const pred = await model(both, t, { cfg: true });
      const v = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) v[i] = pred[i] + g * (pred[x.length + i] - pred[i]);
      return v;
    };
  }
  const embedded = guidance.mode === 'embedded' ? guidance.scale : undefined;
  return (x, t) => model(x, t, { cfg: false, guidance: embedded });
}

/** Runs flow Euler; returns the final tokens [batch, L, C] flattened. */
export async function sampleFlowEuler(model: FlowModelCall, o: FlowSampleOptions): Promise<Float32Array> {
  const n = o.batch ?? 1;
  const steps = o.sigmas.length - 1;
  if (steps < 1) throw new Error('flow sampler: needs at least two noise levels');
  const x = new Rng(o.seed).fork('initial-noise').fillNormal(new Float32Array(o.perImage * n));
  if (o.sigmas[0] !== 1) for (let i = 0; i < x.length; i++) x[i] *= o.sigmas[0];
  const velocity = guidedVelocity(model, o.guidance);
  for (let s = 0; s < steps; s++) {
    const t = o.sigmas[s], dt = o.sigmas[s + 1] - t;
    const v = await velocity(x, t);
    for (let i = 0; i < x.length; i++) x[i] += dt * v[i];
    o.onStep?.(s + 1, steps);
  }
  return x;
}

/** The preview samplers FLUX offers, by ComfyUI name ('uni_pc' there): the ones with a flow-matching form here. */
export const FLUX_SAMPLERS = ['euler', 'unipc'] as const;

export interface FluxSampleRun {
  /** The Sampler node's choice. */
  sampler: string;
  steps: number;
  /** The family's schedule (flux2Shift, flux1Shift). */
  shift: FlowShift;
  /** ComfyUI's scheduler over that schedule, or `auto`: the schedule itself (kernels/schedules/schedulers.ts). */
  scheduler: string;
  /** Levels ComfyUI tabulates the schedule at for its schedulers: 10000 for ModelSamplingFlux, 1000 for discrete flow. */
  timesteps: number;
  guidance: FluxGuidance;
  seed: number;
  perImage: number;
  batch?: number;
  /** Names the model in errors ('FLUX.2 [klein]'). */
  label: string;
  onStep?: (step: number, steps: number) => void;
}

/**
 * Runs the chosen flow sampler on the scheduler's levels of the family's schedule: Euler (from σ = 1 on `auto`),
 * or UniPC (second order, one model call per step as Euler; from σ = shift(0.999) on `auto`). Both start from
 * the same seeded noise.
 */
export async function sampleFlux(model: FlowModelCall, run: FluxSampleRun): Promise<Float32Array> {
  const { steps, shift, guidance, seed, perImage } = run;
  if (run.sampler === 'euler') {
    return sampleFlowEuler(model, { sigmas: flowSamplerSigmas('euler', run.scheduler, steps, shift, run.timesteps), guidance, seed, perImage, batch: run.batch, onStep: run.onStep });
  }
  if (run.sampler === 'unipc') {
    const noise = new Rng(seed).fork('initial-noise').fillNormal(new Float32Array(perImage * (run.batch ?? 1)));
    return sampleFlowUniPC(guidedVelocity(model, guidance), noise, flowSamplerSigmas('unipc', run.scheduler, steps, shift, run.timesteps), { onStep: run.onStep });
  }
  throw new Error(`sampler: ${run.label} is a flow-matching model and samples with ${FLUX_SAMPLERS.join(' or ')}; '${run.sampler}' has no flow-matching form here (set the Sampler or Sampler Settings node's sampler widget)`);
}

/**
 * A family's ModelCall as a FlowModelCall with the timestep in thousandths: the contract's call always
 * takes the unconditional and conditional halves, so a call without CFG duplicates x and keeps the latter.
 */
export function fluxModelCall(call: ModelCall, timestepScale: number): FlowModelCall {
  return async (x, t, o) => {
    if (o.cfg) return call(x, t * timestepScale);
    const both = new Float32Array(x.length * 2);
    both.set(x); both.set(x, x.length);
    return (await call(both, t * timestepScale)).slice(x.length);
  };
}
