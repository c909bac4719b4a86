// The FLUX VAEs and their latent formats. Both autoencoders are the SD-style AutoencoderKL
// (kernels/sd/vae.ts runs them, diffusers names; BFL's ae.safetensors uses the ldm names of
// kernels/sd/keys/single-file.ts). What differs is how latents meet the transformer:
//   FLUX.2: 32 channels, 2×2 patchified to 128 (channel-major: c, then the patch row and column), then
//           normalised per channel by the checkpoint's eval BatchNorm statistics (`bn.running_mean`,
//           `bn.running_var`, eps 1e-4); tokens are the patches row-major.
//   FLUX.1: 16 channels, (z − 0.1159) · 0.3611, then packed 2×2 into 64-channel tokens the same way.
import { constant, type Tensor } from '../tensor';
import { add, mul, rsqrt, sqrt, sub } from '../ops/elementwise';
import { reshape, transpose } from '../ops/shape-and-reduce';
import type { WeightSource, WeightUse } from '../nn/weights';
import type { VaeConfig } from '../sd/config';

export const FLUX2_VAE: VaeConfig = { inChannels: 3, outChannels: 3, blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, latentChannels: 32, normGroups: 32, scalingFactor: 1 };
export const FLUX1_VAE: VaeConfig = { inChannels: 3, outChannels: 3, blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, latentChannels: 16, normGroups: 32, scalingFactor: 0.3611 };
/** FLUX.1's latent shift (applied before the scale). */
export const FLUX1_VAE_SHIFT = 0.1159;
/**
 * The FLUX.2 VAE at miniature size: 3 blocks (4× down), 32 latent channels. 4× rather than the real 8×
 * so that a 64-pixel image makes 8×8 transformer tokens of 8×8 pixels: with 8× down the tiny klein
 * had 4×4 tokens of 16×16 pixels, a shape's outline lived inside a token, and it drew coloured blobs.
 */
export const FLUX2_TINY_VAE: VaeConfig = { inChannels: 3, outChannels: 3, blockOutChannels: [16, 32, 32], layersPerBlock: 1, latentChannels: 32, normGroups: 8, scalingFactor: 1 };
/** The miniature VAE with the real one's 8× down (4 blocks); the tiny FLUX.1 test model's base. */
export const FLUX_TINY_VAE_8X: VaeConfig = { ...FLUX2_TINY_VAE, blockOutChannels: [16, 16, 32, 32] };
export const FLUX2_BN_EPS = 1e-4;

/** [B, C, H, W] → [B, 4C, H/2, W/2] with channel index c·4 + 2·pi + pj. */
export function patchify2x2(z: Tensor): Tensor {
  const [b, c, h, w] = z.shape;
  if (h % 2 || w % 2) throw new Error(`latents ${h}×${w} do not split into 2×2 patches`);
  return reshape(transpose(reshape(z, [b, c, h / 2, 2, w / 2, 2]), [0, 1, 3, 5, 2, 4]), [b, c * 4, h / 2, w / 2]);
}

/** The inverse of patchify2x2. */
export function unpatchify2x2(p: Tensor): Tensor {
  const [b, c4, h, w] = p.shape;
  return reshape(transpose(reshape(p, [b, c4 / 4, 2, 2, h, w]), [0, 1, 4, 2, 5, 3]), [b, c4 / 4, h * 2, w * 2]);
}

/** [B, C, h, w] → tokens [B, h·w, C], row-major. */
export function toTokens(x: Tensor): Tensor {
  const [b, c, h, w] = x.shape;
  return transpose(reshape(x, [b, c, h * w]), [0, 2, 1]);
}
/** tokens [B, h·w, C] → [B, C, h, w]. */
export function fromTokens(t: Tensor, h: number, w: number): Tensor {
  const [b, n, c] = t.shape;
  if (n !== h * w) throw new Error(`${n} tokens do not make a ${h}×${w} grid`);
  return reshape(transpose(t, [0, 2, 1]), [b, c, h, w]);
}

export interface BatchNormStats { mean: Tensor; variance: Tensor }

/** The FLUX.2 VAE's running statistics (`bn.running_mean`, `bn.running_var`) over the 128 patch channels. */
export function flux2BatchNormStats(w: WeightSource, cfg: VaeConfig = FLUX2_VAE): BatchNormStats {
  const n = cfg.latentChannels * 4;
  return { mean: w.get('bn.running_mean', [n]), variance: w.get('bn.running_var', [n]) };
}

const perChannel = (t: Tensor) => reshape(t, [1, t.shape[0], 1, 1]);

/** VAE latent sample [B, 32, H/8, W/8] → normalised patches [B, 128, H/16, W/16] (the model's latents). */
export function flux2NormalizeLatents(z: Tensor, bn: BatchNormStats): Tensor {
  return mul(sub(patchify2x2(z), perChannel(bn.mean)), perChannel(rsqrt(add(bn.variance, FLUX2_BN_EPS))));
}
/** Normalised patches → the VAE latent sample the decoder takes. */
export function flux2DenormalizeLatents(p: Tensor, bn: BatchNormStats): Tensor {
  return unpatchify2x2(add(mul(p, perChannel(sqrt(add(bn.variance, FLUX2_BN_EPS)))), perChannel(bn.mean)));
}

/** VAE latent sample [B, 32, H/8, W/8] → transformer tokens [B, (H/16)(W/16), 128]. */
export function flux2LatentsToTokens(z: Tensor, bn: BatchNormStats): Tensor {
  return toTokens(flux2NormalizeLatents(z, bn));
}

/** Transformer tokens → the VAE latent sample the decoder takes. */
export function flux2TokensToLatents(tokens: Tensor, rows: number, cols: number, bn: BatchNormStats): Tensor {
  return flux2DenormalizeLatents(fromTokens(tokens, rows, cols), bn);
}

/** FLUX.1: VAE latent sample [B, 16, H/8, W/8] → packed tokens [B, (H/16)(W/16), 64]. */
export function flux1LatentsToTokens(z: Tensor): Tensor {
  return toTokens(patchify2x2(mul(sub(z, FLUX1_VAE_SHIFT), FLUX1_VAE.scalingFactor)));
}
export function flux1TokensToLatents(tokens: Tensor, rows: number, cols: number): Tensor {
  return add(mul(unpatchify2x2(fromTokens(tokens, rows, cols)), 1 / FLUX1_VAE.scalingFactor), FLUX1_VAE_SHIFT);
}

/**
 * The shared SD VAE code applies quant_conv/post_quant_conv; VAEs without them (FLUX.1's; a FLUX.2 file
 * that omits them) get identity 1×1 convs, and the real ones are served when `present` lists them.
 */
export class QuantConvsOrIdentity implements WeightSource {
  constructor(readonly inner: WeightSource, readonly present: ReadonlySet<string>) {}
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    if (!/^(post_)?quant_conv\.(weight|bias)$/.test(path) || this.present.has(path)) return this.inner.get(path, shape, use);
    const n = shape[0];
    if (path.endsWith('.bias')) return constant(new Float32Array(n), shape, 'float32', path);
    const eye = new Float32Array(n * n);
    for (let i = 0; i < n; i++) eye[i * n + i] = 1;
    return constant(eye, shape, 'float32', path);
  }
}
