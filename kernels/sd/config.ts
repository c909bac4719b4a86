// Sizes of the Stable Diffusion 1.x family: the real SD 1.5 and the embedded tiny model run through the
// same model code; only these numbers differ. Field names follow diffusers' config.json files.

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  /** Per down block: with cross-attention transformers (CrossAttnDownBlock2D) or plain (DownBlock2D). */
  downBlockCrossAttention: boolean[];
  layersPerBlock: number;
  /**
   * Heads per attention layer. diffusers' SD 1.x config calls this `attention_head_dim` (8) although
   * it is the number of heads; the per-head width is channels / heads.
   */
  attentionHeads: number;
  crossAttentionDim: number;
  normGroups: number;
  normEps: number;
  /** SD 1.x projects in/out of the transformer with 1×1 convs; SD 2.x with linear layers. */
  useLinearProjection: boolean;
  /** Timestep embedding: cos first (flip_sin_to_cos) with frequency shift 0, as SD 1.x. */
  flipSinToCos: boolean;
  freqShift: number;
  /**
   * Transformer blocks per attention of each down level (diffusers' transformer_layers_per_block; up
   * levels mirror it). Default 1 everywhere, as SD 1.x; SDXL [1, 2, 10].
   */
  transformerDepth?: number[];
  /** Transformer blocks of the mid block's attention. Default: the deepest level's depth. */
  midTransformerDepth?: number;
  /**
   * Width of one attention head. When set, each level has channels / attentionHeadDim heads (SDXL: 64,
   * so 5/10/20 heads) and `attentionHeads` is not used.
   */
  attentionHeadDim?: number;
  /**
   * Input width of the added embedding MLP (diffusers' add_embedding, ldm's label_emb) whose output is
   * added to the time embedding; the UNet then takes `y` [B, this]. SDXL: 2816. Absent for SD 1.x.
   */
  addEmbeddingInputDim?: number;
}

export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
  hiddenAct: 'quick_gelu' | 'gelu';
  layerNormEps: number;
}

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  latentChannels: number;
  normGroups: number;
  scalingFactor: number;
}

export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'scaled_linear' | 'linear';
  predictionType: 'epsilon' | 'v_prediction';
}

export interface SdConfig {
  name: string;
  /** Pixel size the model is meant for (latent size is this / vaeScale). */
  sampleSize: number;
  unet: UNetConfig;
  text: ClipTextConfig;
  vae: VaeConfig;
  scheduler: SchedulerConfig;
}

/** Pixels per latent pixel: each VAE block but the last halves the resolution. */
export function vaeScale(vae: VaeConfig): number {
  return 2 ** (vae.blockOutChannels.length - 1);
}

export const SD15_SCHEDULER: SchedulerConfig = {
  numTrainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'scaled_linear', predictionType: 'epsilon',
};

export const SD15: SdConfig = {
  name: 'sd15',
  sampleSize: 512,
  unet: {
    inChannels: 4, outChannels: 4,
    blockOutChannels: [320, 640, 1280, 1280],
    downBlockCrossAttention: [true, true, true, false],
    layersPerBlock: 2,
    attentionHeads: 8,
    crossAttentionDim: 768,
    normGroups: 32, normEps: 1e-5,
    useLinearProjection: false,
    flipSinToCos: true, freqShift: 0,
  },
  text: {
    vocabSize: 49408, hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12,
    maxPositions: 77, hiddenAct: 'quick_gelu', layerNormEps: 1e-5,
  },
  vae: {
    inChannels: 3, outChannels: 3,
    blockOutChannels: [128, 256, 512, 512],
    layersPerBlock: 2, latentChannels: 4, normGroups: 32, scalingFactor: 0.18215,
  },
  scheduler: SD15_SCHEDULER,
};

/**
 * The embedded tiny model: 64×64 images → 16×16×4 latents, about 4M parameters in all. `vocabSize`
 * defaults to the committed tiny tokenizer's (assets/tiny/tokenizer); pass `tokenizer.vocabSize` if it changes.
 */
export function tinyConfig(vocabSize = 1386): SdConfig {
  return {
    name: 'sd-tiny',
    sampleSize: 64,
    unet: {
      inChannels: 4, outChannels: 4,
      blockOutChannels: [32, 64, 64],
      downBlockCrossAttention: [true, true, false],
      layersPerBlock: 1,
      attentionHeads: 2,
      crossAttentionDim: 64,
      normGroups: 8, normEps: 1e-5,
      useLinearProjection: false,
      flipSinToCos: true, freqShift: 0,
    },
    text: {
      vocabSize, hiddenSize: 64, intermediateSize: 256, numLayers: 3, numHeads: 4,
      maxPositions: 77, hiddenAct: 'quick_gelu', layerNormEps: 1e-5,
    },
    vae: {
      inChannels: 3, outChannels: 3,
      blockOutChannels: [32, 64, 64],
      layersPerBlock: 1, latentChannels: 4, normGroups: 8, scalingFactor: 0.18215,
    },
    scheduler: SD15_SCHEDULER,
  };
}

/** The up blocks mirror the down blocks in reverse. */
export function upBlockCrossAttention(unet: UNetConfig): boolean[] {
  return [...unet.downBlockCrossAttention].reverse();
}
