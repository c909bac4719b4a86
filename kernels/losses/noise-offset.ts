// Noise offset (kohya's --noise_offset, from Nicholas Guttenberg's "diffusion with offset noise"): add
// offset · N(0, 1) per (sample, channel), constant over the image, to the training noise so the model
// learns to shift overall brightness. Done on the host with the project Rng, where the noise itself is
// drawn, so runs are reproducible and the graph just receives noise.
import type { Rng } from '../random';

/** A new noise array [B, C, ...spatial] with a per-(sample, channel) offset added. */
export function applyNoiseOffset(noise: Float32Array, shape: readonly number[], offset: number, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (noise.length !== n) throw new Error(`noise offset: noise has ${noise.length} values, shape [${shape.join(',')}] needs ${n}`);
  if (!(offset >= 0)) throw new Error(`noise offset must be ≥ 0, got ${offset}`);
  const out = noise.slice();
  if (offset === 0) return out;
  const planes = shape[0] * shape[1];
  const area = n / planes;
  for (let p = 0; p < planes; p++) {
    const shift = offset * rng.normal();
    for (let i = p * area; i < (p + 1) * area; i++) out[i] += shift;
  }
  return out;
}
