// The CLIP text transformer (text tower of CLIP ViT-L/14 for SD 1.x): token + position embeddings,
// pre-LayerNorm layers with a causal mask, final layer norm. Module paths are transformers'
// (`text_model.encoder.layers.0.self_attn.q_proj`).
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, cast, gelu, mul, sigmoid } from '../ops/elementwise';
import { gather, reshape, slice } from '../ops/shape-and-reduce';
import type { ClipTextConfig } from './config';
import { attention, CLIP_ATTENTION } from './attention';

export interface ClipTextOptions {
  /**
   * A1111/kohya clip skip: 1 = the last layer's output, 2 = the penultimate layer's (what most
   * anime-style SD 1.x models expect). The final layer norm is applied either way.
   */
  clipSkip?: number;
  /** Position of each prompt's EOS token [B] (int64): when given, the pooled output is returned too. */
  eosIndex?: Tensor;
}

export interface ClipTextOutput {
  /** [B, L, hiddenSize]: what the UNet cross-attends to. */
  hidden: Tensor;
  /** [B, hiddenSize]: the final-normed state at the EOS token (when eosIndex was given). */
  pooled?: Tensor;
}

const quickGelu = (x: Tensor) => mul(x, sigmoid(mul(x, 1.702)));

/** The sizes one encoder layer needs (CLIP's text and vision towers share the layer). */
export type ClipLayerSizes = Pick<ClipTextConfig, 'hiddenSize' | 'intermediateSize' | 'numHeads' | 'hiddenAct' | 'layerNormEps'>;

/**
 * One pre-LN encoder layer: x + attn(ln1(x)); x + mlp(ln2(x)). The text tower attends causally, the
 * vision tower (kernels/vision/clip-vision.ts) over every patch.
 */
export function clipLayer(b: Builder, cfg: ClipLayerSizes, x: Tensor, causal = true): Tensor {
  const d = cfg.hiddenSize;
  const h = add(x, attention(b.scope('self_attn'), b.layerNorm('layer_norm1', x, d, cfg.layerNormEps), undefined, d,
    { heads: cfg.numHeads, qkvBias: true, causal, names: CLIP_ATTENTION }));
  const mlp = b.scope('mlp');
  const act = cfg.hiddenAct === 'quick_gelu' ? quickGelu : (t: Tensor) => gelu(t);
  const m = mlp.linear('fc2', act(mlp.linear('fc1', b.layerNorm('layer_norm2', h, d, cfg.layerNormEps), d, cfg.intermediateSize)), cfg.intermediateSize, d);
  return add(h, m);
}

/** Token ids [B, L] (int32 or int64, L ≤ maxPositions) → hidden states (and the pooled output). */
export function clipTextEncoder(b: Builder, cfg: ClipTextConfig, ids: Tensor, opts: ClipTextOptions = {}): ClipTextOutput {
  const clipSkip = opts.clipSkip ?? 1;
  if (!Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > cfg.numLayers) {
    throw new Error(`clip skip must be an integer from 1 to ${cfg.numLayers}, got ${clipSkip}`);
  }
  const [bsz, len] = ids.shape;
  if (len > cfg.maxPositions) throw new Error(`text encoder: ${len} tokens, at most ${cfg.maxPositions}`);
  const tm = b.scope('text_model');
  const emb = tm.scope('embeddings');
  const tokens = gather(emb.param('token_embedding.weight', [cfg.vocabSize, cfg.hiddenSize]), ids, 0);
  const positions = slice(emb.param('position_embedding.weight', [cfg.maxPositions, cfg.hiddenSize]), [0], [len], [0]);
  let h = add(tokens, positions);
  for (let i = 0; i < cfg.numLayers - (clipSkip - 1); i++) h = clipLayer(tm.scope(`encoder.layers.${i}`), cfg, h);
  const hidden = tm.layerNorm('final_layer_norm', h, cfg.hiddenSize, cfg.layerNormEps);
  if (!opts.eosIndex) return { hidden };
  // Row b·L + eos of the flattened [B·L, D] states.
  const offsets = constant(BigInt64Array.from({ length: bsz }, (_, i) => BigInt(i * len)), [bsz], 'int64');
  const rows = add(cast(opts.eosIndex, 'int64'), offsets);
  return { hidden, pooled: gather(reshape(hidden, [bsz * len, cfg.hiddenSize]), rows, 0) };
}
