// Test helper: spoils a clean render the way a sampled image is spoilt (blur, noise, colour drift).
import { Rng } from '../../../../kernels/random';

export interface Damage {
  blurSigma: number;
  noiseSigma: number;
  /** Largest per-channel colour offset, the same over the whole image. */
  colorShift: number;
  /** Largest offset of a linear colour ramp across the image (uneven lighting), default none. */
  gradient?: number;
}

export function degrade(rgb: Uint8Array, size: number, damage: Damage, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const shift = [0, 1, 2].map(() => rng.uniform(-damage.colorShift, damage.colorShift));
  const ramp = [0, 1, 2].map(() => rng.uniform(-1, 1) * (damage.gradient ?? 0));
  const angle = rng.uniform(0, 2 * Math.PI);
  const radius = Math.ceil(3 * damage.blurSigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * damage.blurSigma ** 2 || 1)));
  const total = kernel.reduce((a, b) => a + b, 0);
  const blurPass = (src: Float32Array, horizontal: boolean) => {
    const out = new Float32Array(src.length);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) {
        const xx = Math.min(size - 1, Math.max(0, horizontal ? x + k : x));
        const yy = Math.min(size - 1, Math.max(0, horizontal ? y : y + k));
        acc += src[(yy * size + xx) * 3 + c] * kernel[k + radius];
      }
      out[(y * size + x) * 3 + c] = acc / total;
    }
    return out;
  };
  let img = Float32Array.from(rgb);
  if (damage.blurSigma > 0) img = blurPass(blurPass(img, true), false);
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < out.length; i++) {
    const p = Math.floor(i / 3);
    // Position along the ramp's direction, -1 at one side of the image to +1 at the other.
    const along = (((p % size) / size - 0.5) * Math.cos(angle) + (Math.floor(p / size) / size - 0.5) * Math.sin(angle)) * 2;
    const light = ramp[i % 3] * along;
    out[i] = Math.min(255, Math.max(0, Math.round(img[i] + shift[i % 3] + light + rng.normal(0, damage.noiseSigma))));
  }
  return out;
}
