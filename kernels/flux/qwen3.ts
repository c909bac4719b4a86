// Qwen3 as FLUX.2 [klein] uses it: a decoder-only LLM run over the chat-formatted prompt, whose hidden
// states after layers 9, 18 and 27 are concatenated per token (BFL's Qwen3Embedder). Module paths are
// transformers' (`model.layers.0.self_attn.q_proj`); the language-model head is never built.
// Layers: RMSNorm → GQA self-attention (per-head RMS norm on q and k, rotate-half RoPE, causal and
// padding mask) → residual → RMSNorm → SwiGLU MLP (gate_proj, up_proj, down_proj) → residual.
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, mul, silu, sub } from '../ops/elementwise';
import { concat, gather, reshape } from '../ops/shape-and-reduce';
import { scaledDotProductAttention } from '../ops/nn';
import { applyRope, mergeHeads, repeatKvHeads, rmsNorm, ropeTables, splitHeads } from '../dit/layers';

export interface Qwen3Config {
  name: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  ropeTheta: number;
  rmsNormEps: number;
  /** transformers' `hidden_states` indices concatenated (0 = the embeddings, k = after k layers). */
  outputLayers: number[];
  /** Prompt tokens after padding/truncation. */
  maxLength: number;
}

const FLUX2_LAYERS = [9, 18, 27];

/** Qwen3-4B (klein 4B, Z-Image): 3 × 2560 = 7680 features per token. */
export const QWEN3_4B: Qwen3Config = {
  name: 'qwen3-4b', vocabSize: 151936, hiddenSize: 2560, intermediateSize: 9728, numLayers: 36, numHeads: 32, numKvHeads: 8,
  headDim: 128, ropeTheta: 1_000_000, rmsNormEps: 1e-6, outputLayers: FLUX2_LAYERS, maxLength: 512,
};
/** Qwen3-8B (klein 9B): 3 × 4096 = 12288 features per token. */
export const QWEN3_8B: Qwen3Config = {
  name: 'qwen3-8b', vocabSize: 151936, hiddenSize: 4096, intermediateSize: 12288, numLayers: 36, numHeads: 32, numKvHeads: 8,
  headDim: 128, ropeTheta: 1_000_000, rmsNormEps: 1e-6, outputLayers: FLUX2_LAYERS, maxLength: 512,
};
/**
 * The Qwen3 architecture at miniature size for the tiny klein: 3 × 32 = 96 features per token (the
 * tiny transformer's contextDim). Its vocabulary is its own small tokenizer.json's.
 */
export const QWEN3_TINY: Qwen3Config = {
  name: 'qwen3-tiny', vocabSize: 512, hiddenSize: 32, intermediateSize: 96, numLayers: 3, numHeads: 4, numKvHeads: 2,
  headDim: 8, ropeTheta: 1_000_000, rmsNormEps: 1e-6, outputLayers: [1, 2, 3], maxLength: 64,
};

/** Width of the concatenated features (the FLUX.2 transformer's contextDim). */
export const qwen3FeatureDim = (c: Qwen3Config) => c.hiddenSize * c.outputLayers.length;

function attentionBias(mask: Tensor, len: number): Tensor {
  // Causal (a token sees itself and earlier ones) plus padding (no token sees a padded key), as
  // transformers does with an attention_mask. Padded queries still see the real tokens.
  const causal = new Float32Array(len * len);
  for (let i = 0; i < len; i++) for (let j = i + 1; j < len; j++) causal[i * len + j] = -1e9;
  const padding = mul(sub(1, reshape(mask, [mask.shape[0], 1, 1, len])), -1e9);
  return add(constant(causal, [1, 1, len, len]), padding);
}

function layer(b: Builder, cfg: Qwen3Config, x: Tensor, bias: Tensor, rope: ReturnType<typeof ropeTables>): Tensor {
  const d = cfg.hiddenSize;
  const attn = b.scope('self_attn');
  const h = rmsNorm(x, b.param('input_layernorm.weight', [d]), cfg.rmsNormEps);
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const norm = (name: string, t: Tensor) => rmsNorm(t, attn.param(`${name}.weight`, [cfg.headDim]), cfg.rmsNormEps);
  const q = applyRope(norm('q_norm', splitHeads(attn.linear('q_proj', h, d, qDim, false), cfg.numHeads)), rope, 'halves');
  const k = applyRope(norm('k_norm', splitHeads(attn.linear('k_proj', h, d, kvDim, false), cfg.numKvHeads)), rope, 'halves');
  const v = splitHeads(attn.linear('v_proj', h, d, kvDim, false), cfg.numKvHeads);
  const o = mergeHeads(scaledDotProductAttention(q, repeatKvHeads(k, cfg.numHeads), repeatKvHeads(v, cfg.numHeads), { mask: bias }));
  const y = add(x, attn.linear('o_proj', o, qDim, d, false));
  const mlp = b.scope('mlp');
  const m = rmsNorm(y, b.param('post_attention_layernorm.weight', [d]), cfg.rmsNormEps);
  const act = mul(silu(mlp.linear('gate_proj', m, d, cfg.intermediateSize, false)), mlp.linear('up_proj', m, d, cfg.intermediateSize, false));
  return add(y, mlp.linear('down_proj', act, cfg.intermediateSize, d, false));
}

/**
 * Token ids [B, L] (int64) and attention mask [B, L] (1 = token, 0 = padding, float32) → the
 * concatenated hidden states [B, L, hidden × outputLayers]. Only the layers up to the last one read
 * are built (layers 28–36 of Qwen3 never run).
 */
export function qwen3TextFeatures(b: Builder, cfg: Qwen3Config, ids: Tensor, mask: Tensor): Tensor {
  const [, len] = ids.shape;
  const model = b.scope('model');
  const rope = ropeTables(Array.from({ length: len }, (_, i) => [i]), [cfg.headDim], cfg.ropeTheta);
  const bias = attentionBias(mask, len);
  const wanted = new Set(cfg.outputLayers);
  const last = Math.max(...cfg.outputLayers);
  if (last > cfg.numLayers) throw new Error(`${cfg.name}: hidden state ${last} asked for, the model has ${cfg.numLayers} layers`);
  let h = gather(model.param('embed_tokens.weight', [cfg.vocabSize, cfg.hiddenSize]), ids, 0);
  const picked: Tensor[] = wanted.has(0) ? [h] : [];
  for (let i = 0; i < last; i++) {
    const prev = h;
    h = b.block(() => layer(model.scope(`layers.${i}`), cfg, prev, bias, rope));
    if (wanted.has(i + 1)) picked.push(h);
  }
  return concat(picked, -1);
}
