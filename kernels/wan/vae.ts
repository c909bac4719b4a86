// The Wan 2.1 video VAE (causal 3D convolutions; base 96 channels; ×8 space, ×4 time;
// 16 latent channels normalised per channel by mean/std), with the module paths of
// `wan_2.1_vae.safetensors` (`encoder.downsamples.4.residual.2.weight`, `encoder.middle.1.to_qkv`,
// `conv1`). A clip of 1 + 4n frames becomes 1 + n latent frames: the first frame is encoded on its own,
// then frames in chunks of 4, each causal convolution carrying its last input frames to the next chunk.
// `chunked: false` runs the whole clip at once — the same numbers (tested), one graph, more memory.
// Facts from Wan-Video/Wan2.1 wan/modules/vae.py (Encoder3d, ResidualBlock, Resample, RMS_norm, WanVAE_).
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, mul, rsqrt, silu, sub } from '../ops/elementwise';
import { conv2d, scaledDotProductAttention, upsampleNearest2x } from '../ops/nn';
import { concat, reduceMean, reshape, slice, split, transpose } from '../ops/shape-and-reduce';
import { causalConv3d, conv3d, type CausalCache } from './causal-conv';

export interface WanVaeConfig {
  name: string;
  /** Channels of the first level (`dim`). */
  base: number;
  /** Channel multiplier per level; every level but the last halves the size. */
  dimMult: number[];
  numResBlocks: number;
  /** Per downsampling level: whether it also halves the frames (after the first frame). */
  temporalDownsample: boolean[];
  zDim: number;
  /** Per-channel latent statistics: latents are (μ − mean) / std. */
  latentMean: number[];
  latentStd: number[];
  /** '2.2': Wan 2.2's VAE (kernels/wan/vae22.ts: 2×2 pixel patches in, residual down/up blocks with averaging shortcuts, its own decoder width). Absent: 2.1. */
  version?: '2.1' | '2.2';
  /** 2.2: the decoder's first-level width (256; the encoder's is `base`, 160). */
  decoderBase?: number;
  /** 2.2: pixels per side folded into channels before the encoder (2). */
  patch?: number;
}

/** Wan 2.1's VAE (also Wan 2.2 A14B's). */
export const WAN21_VAE: WanVaeConfig = {
  name: 'wan2.1-vae', base: 96, dimMult: [1, 2, 4, 4], numResBlocks: 2, temporalDownsample: [false, true, true], zDim: 16,
  latentMean: [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921],
  latentStd: [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916],
};

/** The same architecture at miniature size (the video default's VAE): 8 base channels, one resnet per level, 4 latent channels. */
export const WAN_TINY_VAE: WanVaeConfig = {
  name: 'wan-tiny-vae', base: 8, dimMult: [1, 2, 2, 2], numResBlocks: 1, temporalDownsample: [false, true, true], zDim: 4,
  latentMean: [0, 0, 0, 0], latentStd: [1, 1, 1, 1],
};

export const vaeSpatialFactor = (c: WanVaeConfig) => 2 ** (c.dimMult.length - 1) * (c.patch ?? 1);
export const vaeTemporalFactor = (c: WanVaeConfig) => 2 ** c.temporalDownsample.filter(Boolean).length;

/** Frames a clip must have: 1 + (a multiple of the temporal factor), e.g. 33, 81 for Wan. */
export function checkClipFrames(c: WanVaeConfig, frames: number): number {
  const f = vaeTemporalFactor(c);
  if (frames < 1 || (frames - 1) % f) throw new Error(`${c.name} encodes clips of ${f}n+1 frames; got ${frames}`);
  return 1 + (frames - 1) / f;
}

/** Wan's RMS_norm: each position's channel vector scaled to unit RMS, times gamma [C, 1, 1(, 1)]. */
export function channelRmsNorm(b: Builder, name: string, x: Tensor): Tensor {
  const c = x.shape[1];
  const gamma = b.param(`${name}.gamma`, [c, ...x.shape.slice(2).map(() => 1)]);
  return mul(mul(x, rsqrt(add(reduceMean(mul(x, x), 1, true), 1e-12))), gamma);
}

/** A causal conv by module path; caches live under the same path. */
export function cconv(b: Builder, name: string, x: Tensor, cin: number, cout: number, k: [number, number, number], padding: [number, number, number], cache?: CausalCache): Tensor {
  const w = b.weights.get(b.path(`${name}.weight`), [cout, cin, ...k], { after: x });
  return causalConv3d(x, w, b.param(`${name}.bias`, [cout]), padding, cache && { store: cache, key: b.path(name) });
}

