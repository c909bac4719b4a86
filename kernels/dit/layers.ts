// Layers shared by the diffusion transformers (FLUX.1, FLUX.2, Wan, Z-Image) and the LLM text
// encoders they condition on (Qwen3): RMS norm, rotary position embeddings over several position
// axes, adaLN modulation, SwiGLU, and timestep embeddings. All are compositions of table ops, so
// their gradients come from the ops' own rules (checked in tests/kernels/dit).
import { constant, type Tensor } from '../tensor';
import { add, cast, cos, mul, rsqrt, silu, sin, sub } from '../ops/elementwise';
import { layerNorm, scaledDotProductAttention } from '../ops/nn';
import { concat, expand, reduceMean, reshape, slice, split, transpose } from '../ops/shape-and-reduce';

/** x / sqrt(mean(x²) + eps) over the last axis, times `weight` when given (torch.nn.RMSNorm). */
export function rmsNorm(x: Tensor, weight: Tensor | undefined, eps: number): Tensor {
  const y = mul(x, rsqrt(add(reduceMean(mul(x, x), -1, true), eps)));
  return weight ? mul(y, weight) : y;
}

/**
 * How the rotated pairs of a head's channels are laid out: `interleaved` rotates (x0, x1), (x2, x3), …
 * (BFL's FLUX, Wan); `halves` rotates (x_i, x_{i+D/2}) (the rotate_half of Llama/Qwen).
 */
export type RopePairing = 'interleaved' | 'halves';

/** cos/sin tables [L, D/2] for each token's rotation angles (pair i of the head uses column i). */
export interface RopeTables { cos: Tensor; sin: Tensor }

/**
 * Angles for tokens with several position coordinates (FLUX: t, h, w, l): axis a owns axesDim[a]
 * channels of each head, i.e. axesDim[a]/2 pairs, whose frequencies are theta^(−2j/axesDim[a]).
 * The pairs of the axes follow each other in axis order. Returns [L, ΣaxesDim/2] as float64 angles.
 */
export function ropeAngles(positions: readonly (readonly number[])[], axesDim: readonly number[], theta: number): { angles: Float64Array; pairs: number } {
  const pairs = axesDim.reduce((a, d) => a + d / 2, 0);
  if (axesDim.some((d) => d % 2)) throw new Error(`rope: every axis needs an even width, got [${axesDim.join(', ')}]`);
  const freqs: number[] = [];
  const axisOf: number[] = [];
  axesDim.forEach((d, a) => { for (let j = 0; j < d / 2; j++) { freqs.push(1 / theta ** ((2 * j) / d)); axisOf.push(a); } });
  const angles = new Float64Array(positions.length * pairs);
  positions.forEach((p, i) => {
    if (p.length !== axesDim.length) throw new Error(`rope: token ${i} has ${p.length} coordinates, expected ${axesDim.length}`);
    for (let j = 0; j < pairs; j++) angles[i * pairs + j] = p[axisOf[j]] * freqs[j];
  });
  return { angles, pairs };
}

/** Graph constants with the cos and sin of `ropeAngles` (computed in float64, stored as float32). */
export function ropeTables(positions: readonly (readonly number[])[], axesDim: readonly number[], theta: number): RopeTables {
  const { angles, pairs } = ropeAngles(positions, axesDim, theta);
  return {
    cos: constant(Float32Array.from(angles, Math.cos), [positions.length, pairs]),
    sin: constant(Float32Array.from(angles, Math.sin), [positions.length, pairs]),
  };
}

/** Rotates x [..., L, D] by the tables (cos/sin [L, D/2]): each pair (a, b) → (a cos − b sin, a sin + b cos). */
export function applyRope(x: Tensor, t: RopeTables, pairing: RopePairing): Tensor {
  const d = x.shape[x.rank - 1];
  const len = x.shape[x.rank - 2];
  if (t.cos.shape[0] !== len || t.cos.shape[1] * 2 !== d) throw new Error(`rope: tables [${t.cos.shape}] do not fit x [${x.shape}]`);
  const c0 = cast(t.cos, x.dtype);
  const s0 = cast(t.sin, x.dtype);
  if (pairing === 'halves') {
    const [a, b] = split(x, 2, -1);
    return concat([sub(mul(a, c0), mul(b, s0)), add(mul(a, s0), mul(b, c0))], -1);
  }
  const lead = x.shape.slice(0, -1);
  const xr = reshape(x, [...lead, d / 2, 2]);
  const a = slice(xr, [0], [1], [-1]);
  const b = slice(xr, [1], [2], [-1]);
  const c = reshape(c0, [len, d / 2, 1]);
  const s = reshape(s0, [len, d / 2, 1]);
  return reshape(concat([sub(mul(a, c), mul(b, s)), add(mul(a, s), mul(b, c))], -1), x.shape);
}

