// Sizes of the Wan video transformers (Wan 2.1 and 2.2). Every variant runs through one model
// (kernels/wan/transformer.ts); these numbers and three switches differ: the input channels (16 noisy
// latent; I2V adds a 4-channel first-frame mask and the 16-channel image latent = 36; TI2V-5B works on
// 48-channel Wan 2.2 VAE latents), whether a CLIP image branch feeds the cross-attention (2.1 I2V and
// FLF2V; FLF2V's takes the first and the last frame's features with learned positions), and whether the official pipeline gives each token its own timestep (2.2 TI2V-5B). The 2.2 A14B
// models are two experts of the 14B architecture (high noise / low noise) split at a boundary timestep.
// Facts from Wan-Video/Wan2.1 and Wan2.2 (wan/configs, wan/modules/model.py), ComfyUI comfy/ldm/wan and
// diffusers' WanTransformer3DModel.

export interface WanTransformerConfig {
  name: string;
  /** Model width (`dim`). */
  dim: number;
  ffnDim: number;
  numHeads: number;
  numLayers: number;
  /** Channels of the latent that goes in (`in_dim`: 16 T2V, 36 I2V, 48 TI2V-5B). */
  inChannels: number;
  /** Channels predicted (`out_dim`). */
  outChannels: number;
  /** Per-token width of the text features (umT5-XXL: 4096). */
  textDim: number;
  /** Channels of the sinusoidal timestep embedding (`freq_dim`). */
  freqDim: number;
  /** Patch (frames, rows, cols) each token covers. */
  patch: [number, number, number];
  /** 2.1 I2V: CLIP ViT-H penultimate features (1280 wide, 257 tokens) projected into the cross-attention context. */
  clipImageDim: number;
  /**
   * 2.1 FLF2V (Wan's model_type 'flf2v'): the image branch takes the first and the last frame's CLIP
   * features (2 × 257 tokens) plus learned positions (`img_emb.emb_pos`), and the condition knows both frames.
   */
  firstLastFrame: boolean;
  /** The official pipeline gives every token its own timestep (2.2 TI2V-5B: the first frame stays clean). */
  perTokenTimesteps: boolean;
  eps: number;
  ropeTheta: number;
}

export const WAN_HEAD_DIM = 128;
/** Tokens of the text context the model sees: umT5 output trimmed to its real length, zero-padded to this. */
export const WAN_TEXT_LEN = 512;
/** CLIP image tokens of the 2.1 I2V branch (ViT-H/14 at 224²: 256 patches + class token). */
export const WAN_CLIP_TOKENS = 257;

export const headDim = (c: WanTransformerConfig) => c.dim / c.numHeads;

/** CLIP image tokens the image branch takes: 257 (2.1 I2V), 2 × 257 (FLF2V: first frame's, then last frame's). */
export const clipImageTokens = (c: Pick<WanTransformerConfig, 'firstLastFrame'>) => (c.firstLastFrame ? 2 : 1) * WAN_CLIP_TOKENS;

/**
 * Channels of each head given to the (frame, row, col) RoPE axes: rows and columns 2·⌊d/6⌋ each, frames
 * the rest (128 → 44/42/42, as Wan's `rope_params` split).
 */
export function ropeAxes(c: WanTransformerConfig): [number, number, number] {
  const d = headDim(c);
  const hw = 2 * Math.floor(d / 6);
  return [d - 2 * hw, hw, hw];
}

type Sizes = Pick<WanTransformerConfig, 'name' | 'dim' | 'ffnDim' | 'numHeads' | 'numLayers' | 'inChannels'> & Partial<WanTransformerConfig>;
const wan = (o: Sizes): WanTransformerConfig => ({
  outChannels: o.inChannels === 48 ? 48 : 16, textDim: 4096, freqDim: 256, patch: [1, 2, 2], clipImageDim: 0,
  firstLastFrame: false, perTokenTimesteps: false, eps: 1e-6, ropeTheta: 10000, ...o,
});

export const WAN21_T2V_1_3B = wan({ name: 'wan2.1-t2v-1.3b', dim: 1536, ffnDim: 8960, numHeads: 12, numLayers: 30, inChannels: 16 });
export const WAN21_T2V_14B = wan({ name: 'wan2.1-t2v-14b', dim: 5120, ffnDim: 13824, numHeads: 40, numLayers: 40, inChannels: 16 });
export const WAN21_I2V_14B = wan({ name: 'wan2.1-i2v-14b', dim: 5120, ffnDim: 13824, numHeads: 40, numLayers: 40, inChannels: 36, clipImageDim: 1280 });
/** 2.1 FLF2V 14B (720p): 2.1 I2V 14B's sizes, its image branch taking two frames (Wan's flf2v config is a copy of i2v's). */
export const WAN21_FLF2V_14B = wan({ name: 'wan2.1-flf2v-14b', dim: 5120, ffnDim: 13824, numHeads: 40, numLayers: 40, inChannels: 36, clipImageDim: 1280, firstLastFrame: true });
/** Each of the two Wan 2.2 T2V A14B experts (the same architecture as 2.1 T2V 14B). */
export const WAN22_T2V_A14B = wan({ name: 'wan2.2-t2v-a14b', dim: 5120, ffnDim: 13824, numHeads: 40, numLayers: 40, inChannels: 16 });
/** Each of the two Wan 2.2 I2V A14B experts: 36 input channels, no CLIP branch. */
export const WAN22_I2V_A14B = wan({ name: 'wan2.2-i2v-a14b', dim: 5120, ffnDim: 13824, numHeads: 40, numLayers: 40, inChannels: 36 });
export const WAN22_TI2V_5B = wan({ name: 'wan2.2-ti2v-5b', dim: 3072, ffnDim: 14336, numHeads: 24, numLayers: 30, inChannels: 48, perTokenTimesteps: true });

/**
 * The Wan architecture at miniature size (the video default's denoiser): every switch as in 2.1 T2V,
 * 2 blocks of width 48 (4 heads of 12: RoPE 4/4/4), text features of a tiny umT5 (32 wide), 4-channel
 * latents from the tiny causal VAE.
 */
export const WAN_TINY = wan({ name: 'wan-tiny', dim: 48, ffnDim: 96, numHeads: 4, numLayers: 2, inChannels: 4, outChannels: 4, textDim: 32, freqDim: 32 });

export const WAN_CONFIGS: Record<string, WanTransformerConfig> = Object.fromEntries(
  [WAN21_T2V_1_3B, WAN21_T2V_14B, WAN21_I2V_14B, WAN21_FLF2V_14B, WAN22_T2V_A14B, WAN22_I2V_A14B, WAN22_TI2V_5B, WAN_TINY].map((c) => [c.name, c]),
);

/** Checks the numbers fit together (heads split the width, the patch is Wan's, RoPE covers each head). */
export function validateWanConfig(c: WanTransformerConfig): void {
  if (c.dim % c.numHeads) throw new Error(`${c.name}: width ${c.dim} does not split into ${c.numHeads} heads`);
  if (headDim(c) % 2) throw new Error(`${c.name}: head width ${headDim(c)} is odd; RoPE rotates pairs`);
  const axes = ropeAxes(c);
  if (axes.some((a) => a <= 0 || a % 2)) throw new Error(`${c.name}: head width ${headDim(c)} gives RoPE axes [${axes}]`);
  if (c.freqDim % 2) throw new Error(`${c.name}: timestep embedding width ${c.freqDim} is odd`);
}
