// Qwen3 as FLUX.2 [klein] uses it: the Llama-style decoder (kernels/text/llama-decoder.ts) with a
// per-head RMS norm on q and k, run over the chat-formatted, right-padded prompt; its hidden states
// after layers 9, 18 and 27 are concatenated per token (BFL's Qwen3Embedder).
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { llamaDecoderFeatures, llamaFeatureDim, type LlamaDecoderConfig } from '../text/llama-decoder';

export type Qwen3Config = LlamaDecoderConfig;

const FLUX2_LAYERS = [9, 18, 27];

/** Qwen3-4B (klein 4B, Z-Image): 3 × 2560 = 7680 features per token. */
export const QWEN3_4B: Qwen3Config = {
  name: 'qwen3-4b', vocabSize: 151936, hiddenSize: 2560, intermediateSize: 9728, numLayers: 36, numHeads: 32, numKvHeads: 8,
  headDim: 128, ropeTheta: 1_000_000, rmsNormEps: 1e-6, outputLayers: FLUX2_LAYERS, maxLength: 512, qkNorm: true, padding: 'right',
};
/** Qwen3-8B (klein 9B): 3 × 4096 = 12288 features per token. */
export const QWEN3_8B: Qwen3Config = {
  name: 'qwen3-8b', vocabSize: 151936, hiddenSize: 4096, intermediateSize: 12288, numLayers: 36, numHeads: 32, numKvHeads: 8,
  headDim: 128, ropeTheta: 1_000_000, rmsNormEps: 1e-6, outputLayers: FLUX2_LAYERS, maxLength: 512, qkNorm: true, padding: 'right',
};
/**
 * The Qwen3 architecture at miniature size for the tiny klein: 3 × 32 = 96 features per token (the
 * tiny transformer's contextDim). Its vocabulary is its own small tokenizer.json's.
 */
export const QWEN3_TINY: Qwen3Config = {
  name: 'qwen3-tiny', vocabSize: 512, hiddenSize: 32, intermediateSize: 96, numLayers: 3, numHeads: 4, numKvHeads: 2,
  headDim: 8, ropeTheta: 1_000_000, rmsNormEps: 1e-6, outputLayers: [1, 2, 3], maxLength: 64, qkNorm: true, padding: 'right',
};

/** Width of the concatenated features (the FLUX.2 transformer's contextDim). */
export const qwen3FeatureDim = llamaFeatureDim;

/**
 * Token ids [B, L] (int64) and attention mask [B, L] (1 = token, 0 = padding, float32) → the
 * concatenated hidden states [B, L, hidden × outputLayers].
 */
export function qwen3TextFeatures(b: Builder, cfg: Qwen3Config, ids: Tensor, mask: Tensor): Tensor {
  return llamaDecoderFeatures(b, cfg, ids, mask);
}
