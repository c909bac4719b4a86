// A probe video family for tests of the video preview path (Sampler, Preview Image, the editor): a bar that moves
// one column per latent frame, decoded 4 frames per latent frame after the first, as Wan's causal VAE packs time
// (green rises frame by frame, so no two frames are alike). The denoiser is the identity, so the sampler's latents
// reach the decoder through real ORT sessions; MODEL/CLIP/VAE values carry it like a loaded model.
import * as K from '../../kernels';
import { add, cast, mul } from '../../kernels/ops/elementwise';
import { concat, reshape, slice } from '../../kernels/ops/shape-and-reduce';
import type { ModelFamily } from '../../kernels/families/contract';
import type { ClipValue, ModelValue, VaeValue } from '../../nodes/sockets';

export const SIZE = 8, TC = 4;
/** The latent shape of every sampler call, in order. */
export const calls: number[][] = [];
export const videoProbeFamily = {
  id: 'video-probe', label: 'video probe',
  sampleSize: () => SIZE,
  sampleFrames: () => 9,
  textEncoders: () => [{ part: 'te', maxLength: 2, maxClipSkip: 0 }],
  encodeText: (_b: unknown, _c: unknown, ids: K.Tensor[]) => ({ context: cast(ids[0]!, 'float32') }),
  conditioning: () => [{ name: 'context', shape: [2], source: 'text' }],
  sampleConditioning: () => ({}),
  // The identity: the sampler's latents reach the decoder through the real denoiser session.
  denoise: (_b: unknown, _c: unknown, x: { sample: K.Tensor }) => mul(x.sample, 1),
  latentFormat: () => ({ channels: 1, spatialCompression: 1, temporalCompression: TC, scale: 1, shift: 0 }),
  latentMultiple: () => 1,
  // [n, 1, F', h, w] → [n, 3, 1 + 4(F' − 1), h, w]: the first latent frame alone, each later one 4 times.
  vaeDecode: (_b: unknown, _c: unknown, z: K.Tensor) => {
    const [n, , lf, h, w] = z.shape as number[];
    const rest = reshape(slice(z, [1], [lf!], [2]), [n!, 1, lf! - 1, 1, h!, w!]);
    const video = concat([slice(z, [0], [1], [2]), reshape(concat(Array(TC).fill(rest), 3), [n!, 1, TC * (lf! - 1), h!, w!])], 2);
    const frames = 1 + TC * (lf! - 1);
    const ramp = K.constant(Float32Array.from({ length: frames }, (_, f) => (2 * f) / (frames - 1) - 1), [1, 1, frames, 1, 1]);
    return concat([video, add(mul(video, 0), ramp), video], 1);
  },
  samplers: ['euler'],
  sample: async (call: (x: Float32Array, t: number) => Promise<Float32Array>, _c: unknown, r: { latentShape: number[]; seed: number }) => {
    calls.push(r.latentShape);
    const [, lf, h, w] = r.latentShape as [number, number, number, number];
    // Latent frame k: a white bar in column (k + seed) mod w on black.
    const x = new Float32Array(lf * h * w).map((_, i) => (Math.floor(i % w) === (Math.floor(i / (h * w)) + r.seed) % w ? 1 : -1));
    const both = new Float32Array(2 * x.length);
    both.set(x, x.length);
    return (await call(both, 500)).slice(x.length);
  },
} as unknown as ModelFamily;

/** MODEL, CLIP and VAE of the probe family. */
export function videoProbeValues(): { model: ModelValue; clip: ClipValue; vae: VaeValue } {
  const tokenizer = { tokenize: (_p: string, o: { maxLength: number }) => ({ ids: new Array(o.maxLength).fill(1) }) };
  const source = { id: 'video-probe', label: 'video probe', path: 'probe' };
  const model = { kind: 'model', family: videoProbeFamily, config: {}, source, denoiser: new K.RandomWeights(), quantization: 'none', byteSize: () => 0 } as unknown as ModelValue;
  const clip = { kind: 'clip', family: videoProbeFamily, config: {}, source, encoders: [{ weights: new K.RandomWeights(), tokenizer }], clipSkip: 1, byteSize: () => 0 } as unknown as ClipValue;
  const vae = { kind: 'vae', family: videoProbeFamily, config: {}, source, weights: new K.RandomWeights(), byteSize: () => 0 } as unknown as VaeValue;
  return { model, clip, vae };
}
