// Sampling the FLUX models: the flow Euler sampler (x ← x + (t_next − t)·v) over the noise levels of
// each family's schedule, with the guidance modes the releases need:
//   true CFG against the empty prompt (klein base: guidance ~4, ~50 steps), v = v_u + g·(v_c − v_u);
//   distilled (klein's 4-step release, FLUX.1 schnell): the conditional prediction only;
//   guidance embedding (FLUX.1 dev, FLUX.2 dev): the scale goes into the model, one call per step.
// FLUX.2's schedule shifts linspace(1, 0) with BFL's empirical μ (a function of the image's token count
// and the step count); FLUX.1 dev uses the resolution-dependent μ of kernels/schedules.
import { Rng } from '../random';
import { dynamicShiftMu, timeShiftExponential } from '../schedules/flow-matching';

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

/** FLUX.2 noise levels, steps + 1 values from 1 to 0. */
export function flux2Sigmas(steps: number, imageSeqLen: number): number[] {
  const mu = flux2EmpiricalMu(imageSeqLen, steps);
  return linspace1to0(steps).map((t) => timeShiftExponential(mu, t));
}

/** FLUX.1 noise levels: dev shifts by the resolution's μ (256 → 0.5, 4096 → 1.15 tokens); schnell does not. */
export function flux1Sigmas(steps: number, imageSeqLen: number, shift: boolean): number[] {
  const mu = dynamicShiftMu(imageSeqLen);
  return linspace1to0(steps).map((t) => (shift ? timeShiftExponential(mu, t) : t));
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

/** Runs flow Euler; returns the final tokens [batch, L, C] flattened. */
export async function sampleFlowEuler(model: FlowModelCall, o: FlowSampleOptions): Promise<Float32Array> {
  const n = o.batch ?? 1;
  const steps = o.sigmas.length - 1;
  if (steps < 1) throw new Error('flow sampler: needs at least two noise levels');
  const x = new Rng(o.seed).fork('initial-noise').fillNormal(new Float32Array(o.perImage * n));
  if (o.sigmas[0] !== 1) for (let i = 0; i < x.length; i++) x[i] *= o.sigmas[0];
  const cfg = o.guidance.mode === 'cfg' && o.guidance.scale !== 1;
  for (let s = 0; s < steps; s++) {
    const t = o.sigmas[s], dt = o.sigmas[s + 1] - t;
    let v: Float32Array;
    if (cfg) {
      const both = new Float32Array(x.length * 2);
      both.set(x);
      both.set(x, x.length);
      const pred = await model(both, t, { cfg: true });
      const g = (o.guidance as { scale: number }).scale;
      v = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) v[i] = pred[i] + g * (pred[x.length + i] - pred[i]);
    } else {
      v = await model(x, t, { cfg: false, guidance: o.guidance.mode === 'embedded' ? o.guidance.scale : undefined });
    }
    for (let i = 0; i < x.length; i++) x[i] += dt * v[i];
    o.onStep?.(s + 1, steps);
  }
  return x;
}
