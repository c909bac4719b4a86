// Wan 2.2 TI2V-5B's image-to-video, which needs no extra input channels: the first latent frame of the
// noisy latent is replaced by the start image's latent and its tokens get timestep 0 while the rest get t
// (the official textimage2video.py's mask over the first latent frame; diffusers' `expand_timesteps`;
// ai-toolkit's wan22_5b). Training does the same with the clip's own first frame and leaves that frame
// out of the loss (DiffSynth-Studio's first_frame_latents); sampling holds it at the image latent at
// every step. Without a given frame (a zero condition) the model is plain text to video.
//
// The condition `first_frame` is [1 + C, 1, h, w] per sample: a flag channel (1 = given, 0 = none) and
// the latent of the first frame encoded alone (the causal VAE's first latent frame of the clip).
import { constant, type HostTensor, type Tensor } from '../tensor';
import { add, mul, sub } from '../ops/elementwise';
import { concat, reshape, slice } from '../ops/shape-and-reduce';
import type { ConditioningInput } from '../families/contract';

export const FIRST_FRAME = 'first_frame';

/**
 * The `first_frame` input for a latent [C, F, h, w] of more than one frame (an image, or a one-frame clip,
 * has nothing left to predict once its frame is given: text to image, as ai-toolkit trains images);
 * without a latent shape, a preview's `hw`.
 */
export function firstFrameInput(channels: number, latentShape: readonly number[] | undefined, previewHW: [number, number]): ConditioningInput | undefined {
  if (latentShape && (latentShape.length < 4 || latentShape[latentShape.length - 3] < 2)) return undefined;
  const hw = latentShape ? latentShape.slice(-2) : previewHW;
  return { name: FIRST_FRAME, shape: [1 + channels, 1, ...hw], source: 'latent', optional: true };
}

/** `first_frame` [B, 1 + C, 1, h, w] from the first frame's latent [B, C, 1, h, w], flagged as given. */
export function givenFirstFrame(latent: Tensor): Tensor {
  const flag = add(mul(slice(latent, [0], [1], [1]), 0), 1);
  return concat([flag, latent], 1);
}

/** The per-sample flag [B, 1] (1 = a first frame is given) of `first_frame`. */
function givenFlag(firstFrame: Tensor): Tensor {
  const corner = slice(firstFrame, [0, 0, 0, 0], [1, 1, 1, 1], [1, 2, 3, 4]);
  return reshape(corner, [firstFrame.shape[0], 1]);
}

/** 1 on the first of `frames` latent frames and 0 after, shaped `shape` to broadcast ([1, F] or [1, 1, F, 1, 1]). */
const firstFrameOnly = (frames: number, shape: number[]) => constant(Float32Array.from({ length: frames }, (_, i) => (i === 0 ? 1 : 0)), shape);

/**
 * The transformer's inputs for noisy latents x [B, C, F, h, w] at noise levels t [B] in [0, 1]: the first
 * frame swapped for the given latent, and one level per latent frame [B, F] — 0 on a given first frame.
 */
export function withFirstFrame(x: Tensor, t: Tensor, firstFrame: Tensor): { latents: Tensor; timesteps: Tensor } {
  const [bsz, c, frames] = x.shape;
  if (x.rank !== 5 || firstFrame.shape.join() !== [bsz, 1 + c, 1, ...x.shape.slice(3)].join()) {
    throw new Error(`wan TI2V: first_frame [${firstFrame.shape}] does not fit latents [${x.shape}] (expected [${bsz}, ${1 + c}, 1, ${x.shape.slice(3)}])`);
  }
  const flag = slice(firstFrame, [0], [1], [1]);
  const image = slice(firstFrame, [1], [1 + c], [1]);
  const first = slice(x, [0], [1], [2]);
  // frame 0 ← flag·image + (1 − flag)·frame 0: exactly the image where given (no rounding through a
  // difference), the noisy frame where not. Wan's patches span one latent frame, so its tokens follow.
  const latents = concat([add(mul(flag, image), mul(sub(1, flag), first)), slice(x, [1], [frames], [2])], 2);
  const timesteps = mul(reshape(t, [bsz, 1]), sub(1, mul(givenFlag(firstFrame), firstFrameOnly(frames, [1, frames]))));
  return { latents, timesteps };
}

/** 1 where the loss counts [B, 1, F, 1, 1]: every frame but a given first one. */
export function firstFrameLossMask(firstFrame: Tensor, frames: number): Tensor {
  const flag = reshape(givenFlag(firstFrame), [firstFrame.shape[0], 1, 1, 1, 1]);
  return sub(1, mul(flag, firstFrameOnly(frames, [1, 1, frames, 1, 1])));
}

/**
 * On the host, for a sampler: per image of the batch, the given first frame's latent (or none), read from
 * the `first_frame` values [2n, 1 + C, 1, h, w] fed to the denoiser (the conditional half's rows).
 * `hold` writes them into latents [n, C, F, h, w]; `still` zeroes the velocity there.
 */
export function heldFirstFrames(values: HostTensor | undefined, latentShape: readonly number[], batch: number) {
  const none = { any: false, hold: (x: Float32Array) => x, still: (v: Float32Array) => v };
  if (!values) return none;
  const [c, frames, h, w] = latentShape;
  const plane = h * w;
  const per = (1 + c) * plane;
  const data = values.data as Float32Array;
  if (latentShape.length !== 4 || data.length !== 2 * batch * per) throw new Error(`wan TI2V: ${data.length} first_frame values do not fit ${2 * batch} × [${1 + c}, 1, ${h}, ${w}]`);
  const images = Array.from({ length: batch }, (_, i) => {
    const row = data.subarray((batch + i) * per, (batch + i + 1) * per);
    return row[0] > 0.5 ? row.subarray(plane) : undefined;
  });
  if (!images.some(Boolean)) return none;
  const perImage = c * frames * plane;
  const each = (x: Float32Array, f: (at: number, image: Float32Array, ch: number) => void) => {
    images.forEach((image, i) => { if (image) for (let ch = 0; ch < c; ch++) f(i * perImage + ch * frames * plane, image, ch); });
    return x;
  };
  return {
    any: true,
    hold: (x: Float32Array) => each(x, (at, image, ch) => x.set(image.subarray(ch * plane, (ch + 1) * plane), at)),
    still: (v: Float32Array) => each(v, (at) => v.fill(0, at, at + plane)),
  };
}