export function residualBlock(b: Builder, x: Tensor, cin: number, cout: number, cache?: CausalCache): Tensor {
  let h = cconv(b, 'residual.2', silu(channelRmsNorm(b, 'residual.0', x)), cin, cout, [3, 3, 3], [1, 1, 1], cache);
  h = cconv(b, 'residual.6', silu(channelRmsNorm(b, 'residual.3', h)), cout, cout, [3, 3, 3], [1, 1, 1], cache);
  return add(h, cin === cout ? x : cconv(b, 'shortcut', x, cin, cout, [1, 1, 1], [0, 0, 0]));
}

/** [N, C, T, H, W] ↔ [N·T, C, H, W]: frame-wise 2D layers. */
export const framesToBatch = (x: Tensor) => { const [n, c, t, h, w] = x.shape; return reshape(transpose(x, [0, 2, 1, 3, 4]), [n * t, c, h, w]); };
export const batchToFrames = (x: Tensor, n: number) => { const [nt, c, h, w] = x.shape; return transpose(reshape(x, [n, nt / n, c, h, w]), [0, 2, 1, 3, 4]); };

/** Single-head self-attention over each frame's pixels, residual. */
export function attentionBlock(b: Builder, x: Tensor): Tensor {
  const [n, c] = x.shape;
  const f = framesToBatch(x);
  const [nt, , h, w] = f.shape;
  const qkv = conv2d(channelRmsNorm(b, 'norm', f), b.param('to_qkv.weight', [3 * c, c, 1, 1]), undefined);
  const withBias = add(qkv, reshape(b.param('to_qkv.bias', [3 * c]), [1, 3 * c, 1, 1]));
  const [q, k, v] = split(reshape(withBias, [nt, 3 * c, h * w]), 3, 1).map((t) => transpose(t, [0, 2, 1])); // [NT, HW, C]
  const o = reshape(transpose(scaledDotProductAttention(q, k, v), [0, 2, 1]), [nt, c, h, w]);
  const proj = conv2d(o, b.param('proj.weight', [c, c, 1, 1]), b.param('proj.bias', [c]));
  return add(x, batchToFrames(proj, n));
}

/**
 * Halves rows and columns of every frame (zero pad right/bottom, 3×3 stride 2) and, for a temporal
 * level, the frames after the first: a (3,1,1) stride-2 conv over [previous last frame, chunk].
 */
export function downsample(b: Builder, x: Tensor, c: number, temporal: boolean, cache?: CausalCache): Tensor {
  const n = x.shape[0];
  const s = conv2d(framesToBatch(x), b.param('resample.1.weight', [c, c, 3, 3]), b.param('resample.1.bias', [c]), { stride: 2, padding: [0, 0, 1, 1] });
  const y = batchToFrames(s, n);
  if (!temporal) return y;
  const tw = b.param('time_conv.weight', [c, c, 3, 1, 1]);
  const tb = b.param('time_conv.bias', [c]);
  const key = b.path('time_conv');
  if (!cache) {
    // Whole clip: the first frame passes, then windows over all frames with stride 2.
    const t = y.shape[2];
    return t === 1 ? y : concat([slice(y, [0], [1], [2]), conv3d(y, tw, tb, { timeStride: 2 })], 2);
  }
  const prev = cache.get(key);
  const t = y.shape[2];
  cache.set(key, slice(y, [t - 1], [t], [2]));
  return prev ? conv3d(concat([prev, y], 2), tw, tb, { timeStride: 2 }) : y;
}

