// The SDXL UNet: SD's UNet2DConditionModel code with SDXL's config (no attention at the first level,
// 2/10 transformer blocks per attention, 10 in the middle, 64-wide heads, linear proj_in/out) and the
// added embedding: label_emb over [pooled bigG | Fourier features of the 6 size numbers], added to the
// time embedding. Module paths are diffusers' (kohya's SGM names come from keys.ts).
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { unet } from '../sd/unet';
import type { SdxlConfig } from './config';
import { addedEmbeddingInput } from './conditioning';

export interface SdxlUNetInputs {
  /** Noisy latents [B, 4, h, w]. */
  sample: Tensor;
  /** Timesteps [B] as float32. */
  timestep: Tensor;
  /** Concatenated penultimate text states [B, 77, 2048]. */
  context: Tensor;
  /** Pooled bigG vector [B, 1280]. */
  pooled: Tensor;
  /** The 6 size numbers per sample [B, 6] (float32), kohya's order. */
  timeIds: Tensor;
}

/** The model's prediction (ε) [B, 4, h, w]. */
export function sdxlUnet(b: Builder, cfg: SdxlConfig, i: SdxlUNetInputs): Tensor {
  return unet(b, cfg.unet, { sample: i.sample, timestep: i.timestep, context: i.context, y: addedEmbeddingInput(i.pooled, i.timeIds, cfg.sizeEmbeddingDim) });
}
