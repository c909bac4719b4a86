// Rectified-flow noise schedule (SD3, Flux, Wan, ...): x_t = (1-t) x0 + t ε with target ε - x0, and the
// timestep shifts that move training and sampling toward high noise: a fixed shift, or the
// resolution-dependent exponential time shift with mu interpolated from the image sequence length.

/** x_t = (1 - t) x0 + t ε for one sample at noise level t in [0, 1]. */
export function flowNoisy(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
  if (x0.length !== noise.length) throw new RangeError(`x0 has ${x0.length} elements but noise has ${noise.length}`);
  if (!(t >= 0 && t <= 1)) throw new RangeError(`flow-matching t must be in [0, 1], got ${t}`);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = (1 - t) * x0[i] + t * noise[i];
  return out;
}

/** The velocity the model learns: d x_t / dt = ε - x0. */
export function flowTarget(x0: Float32Array, noise: Float32Array): Float32Array {
  if (x0.length !== noise.length) throw new RangeError(`x0 has ${x0.length} elements but noise has ${noise.length}`);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) out[i] = noise[i] - x0[i];
  return out;
}

/** Fixed shift (SD3's `shift`): σ' = sσ / (1 + (s - 1)σ). s > 1 moves mass toward σ = 1. */
export function shiftSigma(sigma: number, shift: number): number {
  if (!(shift > 0)) throw new RangeError(`shift must be > 0, got ${shift}`);
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/** Inverse of `shiftSigma`: the unshifted σ that maps to `shifted`. */
export function unshiftSigma(shifted: number, shift: number): number {
  return shifted / (shift - (shift - 1) * shifted);
}

/**
 * Exponential time shift (Flux / diffusers `time_shift_type="exponential"`):
 * σ' = e^μ / (e^μ + (1/σ - 1)^power). With power 1 this equals `shiftSigma(σ, e^μ)`.
 */
export function timeShiftExponential(mu: number, sigma: number, power = 1): number {
  if (sigma <= 0) return 0;
  if (sigma >= 1) return 1;
  const e = Math.exp(mu);
  return e / (e + (1 / sigma - 1) ** power);
}

export interface DynamicShiftConfig {
  /** Default 256 tokens. */
  baseSeqLen?: number;
  /** Default 4096 tokens. */
  maxSeqLen?: number;
  /** μ at baseSeqLen. Default 0.5. */
  baseShift?: number;
  /** μ at maxSeqLen. Default 1.15 (Flux; ai-toolkit uses 1.16). */
  maxShift?: number;
}

/** μ for an image of `imageSeqLen` latent tokens: linear through (256, 0.5) and (4096, 1.15) by default. */
export function dynamicShiftMu(imageSeqLen: number, cfg: DynamicShiftConfig = {}): number {
  const baseSeqLen = cfg.baseSeqLen ?? 256;
  const maxSeqLen = cfg.maxSeqLen ?? 4096;
  const baseShift = cfg.baseShift ?? 0.5;
  const maxShift = cfg.maxShift ?? 1.15;
  const m = (maxShift - baseShift) / (maxSeqLen - baseSeqLen);
  return baseShift + m * (imageSeqLen - baseSeqLen);
}

/** Latent tokens of a width x height image: (H / vae / patch) * (W / vae / patch); Flux: vae 8, patch 2. */
export function imageSeqLen(width: number, height: number, opts: { vaeScaleFactor?: number; patchSize?: number } = {}): number {
  const f = (opts.vaeScaleFactor ?? 8) * (opts.patchSize ?? 2);
  return Math.floor(height / f) * Math.floor(width / f);
}
