// The Llama-style decoder-only LLM that FLUX.2 reads text features from (Qwen3 for [klein], Mistral
// Small 3 for [dev]): hidden states of a few layers concatenated per token; the language-model head is
// never built. Module paths are transformers' (`model.layers.0.self_attn.q_proj`).
// Layers: RMSNorm → GQA self-attention (rotate-half RoPE at positions 0…L−1, causal and padding mask;
// Qwen3 adds a per-head RMS norm on q and k) → residual → RMSNorm → SwiGLU MLP (gate_proj, up_proj,
// down_proj) → residual.
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, mul, silu, sub } from '../ops/elementwise';
import { concat, gather, reshape } from '../ops/shape-and-reduce';
import { scaledDotProductAttention } from '../ops/nn';
import { applyRope, mergeHeads, repeatKvHeads, rmsNorm, ropeTables, splitHeads, type RopeTables } from '../dit/layers';

export interface LlamaDecoderConfig {
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
  /** Per-head RMSNorm on q and k before RoPE (`q_norm`, `k_norm`: Qwen3). */
  qkNorm: boolean;
  /** Where the tokenizer puts padding: after the prompt (Qwen3) or before it (Mistral's processor). */
  padding: 'right' | 'left';
}

/** Width of the concatenated features (the FLUX.2 transformer's contextDim). */
export const llamaFeatureDim = (c: LlamaDecoderConfig) => c.hiddenSize * c.outputLayers.length;

function attentionBias(mask: Tensor, len: number): Tensor {
  // Causal (a token sees itself and earlier ones) plus padding (no token sees a padded key), as
  // transformers does with an attention_mask. Right-padded queries still see the real tokens.
  const causal = new Float32Array(len * len);
  for (let i = 0; i < len; i++) for (let j = i + 1; j < len; j++) causal[i * len + j] = -1e9;
  const padding = mul(sub(1, reshape(mask, [mask.shape[0], 1, 1, len])), -1e9);
  return add(constant(causal, [1, 1, len, len]), padding);
}

interface LayerContext { bias: Tensor; rope: RopeTables; queryMask?: Tensor }

function layer(b: Builder, cfg: LlamaDecoderConfig, x: Tensor, ctx: LayerContext): Tensor {
  const d = cfg.hiddenSize;
  const attn = b.scope('self_attn');
  const h = rmsNorm(x, b.param('input_layernorm.weight', [d]), cfg.rmsNormEps);
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const norm = (name: string, t: Tensor) => (cfg.qkNorm ? rmsNorm(t, attn.param(`${name}.weight`, [cfg.headDim]), cfg.rmsNormEps) : t);
  const q = applyRope(norm('q_norm', splitHeads(attn.linear('q_proj', h, d, qDim, false), cfg.numHeads)), ctx.rope, 'halves');
  const k = applyRope(norm('k_norm', splitHeads(attn.linear('k_proj', h, d, kvDim, false), cfg.numKvHeads)), ctx.rope, 'halves');
  const v = splitHeads(attn.linear('v_proj', h, d, kvDim, false), cfg.numKvHeads);
  let o = mergeHeads(scaledDotProductAttention(q, repeatKvHeads(k, cfg.numHeads), repeatKvHeads(v, cfg.numHeads), { mask: ctx.bias }));
  // A left-padded query sees no key at all (only pads precede it). transformers' SDPA path gives such a
  // fully masked row zero attention (PyTorch's safe softmax), not a softmax over masked scores.
  if (ctx.queryMask) o = mul(o, ctx.queryMask);
  const y = add(x, attn.linear('o_proj', o, qDim, d, false));
  const mlp = b.scope('mlp');
  const m = rmsNorm(y, b.param('post_attention_layernorm.weight', [d]), cfg.rmsNormEps);
  const act = mul(silu(mlp.linear('gate_proj', m, d, cfg.intermediateSize, false)), mlp.linear('up_proj', m, d, cfg.intermediateSize, false));
  return add(y, mlp.linear('down_proj', act, cfg.intermediateSize, d, false));
}

/**
 * Token ids [B, L] (int64) and attention mask [B, L] (1 = token, 0 = padding, float32) → the
 * concatenated hidden states [B, L, hidden × outputLayers]. Only the layers up to the last one read
 * are built (Qwen3's layers 28–36 and Mistral's 31–40 never run).
 */
export function llamaDecoderFeatures(b: Builder, cfg: LlamaDecoderConfig, ids: Tensor, mask: Tensor): Tensor {
  const [bsz, len] = ids.shape;
  const model = b.scope('model');
  const rope = ropeTables(Array.from({ length: len }, (_, i) => [i]), [cfg.headDim], cfg.ropeTheta);
  const ctx: LayerContext = { bias: attentionBias(mask, len), rope, queryMask: cfg.padding === 'left' ? reshape(mask, [bsz, len, 1]) : undefined };
  const wanted = new Set(cfg.outputLayers);
  const last = Math.max(...cfg.outputLayers);
  if (last > cfg.numLayers) throw new Error(`${cfg.name}: hidden state ${last} asked for, the model has ${cfg.numLayers} layers`);
  let h = gather(model.param('embed_tokens.weight', [cfg.vocabSize, cfg.hiddenSize]), ids, 0);
  const picked: Tensor[] = wanted.has(0) ? [h] : [];
  for (let i = 0; i < last; i++) {
    const prev = h;
    h = b.block(() => layer(model.scope(`layers.${i}`), cfg, prev, ctx));
    if (wanted.has(i + 1)) picked.push(h);
  }
  return concat(picked, -1);
}