/** Encoder3d on one chunk (or the whole clip when `cache` is undefined): [N, 3, T, H, W] → [N, 2z, T', H/8, W/8]. */
function encoder3d(b: Builder, cfg: WanVaeConfig, x: Tensor, cache?: CausalCache): Tensor {
  const dims = [cfg.base, ...cfg.dimMult.map((m) => m * cfg.base)];
  let h = cconv(b, 'conv1', x, 3, dims[0], [3, 3, 3], [1, 1, 1], cache);
  let index = 0;
  for (let level = 0; level < cfg.dimMult.length; level++) {
    let cin = dims[level];
    const cout = dims[level + 1];
    for (let r = 0; r < cfg.numResBlocks; r++) { h = residualBlock(b.scope(`downsamples.${index++}`), h, cin, cout, cache); cin = cout; }
    if (level < cfg.dimMult.length - 1) h = downsample(b.scope(`downsamples.${index++}`), h, cout, cfg.temporalDownsample[level], cache);
  }
  const c = dims[dims.length - 1];
  h = residualBlock(b.scope('middle.0'), h, c, c, cache);
  h = attentionBlock(b.scope('middle.1'), h);
  h = residualBlock(b.scope('middle.2'), h, c, c, cache);
  return cconv(b, 'head.2', silu(channelRmsNorm(b, 'head.0', h)), c, 2 * cfg.zDim, [3, 3, 3], [1, 1, 1], cache);
}

export interface WanVaeEncoding { mean: Tensor; logVar: Tensor; latents: Tensor }

/**
 * Video [N, 3, 1 + 4n, H, W] in [−1, 1] → latent distribution and normalised latents (the mean)
 * [N, z, 1 + n, H/8, W/8]. `chunked` (default): first frame, then chunks of 4, as Wan encodes.
 */
export function wanVaeEncode(b: Builder, cfg: WanVaeConfig, video: Tensor, opts: { chunked?: boolean } = {}): WanVaeEncoding {
  checkEncodable(cfg, video);
  return causalEncode(b, cfg, video, encoder3d, opts.chunked);
}

/** The clip's frame count and size fit the VAE (4n + 1 frames, sides a multiple of its spatial factor). */
export function checkEncodable(cfg: WanVaeConfig, video: Tensor): void {
  checkClipFrames(cfg, video.shape[2]);
  const s = vaeSpatialFactor(cfg);
  if (video.shape[3] % s || video.shape[4] % s) throw new Error(`${cfg.name}: frame size ${video.shape[3]}×${video.shape[4]} is not a multiple of ${s}`);
}

/**
 * Both Wan VAEs' encode around their encoder: the whole clip at once, or (`chunked`, the default) the
 * first frame then chunks of the temporal factor carrying the causal caches, as Wan encodes; then the
 * moments conv and the latents normalised by the per-channel mean/std.
 */
export function causalEncode(
  b: Builder, cfg: WanVaeConfig, x: Tensor,
  encoder: (b: Builder, cfg: WanVaeConfig, x: Tensor, cache?: CausalCache) => Tensor, chunked = true,
): WanVaeEncoding {
  const enc = b.scope('encoder');
  let out: Tensor;
  if (!chunked) out = encoder(enc, cfg, x);
  else {
    const frames = x.shape[2];
    const cache: CausalCache = new Map();
    const tf = vaeTemporalFactor(cfg);
    const parts = [encoder(enc, cfg, slice(x, [0], [1], [2]), cache)];
    for (let start = 1; start < frames; start += tf) parts.push(encoder(enc, cfg, slice(x, [start], [start + tf], [2]), cache));
    out = parts.length === 1 ? parts[0] : concat(parts, 2);
  }
  const moments = cconv(b, 'conv1', out, 2 * cfg.zDim, 2 * cfg.zDim, [1, 1, 1], [0, 0, 0]);
  const [mean, logVar] = split(moments, 2, 1);
  const stat = (v: number[]) => constant(Float32Array.from(v), [1, cfg.zDim, 1, 1, 1]);
  const latents = mul(sub(mean, stat(cfg.latentMean)), stat(cfg.latentStd.map((v) => 1 / v)));
  return { mean, logVar, latents };
}

/** Decoding one latent frame at a time (as Wan does): the causal caches, and whether this is the first frame. */
export interface DecodeChunk { cache: CausalCache; first: boolean }

/**
 * Doubles rows and columns of every frame (nearest, then a 3×3 conv to `cout` channels: half of c in
 * 2.1, c in 2.2) and, for a temporal level, the frames after the first: a causal (3,1,1) conv to twice
 * the channels whose halves become the even and odd frames. Wan decodes one latent frame at a time:
 * the first passes, and the time conv's cache starts with zeros after it — so over a whole clip this is
 * a causal conv over frames 1… alone, and chunk by chunk the same conv carrying its last frames.
 */
