// The Wan video transformer (2.1 and 2.2, every size) as symbolic tensors, with the module paths of
// Wan's own checkpoints and ComfyUI's files (`blocks.0.self_attn.q`, `blocks.0.cross_attn.k_img`,
// `head.head`): the names ai-toolkit's and musubi-tuner's LoRA files use. Latents go in and come out as
// [B, C, frames, rows, cols]; inside, each (1, 2, 2) patch is a token.
//
// A block: LayerNorm (no affine) modulated by shift/scale → self-attention with full-width RMS norm on
// q and k and 3D RoPE → gated residual; LayerNorm with affine → cross-attention to the text (and, for
// 2.1 I2V and FLF2V, to the CLIP image tokens) → plain residual; LayerNorm (no affine) modulated → GELU-tanh FFN →
// gated residual. The six shift/scale/gate vectors are one time projection shared by all blocks plus
// each block's learned 6×dim table.
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { add, gelu, mul, silu } from '../ops/elementwise';
import { linear } from '../ops/nn';
import { concat, reshape, slice, split, transpose } from '../ops/shape-and-reduce';
import { applyRope, ditAttention, layerNormPlain, mergeHeads, rmsNorm, ropeTables, splitHeads, timestepEmbedding, type RopeTables } from '../dit/layers';
import { clipImageTokens, ropeAxes, validateWanConfig, WAN_CLIP_TOKENS, type WanTransformerConfig } from './config';

export interface WanInputs {
  /** Noisy latents [B, C, F, H, W] (C = outChannels; I2V adds `condition`). */
  latents: Tensor;
  /** I2V: first-frame mask (4) and image latent (16) [B, 20, F, H, W], joined to the latents on channels. */
  condition?: Tensor;
  /** Text features [B, Ltxt, textDim] (umT5, zero-padded to 512 in the real pipeline). */
  context: Tensor;
  /**
   * Noise level in [0, 1] (embedded as ·1000): [B]; or per token (2.2 TI2V's clean first frame at 0):
   * [B, tokens], or [B, latent frames] for one level per frame, embedded once per frame and spread over
   * that frame's tokens (the same values, without a [B, tokens, 6·dim] modulation table).
   */
  timesteps: Tensor;
  /** 2.1 I2V: CLIP ViT-H penultimate features [B, 257, 1280]; FLF2V: the first frame's then the last frame's [B, 514, 1280]. */
  clipImage?: Tensor;
  /** RoPE tables for the token grid (`wanRope`). */
  rope: RopeTables;
}

/** Token grid (frames, rows, cols) of a latent [.., F, H, W]. */
export function tokenGrid(cfg: WanTransformerConfig, latentShape: readonly number[]): [number, number, number] {
  const [f, h, w] = latentShape.slice(-3);
  const [pt, ph, pw] = cfg.patch;
  if (f % pt || h % ph || w % pw) throw new Error(`${cfg.name}: latent ${f}×${h}×${w} does not split into ${cfg.patch.join('×')} patches`);
  return [f / pt, h / ph, w / pw];
}

/** Positions (frame, row, col) of the tokens in their order (frames outermost). */
export function wanTokenPositions(grid: readonly [number, number, number]): number[][] {
  const out: number[][] = [];
  for (let f = 0; f < grid[0]; f++) for (let r = 0; r < grid[1]; r++) for (let c = 0; c < grid[2]; c++) out.push([f, r, c]);
  return out;
}

/** [B, C, F, H, W] → tokens [B, L, C·pt·ph·pw], each patch flattened channel-first as the Conv3d weight is. */
export function patchify(x: Tensor, cfg: WanTransformerConfig): Tensor {
  const [b, c] = x.shape;
  const [f, h, w] = tokenGrid(cfg, x.shape);
  const [pt, ph, pw] = cfg.patch;
  const y = transpose(reshape(x, [b, c, f, pt, h, ph, w, pw]), [0, 2, 4, 6, 1, 3, 5, 7]);
  return reshape(y, [b, f * h * w, c * pt * ph * pw]);
}

