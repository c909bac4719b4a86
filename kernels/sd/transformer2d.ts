// Transformer2DModel, the UNet's spatial transformer: GroupNorm, proj_in, BasicTransformerBlocks
// (self-attention, cross-attention to the text, GEGLU feed-forward), proj_out, plus the residual.
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { add, gelu, mul } from '../ops/elementwise';
import { reshape, split, transpose } from '../ops/shape-and-reduce';
import { attention } from './attention';

export interface Transformer2DOptions {
  heads: number;
  contextDim: number;
  groups: number;
  /** Linear proj_in/proj_out (SD 2.x) instead of 1×1 convs (SD 1.x). */
  linearProjection: boolean;
  depth?: number;
}

/** GEGLU feed-forward: ff.net.0.proj makes 2×inner (value, gate); value·gelu(gate) goes through ff.net.2. */
function feedForward(b: Builder, x: Tensor, dim: number): Tensor {
  const inner = dim * 4;
  const [value, gate] = split(b.linear('net.0.proj', x, dim, inner * 2), 2, -1);
  return b.linear('net.2', mul(value, gelu(gate)), inner, dim);
}

/** BasicTransformerBlock: pre-LayerNorm residual self-attention, cross-attention and feed-forward. */
export function transformerBlock(b: Builder, x: Tensor, context: Tensor, dim: number, o: Transformer2DOptions): Tensor {
  let h = add(x, attention(b.scope('attn1'), b.layerNorm('norm1', x, dim), undefined, dim, { heads: o.heads, qkvBias: false }));
  h = add(h, attention(b.scope('attn2'), b.layerNorm('norm2', h, dim), context, dim, { heads: o.heads, contextDim: o.contextDim, qkvBias: false }));
  return add(h, feedForward(b.scope('ff'), b.layerNorm('norm3', h, dim), dim));
}

/** x [B, C, H, W], context [B, S, contextDim] → [B, C, H, W]. */
export function transformer2d(b: Builder, x: Tensor, context: Tensor, ch: number, o: Transformer2DOptions): Tensor {
  const [bsz, , hgt, wid] = x.shape;
  const tokens = (t: Tensor) => transpose(reshape(t, [bsz, ch, hgt * wid]), [0, 2, 1]);
  const image = (t: Tensor) => reshape(transpose(t, [0, 2, 1]), [bsz, ch, hgt, wid]);
  // Block boundaries (recomputed under gradient checkpointing): the input projection, each transformer
  // block, and the output projection with the residual.
  let h = b.block(() => {
    const normed = b.groupNorm('norm', x, o.groups, ch, 1e-6);
    return o.linearProjection ? b.linear('proj_in', tokens(normed), ch, ch) : tokens(b.conv('proj_in', normed, ch, ch, 1));
  });
  for (let i = 0; i < (o.depth ?? 1); i++) {
    const hi = h;
    h = b.block(() => transformerBlock(b.scope(`transformer_blocks.${i}`), hi, context, ch, o));
  }
  const last = h;
  return b.block(() => add(o.linearProjection ? image(b.linear('proj_out', last, ch, ch)) : b.conv('proj_out', image(last), ch, ch, 1), x));
}