export function upsample(b: Builder, x: Tensor, c: number, cout: number, temporal: boolean, chunk?: DecodeChunk): Tensor {
  const n = x.shape[0];
  let y = x;
  const t = x.shape[2];
  const doubleFrames = (frames: Tensor) => {
    const doubled = cconv(b, 'time_conv', frames, c, 2 * c, [3, 1, 1], [1, 0, 0], chunk?.cache); // [N, 2C, T, H, W]
    const [, , tr, h, w] = doubled.shape;
    return reshape(transpose(reshape(doubled, [n, 2, c, tr, h, w]), [0, 2, 3, 1, 4, 5]), [n, c, 2 * tr, h, w]);
  };
  if (temporal && chunk) y = chunk.first ? x : doubleFrames(x);
  else if (temporal && t > 1) y = concat([slice(x, [0], [1], [2]), doubleFrames(slice(x, [1], [t], [2]))], 2);
  const s = conv2d(upsampleNearest2x(framesToBatch(y)), b.param('resample.1.weight', [cout, c, 3, 3]), b.param('resample.1.bias', [cout]), { padding: 1 });
  return batchToFrames(s, n);
}

/** Decoder3d over latent frames [N, z, T, h, w] (a whole clip, or one frame of a chunked decode) → [N, 3, frames, 8h, 8w]. */
function decoder3d(b: Builder, cfg: WanVaeConfig, z: Tensor, chunk?: DecodeChunk): Tensor {
  const mult = [...cfg.dimMult].reverse();
  const dims = [mult[0], ...mult].map((m) => m * cfg.base);
  const temporalUp = [...cfg.temporalDownsample].reverse();
  const cache = chunk?.cache;
  let h = cconv(b, 'conv1', z, cfg.zDim, dims[0], [3, 3, 3], [1, 1, 1], cache);
  h = residualBlock(b.scope('middle.0'), h, dims[0], dims[0], cache);
  h = attentionBlock(b.scope('middle.1'), h);
  h = residualBlock(b.scope('middle.2'), h, dims[0], dims[0], cache);
  let index = 0;
  for (let level = 0; level < cfg.dimMult.length; level++) {
    // After a resample the channels are halved (its conv goes to c/2).
    let cin = level > 0 ? dims[level] / 2 : dims[level];
    const cout = dims[level + 1];
    for (let r = 0; r < cfg.numResBlocks + 1; r++) { h = residualBlock(b.scope(`upsamples.${index++}`), h, cin, cout, cache); cin = cout; }
    if (level < cfg.dimMult.length - 1) h = upsample(b.scope(`upsamples.${index++}`), h, cout, cout / 2, temporalUp[level], chunk);
  }
  const c = dims[dims.length - 1];
  return cconv(b, 'head.2', silu(channelRmsNorm(b, 'head.0', h)), c, 3, [3, 3, 3], [1, 1, 1], cache);
}

/**
 * Runs `decode` on latent frame 0, then on each later frame with the causal caches carried over (Wan's
 * decode loop), and joins the frames; `decode` without a chunk runs the whole clip at once.
 */
export function decodeByFrames(z: Tensor, chunked: boolean, decode: (frames: Tensor, chunk?: DecodeChunk) => Tensor): Tensor {
  if (!chunked) return decode(z);
  const cache: CausalCache = new Map();
  const parts = Array.from({ length: z.shape[2] }, (_, i) => decode(slice(z, [i], [i + 1], [2]), { cache, first: i === 0 }));
  return parts.length === 1 ? parts[0] : concat(parts, 2);
}

/**
 * Normalised latents [N, z, T, h, w] → video [N, 3, 1 + 4(T − 1), 8h, 8w] (about [−1, 1]; not clamped).
 * `chunked`: one latent frame at a time with causal caches, as Wan decodes — the same numbers (tested)
 * in T copies of the decoder graph; the default whole-clip pass is one graph.
 */
export function wanVaeDecode(b: Builder, cfg: WanVaeConfig, latents: Tensor, opts: { chunked?: boolean } = {}): Tensor {
  const stat = (v: number[]) => constant(Float32Array.from(v), [1, cfg.zDim, 1, 1, 1]);
  const z = add(mul(latents, stat(cfg.latentStd)), stat(cfg.latentMean));
  const x = cconv(b, 'conv2', z, cfg.zDim, cfg.zDim, [1, 1, 1], [0, 0, 0]);
  return decodeByFrames(x, !!opts.chunked, (frames, chunk) => decoder3d(b.scope('decoder'), cfg, frames, chunk));
}
