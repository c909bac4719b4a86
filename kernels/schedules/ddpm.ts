// DDPM noise schedule (SD 1.x/2.x/SDXL: scaled-linear betas) and its training targets, as host-side
// reference implementations that the in-graph versions are checked against.

export interface DdpmConfig {
  /** Default 0.00085 (Stable Diffusion). */
  betaStart?: number;
  /** Default 0.012. */
  betaEnd?: number;
  /** Default 1000. */
  numTrainTimesteps?: number;
  /** `scaled_linear` (default): betas linear in sqrt space; `linear`: linear in beta. */
  betaSchedule?: 'scaled_linear' | 'linear';
}

export interface DdpmSchedule {
  numTrainTimesteps: number;
  betas: Float64Array;
  /** ᾱ_t = Π_{s<=t} (1 - β_s). */
  alphasCumprod: Float64Array;
}

export type PredictionType = 'epsilon' | 'v_prediction';

export function ddpmSchedule(cfg: DdpmConfig = {}): DdpmSchedule {
  const betaStart = cfg.betaStart ?? 0.00085;
  const betaEnd = cfg.betaEnd ?? 0.012;
  const n = cfg.numTrainTimesteps ?? 1000;
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`numTrainTimesteps must be an integer >= 2, got ${n}`);
  if (!(betaStart > 0 && betaEnd < 1 && betaStart <= betaEnd)) {
    throw new RangeError(`betas need 0 < betaStart <= betaEnd < 1, got ${betaStart}, ${betaEnd}`);
  }
  const betas = new Float64Array(n);
  const scaled = (cfg.betaSchedule ?? 'scaled_linear') === 'scaled_linear';
  const a = scaled ? Math.sqrt(betaStart) : betaStart;
  const b = scaled ? Math.sqrt(betaEnd) : betaEnd;
  for (let i = 0; i < n; i++) {
    const v = a + ((b - a) * i) / (n - 1);
    betas[i] = scaled ? v * v : v;
  }
  const alphasCumprod = new Float64Array(n);
  let prod = 1;
  for (let i = 0; i < n; i++) {
    prod *= 1 - betas[i];
    alphasCumprod[i] = prod;
  }
  return { numTrainTimesteps: n, betas, alphasCumprod };
}

function alphaBar(s: DdpmSchedule, t: number): number {
  if (!Number.isInteger(t) || t < 0 || t >= s.numTrainTimesteps) {
    throw new RangeError(`DDPM timestep must be an integer in [0, ${s.numTrainTimesteps - 1}], got ${t}`);
  }
  return s.alphasCumprod[t];
}

/** Signal-to-noise ratio ᾱ/(1-ᾱ) at integer timestep t. */
export function snrAt(s: DdpmSchedule, t: number): number {
  const ab = alphaBar(s, t);
  return ab / (1 - ab);
}

/** k-diffusion sigma sqrt((1-ᾱ)/ᾱ) at integer timestep t (noise std when x is scaled to unit signal). */
export function sigmaAt(s: DdpmSchedule, t: number): number {
  const ab = alphaBar(s, t);
  return Math.sqrt((1 - ab) / ab);
}

/** x_t = sqrt(ᾱ) x0 + sqrt(1-ᾱ) ε for one sample at timestep t. */
export function ddpmNoisy(x0: Float32Array, noise: Float32Array, t: number, s: DdpmSchedule): Float32Array {
  sameLength(x0, noise);
  const ab = alphaBar(s, t);
  const a = Math.sqrt(ab);
  const b = Math.sqrt(1 - ab);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = a * x0[i] + b * noise[i];
  return out;
}

/** What the model learns to predict: ε itself, or v = sqrt(ᾱ) ε - sqrt(1-ᾱ) x0. */
export function ddpmTarget(
  prediction: PredictionType,
  x0: Float32Array,
  noise: Float32Array,
  t: number,
  s: DdpmSchedule,
): Float32Array {
  sameLength(x0, noise);
  if (prediction === 'epsilon') return noise.slice();
  const ab = alphaBar(s, t);
  const a = Math.sqrt(ab);
  const b = Math.sqrt(1 - ab);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = a * noise[i] - b * x0[i];
  return out;
}

/**
 * Min-SNR-γ loss weight (Hang et al. 2023) as diffusers and kohya apply it: min(SNR, γ)/SNR for
 * epsilon prediction, min(SNR, γ)/(SNR + 1) for v prediction.
 */
export function minSnrWeight(snr: number, gamma: number, prediction: PredictionType): number {
  if (!(gamma > 0)) throw new RangeError(`min-SNR gamma must be > 0, got ${gamma}`);
  const clipped = Math.min(snr, gamma);
  return prediction === 'epsilon' ? clipped / snr : clipped / (snr + 1);
}

/** Integer DDPM timestep for a noise level t in [0, 1] (t = 1 is the noisiest step). */
export function ddpmTimestepIndex(t: number, numTrainTimesteps = 1000): number {
  return Math.min(numTrainTimesteps - 1, Math.max(0, Math.floor(t * numTrainTimesteps)));
}

function sameLength(a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) throw new RangeError(`x0 has ${a.length} elements but noise has ${b.length}`);
}
