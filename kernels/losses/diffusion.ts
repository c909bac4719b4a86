// The diffusion training objective inside the graph: from clean latents x0, noise ε and per-sample
// timesteps, the noisy model input and the target — DDPM (ε or v prediction, ᾱ looked up from the
// schedule by integer timestep) and rectified flow (x_t = (1−σ)x0 + σε, target ε − x0). These match
// the host references ddpmNoisy/ddpmTarget/flowNoisy/flowTarget in kernels/schedules.
import { constant, type Tensor } from '../tensor';
import { add, mul, sub } from '../ops/elementwise';
import { gather, reshape } from '../ops/shape-and-reduce';
import { minSnrWeight, snrAt, type DdpmSchedule, type PredictionType } from '../schedules';

/** A per-sample [B] value shaped to broadcast over [B, ...]. */
const perSample = (v: Tensor, like: Tensor) => reshape(v, [like.shape[0], ...like.shape.slice(1).map(() => 1)]);

/** √ᾱ_t and √(1−ᾱ_t) for int64 timesteps [B], gathered from schedule tables baked into the graph. */
function ddpmCoefficients(s: DdpmSchedule, timesteps: Tensor) {
  if (timesteps.dtype !== 'int64' && timesteps.dtype !== 'int32') throw new Error(`DDPM timesteps must be integer, got ${timesteps.dtype}`);
  const a = constant(Float32Array.from(s.alphasCumprod, (v) => Math.sqrt(v)), [s.numTrainTimesteps]);
  const b = constant(Float32Array.from(s.alphasCumprod, (v) => Math.sqrt(1 - v)), [s.numTrainTimesteps]);
  return { signal: gather(a, timesteps), noise: gather(b, timesteps) };
}

export function ddpmTrainingPair(x0: Tensor, noise: Tensor, timesteps: Tensor, schedule: DdpmSchedule, prediction: PredictionType): { noisy: Tensor; target: Tensor } {
  const c = ddpmCoefficients(schedule, timesteps);
  const a = perSample(c.signal, x0), b = perSample(c.noise, x0);
  const noisy = add(mul(x0, a), mul(noise, b));
  const target = prediction === 'epsilon' ? noise : sub(mul(noise, a), mul(x0, b));
  return { noisy, target };
}

/** Rectified flow with σ ∈ [0, 1] per sample ([B] float). The model's timestep input is usually σ·1000. */
export function flowTrainingPair(x0: Tensor, noise: Tensor, sigmas: Tensor): { noisy: Tensor; target: Tensor } {
  const s = perSample(sigmas, x0);
  return { noisy: add(mul(x0, sub(1, s)), mul(noise, s)), target: sub(noise, x0) };
}

/**
 * min-SNR-γ weights for int64 timesteps [B], gathered from a per-timestep table computed on the host
 * with the schedule's SNR (kohya/diffusers: min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR+1) for v).
 */
export function minSnrWeights(timesteps: Tensor, schedule: DdpmSchedule, gamma: number, prediction: PredictionType): Tensor {
  const table = Float32Array.from({ length: schedule.numTrainTimesteps }, (_, t) => minSnrWeight(snrAt(schedule, t), gamma, prediction));
  return gather(constant(table, [table.length]), timesteps);
}