/** Tokens [B, L, pt·ph·pw·C] (channels innermost, as Wan's head lays them out) → [B, C, F, H, W]. */
export function unpatchify(x: Tensor, cfg: WanTransformerConfig, grid: readonly [number, number, number]): Tensor {
  const [b] = x.shape;
  const [f, h, w] = grid;
  const [pt, ph, pw] = cfg.patch;
  const c = cfg.outChannels;
  const y = transpose(reshape(x, [b, f, h, w, pt, ph, pw, c]), [0, 7, 1, 4, 2, 5, 3, 6]);
  return reshape(y, [b, c, f * pt, h * ph, w * pw]);
}

/** The patch embedding: Wan's Conv3d with kernel = stride = patch is one linear map of each flattened patch. */
function patchEmbedding(b: Builder, cfg: WanTransformerConfig, tokens: Tensor): Tensor {
  const [pt, ph, pw] = cfg.patch;
  const w = b.weights.get(b.path('patch_embedding.weight'), [cfg.dim, cfg.inChannels, pt, ph, pw], { after: tokens });
  return linear(tokens, reshape(w, [cfg.dim, cfg.inChannels * pt * ph * pw]), b.param('patch_embedding.bias', [cfg.dim]));
}

/** (shift, scale, gate) × 2 for a block: the shared projection e0 [B, Lt, 6, dim] plus the block's table. */
function blockModulation(b: Builder, cfg: WanTransformerConfig, e0: Tensor): Tensor[] {
  const table = reshape(b.param('modulation', [1, 6, cfg.dim]), [1, 1, 6, cfg.dim]);
  const [bsz, lt] = e0.shape;
  return split(add(e0, table), 6, 2).map((m) => reshape(m, [bsz, lt, cfg.dim]));
}

/**
 * f(x, ...m) for tokens x [B, L, dim] and modulation vectors m [B, Lt, dim] that hold one row for all
 * tokens (Lt = 1), one per token (Lt = L), or one per latent frame (L = Lt · tokens per frame, frames
 * outermost): then x is viewed as [B, Lt, L/Lt, dim] so each frame's row broadcasts over its own tokens.
 */
export function perTokens(x: Tensor, m: Tensor[], f: (x: Tensor, ...m: Tensor[]) => Tensor): Tensor {
  const [bsz, l, d] = x.shape;
  const lt = m[0].shape[1];
  if (lt === 1 || lt === l) return f(x, ...m);
  if (l % lt) throw new Error(`wan: ${lt} modulation rows do not split ${l} tokens into frames`);
  const y = f(reshape(x, [bsz, lt, l / lt, d]), ...m.map((v) => reshape(v, [bsz, lt, 1, d])));
  return reshape(y, [bsz, l, d]);
}

/** norm(x)·(1 + scale) + shift, shift/scale [B, 1 | frames | L, dim] (see perTokens). */
export const modulated = (normed: Tensor, shift: Tensor, scale: Tensor) =>
  perTokens(normed, [shift, scale], (x, sh, sc) => add(mul(x, add(sc, 1)), sh));

/** x · gate with the gate per token, frame or for all (see perTokens). */
const gated = (x: Tensor, gate: Tensor) => perTokens(x, [gate], mul);

function selfAttention(b: Builder, cfg: WanTransformerConfig, x: Tensor, rope: RopeTables): Tensor {
  const d = cfg.dim;
  const q = rmsNorm(b.linear('q', x, d, d), b.param('norm_q.weight', [d]), cfg.eps);
  const k = rmsNorm(b.linear('k', x, d, d), b.param('norm_k.weight', [d]), cfg.eps);
  const v = b.linear('v', x, d, d);
  const [qh, kh, vh] = [q, k, v].map((t) => splitHeads(t, cfg.numHeads));
  const out = ditAttention(applyRope(qh, rope, 'interleaved'), applyRope(kh, rope, 'interleaved'), vh, b.attentionChunk);
  return b.linear('o', mergeHeads(out), d, d);
}

