// SDXL's two text towers and how their outputs meet (facts from sd-scripts, diffusers and ComfyUI):
//   CLIP ViT-L (text_encoder / te1): the penultimate layer's hidden state, without the final layer norm.
//   OpenCLIP ViT-bigG (text_encoder_2 / te2): the penultimate hidden state as well; the pooled vector is
//     the final-layer-normed last state at the first EOS token, through text_projection (no bias).
// The UNet cross-attends to both hidden states concatenated on the width (768 + 1280 = 2048); the
// pooled vector goes, with the size features, into label_emb. Module paths are transformers'
// (`text_model.encoder.layers.0.self_attn.q_proj`, `text_projection`).
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, cast } from '../ops/elementwise';
import { concat, gather, reshape, slice } from '../ops/shape-and-reduce';
import { linear } from '../ops/nn';
import type { ClipTextConfig } from '../sd/config';
import { clipLayer } from '../sd/clip-text';
import type { ClipTextWithProjectionConfig, SdxlConfig } from './config';

export interface PenultimateOptions {
  /**
   * Build every layer and the final layer norm even when nothing reads them: how the full tensor list
   * (and kohya's 72 te1 targets, layer 11 included) is recorded. Training and inference leave it off.
   */
  complete?: boolean;
}

function embeddings(tm: Builder, cfg: ClipTextConfig, ids: Tensor): Tensor {
  const len = ids.shape[1];
  if (len > cfg.maxPositions) throw new Error(`text encoder: ${len} tokens, at most ${cfg.maxPositions}`);
  const emb = tm.scope('embeddings');
  const tokens = gather(emb.param('token_embedding.weight', [cfg.vocabSize, cfg.hiddenSize]), ids, 0);
  return add(tokens, slice(emb.param('position_embedding.weight', [cfg.maxPositions, cfg.hiddenSize]), [0], [len], [0]));
}

/** CLIP-L: token ids [B, L] → the penultimate layer's hidden state [B, L, hidden] (no final layer norm). */
export function clipLPenultimate(b: Builder, cfg: ClipTextConfig, ids: Tensor, opts: PenultimateOptions = {}): Tensor {
  const tm = b.scope('text_model');
  let h = embeddings(tm, cfg, ids);
  let penultimate = h;
  for (let i = 0; i < cfg.numLayers; i++) {
    if (i === cfg.numLayers - 1) {
      penultimate = h;
      if (!opts.complete) break;
    }
    h = clipLayer(tm.scope(`encoder.layers.${i}`), cfg, h);
  }
  if (opts.complete) tm.layerNorm('final_layer_norm', h, cfg.hiddenSize, cfg.layerNormEps);
  return penultimate;
}

export interface BigGOutput {
  /** [B, L, hidden]: the penultimate layer's state. */
  hidden: Tensor;
  /** [B, projectionDim]: final-normed state at the first EOS, through text_projection. */
  pooled: Tensor;
}

/**
 * OpenCLIP bigG with transformers' names. `eosIndex` [B] (int) is the position of each prompt's first
 * EOS token (what argmax over CLIP ids finds, the EOS id being the largest).
 */
export function bigGText(b: Builder, cfg: ClipTextWithProjectionConfig, ids: Tensor, eosIndex: Tensor): BigGOutput {
  const [bsz, len] = ids.shape;
  const tm = b.scope('text_model');
  let h = embeddings(tm, cfg, ids);
  let hidden = h;
  for (let i = 0; i < cfg.numLayers; i++) {
    if (i === cfg.numLayers - 1) hidden = h;
    h = clipLayer(tm.scope(`encoder.layers.${i}`), cfg, h);
  }
  const last = tm.layerNorm('final_layer_norm', h, cfg.hiddenSize, cfg.layerNormEps);
  // Row b·L + eos of the flattened [B·L, D] states.
  const offsets = constant(BigInt64Array.from({ length: bsz }, (_, i) => BigInt(i * len)), [bsz], 'int64');
  const atEos = gather(reshape(last, [bsz * len, cfg.hiddenSize]), add(cast(eosIndex, 'int64'), offsets), 0);
  // A plain parameter, not a Builder linear: kohya trains only attention and MLP layers of te2.
  const pooled = linear(atEos, b.param('text_projection.weight', [cfg.projectionDim, cfg.hiddenSize]));
  return { hidden, pooled };
}

export interface SdxlTextOutput {
  /** [B, L, hiddenL + hiddenG] (2048): what the UNet cross-attends to. */
  context: Tensor;
  /** [B, projectionDim] (1280): the pooled bigG vector for label_emb. */
  pooled: Tensor;
}

/** Both towers on their token ids (the two tokenizers differ only in the pad token) → context and pooled. */
export function sdxlTextEncode(textL: Builder, textG: Builder, cfg: SdxlConfig, idsL: Tensor, idsG: Tensor, eosIndexG: Tensor): SdxlTextOutput {
  const l = clipLPenultimate(textL, cfg.textL, idsL);
  const g = bigGText(textG, cfg.textG, idsG, eosIndexG);
  return { context: concat([l, g.hidden], 2), pooled: g.pooled };
}
