// The embedded tiny video model's architecture: Wan 2.2 I2V (A14B-style, two experts of one config)
// at miniature size — the same transformer, causal VAE and umT5 code as the real models, other numbers.
// 64×64 clips of 1 + 4n frames → 16-channel latents at 16×16 (×4 space, Wan 2.1's ×4 time), 2×2 patches
// → 64 tokens per latent frame; I2V input = noisy 16 + first-frame mask 4 + image latent 16 = 36 channels.
import { WAN_TINY, type WanTransformerConfig } from '../config';
import { UMT5_TINY } from '../umt5';
import type { WanVaeConfig } from '../vae';
import type { T5Config } from '../../text/t5';

export const TINY_WAN_SIZE = 64;

/** The tiny denoiser: 4 blocks of width 96 (6 heads of 16: RoPE 8/4/4), I2V input channels. */
export const TINY_WAN_DIT: WanTransformerConfig = {
  ...WAN_TINY, name: 'wan-tiny-i2v', dim: 96, ffnDim: 384, numHeads: 6, numLayers: 4, inChannels: 36, outChannels: 16, textDim: 32, freqDim: 64,
};

/**
 * The tiny causal VAE: Wan 2.1's blocks and 16 latent channels on 12 base channels, one level fewer
 * (×4 space, ×4 time: both of its downsamples halve time too). With Wan's ×8, a 64-pixel clip left an
 * 8×8 latent per 4 frames — 48× fewer numbers than pixels — and after 4000 steps its round trip was
 * blobs that faded after the first frame (the clip analyzer read shape 31%, colour 59%).
 */
export const TINY_WAN_VAE_BASE: WanVaeConfig = {
  name: 'wan-tiny-vae-16', base: 12, dimMult: [1, 2, 2], numResBlocks: 1, temporalDownsample: [true, true], zDim: 16,
  latentMean: new Array(16).fill(0), latentStd: new Array(16).fill(1),
};

/** The tiny umT5 (width 32 = the denoiser's textDim) over the tiny tokenizer's vocabulary. */
export const TINY_UMT5: T5Config = { ...UMT5_TINY, vocabSize: 256 };

/** Text tokens per prompt: Wan zero-pads umT5 features to 512; the tiny world's captions fit in 16. */
export const TINY_WAN_TEXT_LEN = 16;

/** The pretrained files, named as a user's ComfyUI models folder has them. */
export const TINY_WAN_FILES = {
  high: 'wan2.2_i2v_tiny_high_noise.safetensors',
  low: 'wan2.2_i2v_tiny_low_noise.safetensors',
  textEncoder: 'umt5_tiny.safetensors',
  vae: 'wan_2.1_vae_tiny.safetensors',
  tokenizer: 'tokenizer.json',
} as const;

/** Wan I2V's first-frame mask [4, T, h, w] (channel-major): ones for latent frame 0, zeros after. */
export function firstFrameMask(latentFrames: number, h: number, w: number): Float32Array {
  const m = new Float32Array(4 * latentFrames * h * w);
  for (let c = 0; c < 4; c++) m.fill(1, c * latentFrames * h * w, (c * latentFrames + 1) * h * w);
  return m;
}