function crossAttention(b: Builder, cfg: WanTransformerConfig, x: Tensor, context: Tensor, clipContext?: Tensor): Tensor {
  const d = cfg.dim;
  const heads = (t: Tensor) => splitHeads(t, cfg.numHeads);
  const q = heads(rmsNorm(b.linear('q', x, d, d), b.param('norm_q.weight', [d]), cfg.eps));
  const k = heads(rmsNorm(b.linear('k', context, d, d), b.param('norm_k.weight', [d]), cfg.eps));
  let out = ditAttention(q, k, heads(b.linear('v', context, d, d)), b.attentionChunk);
  if (clipContext) {
    // 2.1 I2V attends to the image tokens with their own keys and values and adds the two results.
    const kImg = heads(rmsNorm(b.linear('k_img', clipContext, d, d), b.param('norm_k_img.weight', [d]), cfg.eps));
    out = add(out, ditAttention(q, kImg, heads(b.linear('v_img', clipContext, d, d)), b.attentionChunk));
  }
  return b.linear('o', mergeHeads(out), d, d);
}

/** One Wan attention block (`blocks.N`). `e0`: the shared time projection [B, Lt, 6, dim]. */
export function wanBlock(b: Builder, cfg: WanTransformerConfig, x: Tensor, e0: Tensor, context: Tensor, clipContext: Tensor | undefined, rope: RopeTables): Tensor {
  const d = cfg.dim;
  const [shift1, scale1, gate1, shift2, scale2, gate2] = blockModulation(b, cfg, e0);
  const y = selfAttention(b.scope('self_attn'), cfg, modulated(layerNormPlain(x, cfg.eps), shift1, scale1), rope);
  let h = add(x, gated(y, gate1));
  h = add(h, crossAttention(b.scope('cross_attn'), cfg, b.layerNorm('norm3', h, d, cfg.eps), context, clipContext));
  const ffn = b.scope('ffn');
  const hidden = gelu(ffn.linear('0', modulated(layerNormPlain(h, cfg.eps), shift2, scale2), d, cfg.ffnDim), 'tanh');
  return add(h, gated(ffn.linear('2', hidden, cfg.ffnDim, d), gate2));
}

/** Time embedding e [B, Lt, dim] and the shared block projection e0 [B, Lt, 6, dim] from t in [0, 1] ([B] → Lt = 1, else [B, Lt]). */
export function timeConditioning(b: Builder, cfg: WanTransformerConfig, timesteps: Tensor): { e: Tensor; e0: Tensor } {
  const bsz = timesteps.shape[0];
  const lt = timesteps.rank === 2 ? timesteps.shape[1] : 1;
  const sinusoid = timestepEmbedding(mul(reshape(timesteps, [bsz * lt]), 1000), cfg.freqDim);
  const te = b.scope('time_embedding');
  const e = te.linear('2', silu(te.linear('0', sinusoid, cfg.freqDim, cfg.dim)), cfg.dim, cfg.dim);
  const e0 = b.scope('time_projection').linear('1', silu(e), cfg.dim, 6 * cfg.dim);
  return { e: reshape(e, [bsz, lt, cfg.dim]), e0: reshape(e0, [bsz, lt, 6, cfg.dim]) };
}

/**
 * 2.1 I2V's `img_emb`: LayerNorm → Linear → GELU → Linear → LayerNorm over the CLIP tokens. FLF2V first
 * adds `emb_pos`, one learned vector per token of the two frames, so the branch can tell them apart; given
 * the first frame's tokens only (FLF2V used as I2V), their positions, the first 257 (as ComfyUI does).
 */
