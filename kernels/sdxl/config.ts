// Sizes of the SDXL family: the real SDXL 1.0 base (and everything fine-tuned from it: Pony,
// Illustrious, NoobAI…) and a tiny config of the same shape that trains on CPU in seconds. The UNet,
// the CLIP text towers and the VAE are the SD 1.x layers (kernels/sd) with SDXL's numbers.
import { SD15, SD15_SCHEDULER, type ClipTextConfig, type SchedulerConfig, type UNetConfig, type VaeConfig } from '../sd/config';

/** OpenCLIP ViT-bigG's text tower as diffusers' CLIPTextModelWithProjection: a CLIP text config plus the pooled projection. */
export interface ClipTextWithProjectionConfig extends ClipTextConfig {
  /** Width of text_projection's output (the pooled vector the UNet's added embedding takes). */
  projectionDim: number;
}

export interface SdxlConfig {
  name: string;
  /** Pixel size the model is meant for (1024 for SDXL). */
  sampleSize: number;
  /** The UNet: `addEmbeddingInputDim` = projectionDim + 6 × sizeEmbeddingDim. */
  unet: UNetConfig & { addEmbeddingInputDim: number };
  /** Width of each of the 6 Fourier features of the size conditioning (diffusers' addition_time_embed_dim). */
  sizeEmbeddingDim: number;
  /** CLIP ViT-L/14 (diffusers text_encoder, kohya te1, single file conditioner.embedders.0). */
  textL: ClipTextConfig;
  /** OpenCLIP ViT-bigG/14 (diffusers text_encoder_2, kohya te2, single file conditioner.embedders.1). */
  textG: ClipTextWithProjectionConfig;
  vae: VaeConfig & {
    /**
     * The SDXL VAE overflows in fp16 (NaNs); it runs in fp32 (diffusers' force_upcast). The engine
     * computes in fp32 whatever the storage dtype, so this is a promise to keep, not a switch.
     */
    forceUpcast: boolean;
  };
  scheduler: SchedulerConfig;
}

/** The 6 size integers, in kohya's and diffusers' order: original (h, w), crop top-left (top, left), target (h, w). */
export const SIZE_CONDITIONING_COUNT = 6;

export const SDXL_VAE_SCALE = 0.13025;

export const SDXL_BASE: SdxlConfig = {
  name: 'sdxl',
  sampleSize: 1024,
  unet: {
    inChannels: 4, outChannels: 4,
    blockOutChannels: [320, 640, 1280],
    downBlockCrossAttention: [false, true, true],
    layersPerBlock: 2,
    attentionHeads: 0, // unused: heads come from attentionHeadDim
    attentionHeadDim: 64,
    transformerDepth: [1, 2, 10],
    midTransformerDepth: 10,
    crossAttentionDim: 2048,
    normGroups: 32, normEps: 1e-5,
    useLinearProjection: true,
    flipSinToCos: true, freqShift: 0,
    addEmbeddingInputDim: 1280 + 6 * 256,
  },
  sizeEmbeddingDim: 256,
  textL: { ...SD15.text },
  textG: {
    vocabSize: 49408, hiddenSize: 1280, intermediateSize: 5120, numLayers: 32, numHeads: 20,
    maxPositions: 77, hiddenAct: 'gelu', layerNormEps: 1e-5, projectionDim: 1280,
  },
  vae: { ...SD15.vae, scalingFactor: SDXL_VAE_SCALE, forceUpcast: true },
  scheduler: SD15_SCHEDULER,
};

/**
 * SDXL's shape at miniature size: three levels with no attention at the first, two transformer blocks
 * at the deepest and in the middle, linear proj_in/out, two text towers whose penultimate states are
 * concatenated, pooled text + 6 size features into label_emb. `vocabSize` is the tokenizer's (the
 * embedded tiny tokenizer has 1386 entries).
 */
export function tinySdxlConfig(vocabSize = 1386): SdxlConfig {
  const textL: ClipTextConfig = { vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 2, maxPositions: 77, hiddenAct: 'quick_gelu', layerNormEps: 1e-5 };
  const textG: ClipTextWithProjectionConfig = { vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 3, numHeads: 2, maxPositions: 77, hiddenAct: 'gelu', layerNormEps: 1e-5, projectionDim: 32 };
  const sizeEmbeddingDim = 8;
  return {
    name: 'sdxl-tiny',
    sampleSize: 64,
    unet: {
      inChannels: 4, outChannels: 4,
      blockOutChannels: [32, 64, 64],
      downBlockCrossAttention: [false, true, true],
      layersPerBlock: 2,
      attentionHeads: 0,
      attentionHeadDim: 16,
      transformerDepth: [1, 1, 2],
      midTransformerDepth: 2,
      crossAttentionDim: textL.hiddenSize + textG.hiddenSize,
      normGroups: 8, normEps: 1e-5,
      useLinearProjection: true,
      flipSinToCos: true, freqShift: 0,
      addEmbeddingInputDim: textG.projectionDim + 6 * sizeEmbeddingDim,
    },
    sizeEmbeddingDim,
    textL,
    textG,
    vae: {
      inChannels: 3, outChannels: 3, blockOutChannels: [32, 64, 64], layersPerBlock: 1, latentChannels: 4, normGroups: 8,
      scalingFactor: SDXL_VAE_SCALE, forceUpcast: true,
    },
    scheduler: SD15_SCHEDULER,
  };
}

/** Checks the widths that must agree (context = L + G hidden, label_emb input = pooled + 6 size features). */
export function checkSdxlConfig(cfg: SdxlConfig): void {
  const ctx = cfg.textL.hiddenSize + cfg.textG.hiddenSize;
  if (cfg.unet.crossAttentionDim !== ctx) throw new Error(`SDXL config '${cfg.name}': cross-attention width ${cfg.unet.crossAttentionDim} ≠ text widths ${cfg.textL.hiddenSize} + ${cfg.textG.hiddenSize}`);
  const add = cfg.textG.projectionDim + SIZE_CONDITIONING_COUNT * cfg.sizeEmbeddingDim;
  if (cfg.unet.addEmbeddingInputDim !== add) throw new Error(`SDXL config '${cfg.name}': label_emb input ${cfg.unet.addEmbeddingInputDim} ≠ pooled ${cfg.textG.projectionDim} + 6 × ${cfg.sizeEmbeddingDim}`);
}
