// Multi-head attention as diffusers' `Attention` and CLIP's self-attention compute it, built through the
// Builder so every projection is an adapter target under its real module name.
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { reshape, transpose } from '../ops/shape-and-reduce';
import { scaledDotProductAttention } from '../ops/nn';

export interface AttentionNames { q: string; k: string; v: string; out: string }

/** diffusers' names (`to_q`, `to_k`, `to_v`, `to_out.0`). */
export const DIFFUSERS_ATTENTION: AttentionNames = { q: 'to_q', k: 'to_k', v: 'to_v', out: 'to_out.0' };
/** CLIP's names (`q_proj`, `k_proj`, `v_proj`, `out_proj`). */
export const CLIP_ATTENTION: AttentionNames = { q: 'q_proj', k: 'k_proj', v: 'v_proj', out: 'out_proj' };

export interface AttentionOptions {
  heads: number;
  /** Width of the context (keys/values source); defaults to the query width (self-attention). */
  contextDim?: number;
  /** Bias on the q/k/v projections (CLIP and the VAE have one, the UNet does not). */
  qkvBias: boolean;
  causal?: boolean;
  names?: AttentionNames;
}

/** [B, L, C] → [B, heads, L, C/heads] */
function splitHeads(x: Tensor, heads: number): Tensor {
  const [bsz, len, c] = x.shape;
  return transpose(reshape(x, [bsz, len, heads, c / heads]), [0, 2, 1, 3]);
}

/** [B, heads, L, D] → [B, L, heads·D] */
function mergeHeads(x: Tensor): Tensor {
  const [bsz, heads, len, d] = x.shape;
  return reshape(transpose(x, [0, 2, 1, 3]), [bsz, len, heads * d]);
}

/** Attention of `x` [B, L, dim] over `context` [B, S, contextDim] (or itself), output projected back to dim. */
export function attention(b: Builder, x: Tensor, context: Tensor | undefined, dim: number, o: AttentionOptions): Tensor {
  const n = o.names ?? DIFFUSERS_ATTENTION;
  const ctx = context ?? x;
  const ctxDim = o.contextDim ?? dim;
  if (dim % o.heads) throw new Error(`attention ${b.prefix}: width ${dim} does not split into ${o.heads} heads`);
  const q = splitHeads(b.linear(n.q, x, dim, dim, o.qkvBias), o.heads);
  const k = splitHeads(b.linear(n.k, ctx, ctxDim, dim, o.qkvBias), o.heads);
  const v = splitHeads(b.linear(n.v, ctx, ctxDim, dim, o.qkvBias), o.heads);
  const y = mergeHeads(scaledDotProductAttention(q, k, v, { causal: o.causal }));
  return b.linear(n.out, y, dim, dim, true);
}
