// Image-to-video conditioning as Wan I2V takes it, built per sample on the host: the VAE latent of a
// clip that keeps its first frame and blanks the rest (zeros in [-1, 1] pixels — the official pipelines
// encode exactly that, not a latent padded with zeros), joined after a mask saying which pixel frames
// are given. The mask has one channel per frame a latent frame stands for (the VAE's time compression
// T, 4 for Wan): latent frame 0 holds pixel frame 0 alone, so its T channels all repeat frame 0's
// flag; latent frame j ≥ 1 holds pixel frames T(j−1)+1 … Tj. Result: [T + C, latent frames, h, w]
// (Wan: 4 + 16 = 20 channels, after the 16 noisy ones: the 36-channel I2V input).

/** The pixel clip [3, F, H, W] (CFHW) whose encoding is the image latent: frame 0 kept, the others zero. */
export function firstFrameClip(pixels: Float32Array, frames: number, height: number, width: number): Float32Array {
  const plane = height * width;
  if (pixels.length !== 3 * frames * plane) throw new Error(`first-frame clip: ${pixels.length} values are not [3, ${frames}, ${height}, ${width}]`);
  const out = new Float32Array(pixels.length);
  for (let c = 0; c < 3; c++) out.set(pixels.subarray(c * frames * plane, c * frames * plane + plane), c * frames * plane);
  return out;
}

/**
 * The mask [T, latent frames, h, w] for `pixelFrames` frames (T·n + 1) of which the first `keptFrames`
 * are given (1 for image-to-video).
 */
export function firstFrameMask(pixelFrames: number, temporalCompression: number, h: number, w: number, keptFrames = 1): Float32Array {
  const T = temporalCompression;
  if (!(Number.isInteger(pixelFrames) && pixelFrames >= 1 && (pixelFrames - 1) % T === 0)) {
    throw new Error(`first-frame mask: ${pixelFrames} frames is not ${T}n+1`);
  }
  const latentFrames = (pixelFrames - 1) / T + 1;
  // Frame 0's flag repeated T times, then one flag per pixel frame: T per latent frame.
  const flags = [...Array(T).fill(keptFrames > 0 ? 1 : 0), ...Array.from({ length: pixelFrames - 1 }, (_, f) => (f + 1 < keptFrames ? 1 : 0))];
  const plane = h * w;
  const out = new Float32Array(T * latentFrames * plane);
  for (let c = 0; c < T; c++) {
    for (let j = 0; j < latentFrames; j++) if (flags[j * T + c]) out.fill(1, (c * latentFrames + j) * plane, (c * latentFrames + j + 1) * plane);
  }
  return out;
}

/**
 * One sample's condition [T + C, Fl, h, w]: the mask, then the image latent [C, Fl, h, w] (the encoding
 * of `firstFrameClip`), as the denoiser concatenates it after the noisy latent.
 */
export function firstFrameCondition(imageLatent: Float32Array, latentDims: readonly [number, number, number, number], pixelFrames: number, temporalCompression: number): Float32Array {
  const [C, Fl, h, w] = latentDims;
  if (imageLatent.length !== C * Fl * h * w) throw new Error(`first-frame condition: ${imageLatent.length} latent values are not [${latentDims.join(', ')}]`);
  const mask = firstFrameMask(pixelFrames, temporalCompression, h, w);
  if (mask.length !== temporalCompression * Fl * h * w) throw new Error(`first-frame condition: ${pixelFrames} frames give ${mask.length / (temporalCompression * h * w)} latent frames, the latent has ${Fl}`);
  const out = new Float32Array(mask.length + imageLatent.length);
  out.set(mask);
  out.set(imageLatent, mask.length);
  return out;
}