/** LayerNorm without a learned affine (elementwise_affine=False): the adaLN blocks modulate instead. */
export function layerNormPlain(x: Tensor, eps: number): Tensor {
  const d = x.shape[x.rank - 1];
  const ones = cast(constant(new Float32Array(d).fill(1), [d]), x.dtype);
  const zeros = cast(constant(new Float32Array(d), [d]), x.dtype);
  return layerNorm(x, ones, zeros, eps);
}

/** adaLN: norm(x)·(1 + scale) + shift, with shift/scale [B, D] broadcast over the tokens of x [B, L, D]. */
export function modulate(normed: Tensor, shift: Tensor, scale: Tensor): Tensor {
  const s = (t: Tensor) => reshape(t, [t.shape[0], 1, t.shape[1]]);
  return add(mul(normed, add(s(scale), 1)), s(shift));
}

/** x + gate·y with gate [B, D] broadcast over the tokens. */
export function gatedResidual(x: Tensor, gate: Tensor, y: Tensor): Tensor {
  return add(x, mul(reshape(gate, [gate.shape[0], 1, gate.shape[1]]), y));
}

/** SwiGLU on a fused projection: the first half is the gate (through SiLU), the second the value. */
export function swiglu(x: Tensor): Tensor {
  const [gate, value] = split(x, 2, -1);
  return mul(silu(gate), value);
}

/**
 * Sinusoidal timestep embedding [B, dim] of t [B] (already scaled, e.g. ×1000): cos of the
 * frequencies first, then sin (FLUX's `timestep_embedding`, diffusers' flip_sin_to_cos with shift 0).
 */
export function timestepEmbedding(t: Tensor, dim: number, maxPeriod = 10000): Tensor {
  const half = dim / 2;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(maxPeriod) * i) / half));
  const args = mul(reshape(t, [t.shape[0], 1]), cast(constant(freqs, [1, half]), t.dtype));
  return concat([cos(args), sin(args)], -1);
}

/** [B, L, H·D] → [B, H, L, D]. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [bsz, len, c] = x.shape;
  return transpose(reshape(x, [bsz, len, heads, c / heads]), [0, 2, 1, 3]);
}

/** [B, H, L, D] → [B, L, H·D]. */
export function mergeHeads(x: Tensor): Tensor {
  const [bsz, heads, len, d] = x.shape;
  return reshape(transpose(x, [0, 2, 1, 3]), [bsz, len, heads * d]);
}

/** Grouped-query attention: repeats each of the kv heads [B, kvH, S, D] for heads/kvH query heads. */
export function repeatKvHeads(x: Tensor, heads: number): Tensor {
  const [bsz, kvHeads, len, d] = x.shape;
  if (heads === kvHeads) return x;
  if (heads % kvHeads) throw new Error(`${heads} query heads do not share ${kvHeads} kv heads evenly`);
  const rep = heads / kvHeads;
  const e = reshape(x, [bsz, kvHeads, 1, len, d]);
  return reshape(expand(e, [bsz, kvHeads, rep, len, d]), [bsz, heads, len, d]);
}

/** Bytes one chunk of attention scores may take when the chunk size is picked automatically. */
export const ATTENTION_CHUNK_BYTES = 512 * 2 ** 20;

/**
 * Attention of the DiT blocks on [B, H, L, D] (no mask): plain while the [B, H, L, S] scores fit in
 * ATTENTION_CHUNK_BYTES, else memory-efficient, in query chunks of that many bytes of scores
 * (kernels/ops/nn.ts `chunkedAttention`: a 14,040-token Wan clip's 31.5 GB of scores per copy becomes
 * 0.5 GB). `chunk` (a Builder's attentionChunk) overrides: query rows per chunk, 0 for plain.
 */
export function ditAttention(q: Tensor, k: Tensor, v: Tensor, chunk?: number): Tensor {
  const len = q.shape[q.rank - 2];
  if (chunk === undefined) {
    const rowBytes = (q.size / (len * q.shape[q.rank - 1])) * k.shape[k.rank - 2] * 4;
    chunk = rowBytes * len > ATTENTION_CHUNK_BYTES ? Math.max(1, Math.floor(ATTENTION_CHUNK_BYTES / rowBytes)) : 0;
  }
  return scaledDotProductAttention(q, k, v, chunk > 0 ? { chunk } : {});
}
