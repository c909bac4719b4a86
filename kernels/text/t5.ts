// The T5 v1.1 encoder (FLUX.1's and SD3's T5-XXL; Wan's UMT5 with a bias table per layer) with
// transformers' module paths (`encoder.block.0.layer.0.SelfAttention.q`). Pre-RMS-norm layers, attention
// without 1/√d scaling plus a learned relative-position bias (bidirectional log buckets), gated-GELU
// feed-forward (wi_0 through GELU-tanh times wi_1, then wo), final RMS norm. No position embeddings.
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, gelu, mul, sub } from '../ops/elementwise';
import { gather, reshape, transpose } from '../ops/shape-and-reduce';
import { scaledDotProductAttention } from '../ops/nn';
import { mergeHeads, rmsNorm, splitHeads } from '../dit/layers';

export interface T5Config {
  name: string;
  vocabSize: number;
  dModel: number;
  dKv: number;
  dFf: number;
  numLayers: number;
  numHeads: number;
  relativeBuckets: number;
  relativeMaxDistance: number;
  layerNormEps: number;
  /** UMT5 learns a bias table in every layer; T5 only in the first, shared by the rest. */
  biasPerLayer: boolean;
}

/** google/t5-v1_1-xxl's encoder (FLUX.1, SD3): [B, L, 4096]. */
export const T5_XXL: T5Config = {
  name: 't5-v1_1-xxl', vocabSize: 32128, dModel: 4096, dKv: 64, dFf: 10240, numLayers: 24, numHeads: 64,
  relativeBuckets: 32, relativeMaxDistance: 128, layerNormEps: 1e-6, biasPerLayer: false,
};

/**
 * A T5-style encoder's sizes from its tensors (transformers names): vocabulary and width from
 * `shared.weight`, heads and buckets from block 0's relative-position table, head width from q, the feed-
 * forward width from wi_0, layers from the block count; undefined when one of them is missing.
 */
export function t5SizesFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[]): Pick<T5Config, 'vocabSize' | 'dModel' | 'dKv' | 'numHeads' | 'dFf' | 'numLayers' | 'relativeBuckets'> | undefined {
  const shared = shapeOf('shared.weight');
  const q = shapeOf('encoder.block.0.layer.0.SelfAttention.q.weight');
  const bias = shapeOf('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight');
  const wi = shapeOf('encoder.block.0.layer.1.DenseReluDense.wi_0.weight');
  if (!shared || !q || !bias || !wi) return undefined;
  let numLayers = 0;
  for (const k of keys) { const m = /^encoder\.block\.(\d+)\./.exec(k); if (m) numLayers = Math.max(numLayers, Number(m[1]) + 1); }
  const numHeads = bias[1];
  return { vocabSize: shared[0], dModel: shared[1], dKv: q[0] / numHeads, numHeads, dFf: wi[0], numLayers, relativeBuckets: bias[0] };
}

/** transformers' bidirectional relative-position bucket of key position − query position. */
export function relativePositionBucket(relative: number, buckets: number, maxDistance: number): number {
  const half = buckets / 2;
  let bucket = relative > 0 ? half : 0;
  const n = Math.abs(relative);
  const maxExact = half / 2;
  if (n < maxExact) return bucket + n;
  const large = maxExact + Math.floor((Math.log(n / maxExact) / Math.log(maxDistance / maxExact)) * (half - maxExact));
  bucket += Math.min(large, half - 1);
  return bucket;
}

/** The [1, heads, L, L] additive bias from a layer's `relative_attention_bias` table. */
function positionBias(b: Builder, cfg: T5Config, len: number): Tensor {
  const buckets = BigInt64Array.from({ length: len * len }, (_, k) => BigInt(relativePositionBucket((k % len) - Math.floor(k / len), cfg.relativeBuckets, cfg.relativeMaxDistance)));
  const table = b.param('relative_attention_bias.weight', [cfg.relativeBuckets, cfg.numHeads]);
  const perPair = gather(table, constant(buckets, [len, len], 'int64'), 0); // [L, L, heads]
  return reshape(transpose(perPair, [2, 0, 1]), [1, cfg.numHeads, len, len]);
}

export interface T5Options {
  /** [B, L] float32, 1 = token, 0 = padding; when absent every token attends everywhere (BFL's FLUX.1 embedder). */
  mask?: Tensor;
}

/** Token ids [B, L] → hidden states [B, L, dModel]. */
export function t5Encoder(b: Builder, cfg: T5Config, ids: Tensor, opts: T5Options = {}): Tensor {
  const [bsz, len] = ids.shape;
  const inner = cfg.numHeads * cfg.dKv;
  let h = gather(b.param('shared.weight', [cfg.vocabSize, cfg.dModel]), ids, 0);
  const enc = b.scope('encoder');
  const padding = opts.mask ? mul(sub(1, reshape(opts.mask, [bsz, 1, 1, len])), -1e9) : undefined;
  let bias: Tensor | undefined;
  for (let i = 0; i < cfg.numLayers; i++) {
    const block = enc.scope(`block.${i}`);
    const attnLayer = block.scope('layer.0');
    const attn = attnLayer.scope('SelfAttention');
    if (!bias || cfg.biasPerLayer) {
      bias = positionBias(attn, cfg, len);
      if (padding) bias = add(bias, padding);
    }
    const x = rmsNorm(h, attnLayer.param('layer_norm.weight', [cfg.dModel]), cfg.layerNormEps);
    const [q, k, v] = ['q', 'k', 'v'].map((n) => splitHeads(attn.linear(n, x, cfg.dModel, inner, false), cfg.numHeads));
    h = add(h, attn.linear('o', mergeHeads(scaledDotProductAttention(q, k, v, { mask: bias, scale: 1 })), inner, cfg.dModel, false));
    const ffLayer = block.scope('layer.1');
    const ff = ffLayer.scope('DenseReluDense');
    const y = rmsNorm(h, ffLayer.param('layer_norm.weight', [cfg.dModel]), cfg.layerNormEps);
    const gated = mul(gelu(ff.linear('wi_0', y, cfg.dModel, cfg.dFf, false), 'tanh'), ff.linear('wi_1', y, cfg.dModel, cfg.dFf, false));
    h = add(h, ff.linear('wo', gated, cfg.dFf, cfg.dModel, false));
  }
  return rmsNorm(h, enc.param('final_layer_norm.weight', [cfg.dModel]), cfg.layerNormEps);
}
