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

/** Bytes of one chunk of attention scores inside a recomputed block. */
export const CHECKPOINTED_ATTENTION_CHUNK_BYTES = 8 * 2 ** 20;

/**
 * Query rows per chunk of memory-efficient attention (kernels/ops/nn.ts `chunkedAttention`): the
 * builder's attentionChunk when set; under gradient checkpointing, chunks of at most
 * CHECKPOINTED_ATTENTION_CHUNK_BYTES of scores — a recomputed transformer block is otherwise mostly its
 * [B, heads, L, S] scores (SD 1.5 at 256²: 32 MiB per copy, several copies live in its backward pass,
 * measured by bench:sd15); else plain attention.
 */
function attentionChunk(b: Builder, q: Tensor, k: Tensor): number | undefined {
  if (b.attentionChunk !== undefined) return b.attentionChunk || undefined;
  if (!b.gradientCheckpointing) return undefined;
  const len = q.shape[q.rank - 2];
  const rowBytes = (q.size / (len * q.shape[q.rank - 1])) * k.shape[k.rank - 2] * 4;
  return rowBytes * len > CHECKPOINTED_ATTENTION_CHUNK_BYTES ? Math.max(1, Math.floor(CHECKPOINTED_ATTENTION_CHUNK_BYTES / rowBytes)) : undefined;
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
  const y = mergeHeads(scaledDotProductAttention(q, k, v, { causal: o.causal, chunk: o.causal ? undefined : attentionChunk(b, q, k) }));
  return b.linear(n.out, y, dim, dim, true);
}