function clipImageProjection(b: Builder, cfg: WanTransformerConfig, clip: Tensor): Tensor {
  const p = b.scope('img_emb.proj');
  const c = cfg.clipImageDim;
  let x = clip;
  if (cfg.firstLastFrame) {
    // emb_pos holds a position per token: 257 of the first frame, then 257 of the last.
    const tokens = clipImageTokens(cfg);
    const given = clip.shape[1];
    if ((given !== tokens && given !== WAN_CLIP_TOKENS) || clip.shape[2] !== c) {
      throw new Error(`${cfg.name}: the image branch takes CLIP features [B, ${tokens}, ${c}] (the first and the last frame's ${WAN_CLIP_TOKENS} tokens each) or [B, ${WAN_CLIP_TOKENS}, ${c}] (the first frame's), got [${clip.shape}]`);
    }
    const pos = b.param('img_emb.emb_pos', [1, tokens, c]);
    x = add(clip, given === tokens ? pos : slice(pos, [0], [given], [1]));
  }
  const h = gelu(p.linear('1', p.layerNorm('0', x, c), c, c));
  return p.layerNorm('4', p.linear('3', h, c, cfg.dim), cfg.dim);
}

/** LayerNorm (no affine) modulated by the head's 2×dim table plus the time embedding (per token or frame as `e`), then the output projection. */
function head(b: Builder, cfg: WanTransformerConfig, x: Tensor, e: Tensor): Tensor {
  const [bsz, lt] = e.shape;
  const table = reshape(b.param('head.modulation', [1, 2, cfg.dim]), [1, 1, 2, cfg.dim]);
  const [shift, scale] = split(add(reshape(e, [bsz, lt, 1, cfg.dim]), table), 2, 2).map((m) => reshape(m, [bsz, lt, cfg.dim]));
  const out = cfg.outChannels * cfg.patch.reduce((a, p) => a * p, 1);
  return b.scope('head').linear('head', modulated(layerNormPlain(x, cfg.eps), shift, scale), cfg.dim, out);
}

/** The velocity prediction [B, outChannels, F, H, W]. */
export function wanTransformer(b: Builder, cfg: WanTransformerConfig, x: WanInputs): Tensor {
  validateWanConfig(cfg);
  const latents = x.condition ? concat([x.latents, x.condition], 1) : x.latents;
  if (latents.shape[1] !== cfg.inChannels) throw new Error(`${cfg.name} takes ${cfg.inChannels} input channels, got ${latents.shape[1]}${cfg.inChannels > cfg.outChannels && !x.condition ? ' (I2V needs the mask + image-latent condition)' : ''}`);
  const grid = tokenGrid(cfg, latents.shape);
  const tokens = grid[0] * grid[1] * grid[2];
  if (x.rope.cos.shape[0] !== tokens) throw new Error(`wan: RoPE tables cover ${x.rope.cos.shape[0]} tokens, the latent has ${tokens}`);
  if (x.timesteps.rank === 2 && x.timesteps.shape[1] !== tokens && x.timesteps.shape[1] !== grid[0]) {
    throw new Error(`wan: per-token timesteps [${x.timesteps.shape}] match neither the ${tokens} tokens nor the ${grid[0]} latent frames`);
  }
  if (cfg.clipImageDim && !x.clipImage) throw new Error(`${cfg.name} needs CLIP image features (2.1 I2V's image branch)`);

  let h = patchEmbedding(b, cfg, patchify(latents, cfg));
  const { e, e0 } = timeConditioning(b, cfg, x.timesteps);
  const te = b.scope('text_embedding');
  const context = te.linear('2', gelu(te.linear('0', x.context, cfg.textDim, cfg.dim), 'tanh'), cfg.dim, cfg.dim);
  const clipContext = cfg.clipImageDim ? clipImageProjection(b, cfg, x.clipImage!) : undefined;
  // Each block is a recomputation boundary: with gradient checkpointing only the residual stream between
  // blocks is kept for the backward pass.
  for (let i = 0; i < cfg.numLayers; i++) {
    const prev = h;
    h = b.block(() => wanBlock(b.scope(`blocks.${i}`), cfg, prev, e0, context, clipContext, x.rope));
  }
  return unpatchify(head(b, cfg, h, e), cfg, grid);
}

/** Wan's 3D RoPE tables for a token grid: each head's pairs split over frames/rows/cols as `ropeAxes` (44/42/42). */
export function wanRope(cfg: WanTransformerConfig, grid: readonly [number, number, number]): RopeTables {
  return ropeTables(wanTokenPositions(grid), ropeAxes(cfg), cfg.ropeTheta);
}
