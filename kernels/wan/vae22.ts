// The Wan 2.2 video VAE (TI2V-5B's): 48 latent channels, ×16 space, ×4 time. Pixels are first folded
// 2×2 into 12 channels; the encoder (base 160) and decoder (base 256) are Wan 2.1's causal 3D
// convolutions arranged as residual down/up blocks whose shortcut averages (down) or duplicates (up)
// channels across the resampled frames and pixels. Module paths as `wan2.2_vae.safetensors`
// (`encoder.downsamples.0.downsamples.2.resample.1.weight`, `decoder.upsamples.0.upsamples.3.time_conv`).
// Facts from Wan-Video/Wan2.2 wan/modules/vae2_2.py (Encoder3d, Decoder3d, AvgDown3D, DupUp3D, Wan2_2_VAE).
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, mul, silu } from '../ops/elementwise';
import { expand, pad, reduceMean, reshape, slice, transpose } from '../ops/shape-and-reduce';
import type { CausalCache } from './causal-conv';
import {
  attentionBlock, causalEncode, cconv, channelRmsNorm, checkEncodable, decodeByFrames, downsample, residualBlock, upsample,
  type DecodeChunk, type WanVaeConfig, type WanVaeEncoding,
} from './vae';

export const WAN22_VAE: WanVaeConfig = {
  name: 'wan2.2-vae', version: '2.2', base: 160, decoderBase: 256, patch: 2, dimMult: [1, 2, 4, 4], numResBlocks: 2,
  temporalDownsample: [false, true, true], zDim: 48,
  latentMean: [
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891, 0.157, -0.0098, 0.0375, -0.1825,
    -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.123,
    -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.052, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
  ],
  latentStd: [
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.499, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
    0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659, 0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
    0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.06, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
  ],
};

/** The 2.2 architecture at miniature size (tests): 8-wide encoder, 12-wide decoder, 4 latent channels, ×16 space, ×4 time. */
export const WAN22_TINY_VAE: WanVaeConfig = {
  name: 'wan2.2-tiny-vae', version: '2.2', base: 8, decoderBase: 12, patch: 2, dimMult: [1, 2, 2, 2], numResBlocks: 1,
  temporalDownsample: [false, true, true], zDim: 4, latentMean: [0.1, -0.2, 0.05, 0], latentStd: [1.5, 0.8, 1, 1.2],
};

/** [B, 3, F, H, W] → [B, 3·p², F, H/p, W/p]: each p×p block of pixels becomes channels (c, col offset, row offset). */
export function patchifyPixels(x: Tensor, p: number): Tensor {
  const [n, c, f, h, w] = x.shape;
  const y = transpose(reshape(x, [n, c, f, h / p, p, w / p, p]), [0, 1, 6, 4, 2, 3, 5]);
  return reshape(y, [n, c * p * p, f, h / p, w / p]);
}

/** The inverse of `patchifyPixels`. */
export function unpatchifyPixels(x: Tensor, p: number): Tensor {
  const [n, cp, f, h, w] = x.shape;
  const c = cp / (p * p);
  const y = transpose(reshape(x, [n, c, p, p, f, h, w]), [0, 1, 4, 5, 3, 6, 2]);
  return reshape(y, [n, c, f, h * p, w * p]);
}

/**
 * The down block's shortcut: frames padded in front to a multiple of ft, then each (ft, fs, fs) block of
 * every channel laid out as channels and averaged in groups down to `cout` (Wan 2.2's AvgDown3D).
 */
export function averageDown(x: Tensor, cout: number, ft: number, fs: number): Tensor {
  const [n, c, t, h, w] = x.shape;
  const factor = ft * fs * fs;
  if ((c * factor) % cout) throw new Error(`averageDown: ${c}·${factor} channels do not group into ${cout}`);
  const group = (c * factor) / cout;
  if (group === 1 && factor === 1) return x;
  const padT = (ft - (t % ft)) % ft;
  const xp = padT ? pad(x, [0, 0, padT, 0, 0], [0, 0, 0, 0, 0]) : x;
  const tt = (t + padT) / ft;
  const blocks = transpose(reshape(xp, [n, c, tt, ft, h / fs, fs, w / fs, fs]), [0, 1, 3, 5, 7, 2, 4, 6]);
  return reduceMean(reshape(blocks, [n, cout, group, tt, h / fs, w / fs]), 2);
}

/**
 * The up block's shortcut: every channel repeated, the copies laid out as (ft, fs, fs) blocks of frames
 * and pixels (Wan 2.2's DupUp3D); the first ft − 1 frames of the clip's first chunk are dropped, as the
 * main path's first frame is not doubled.
 */
export function duplicateUp(x: Tensor, cout: number, ft: number, fs: number, firstChunk: boolean): Tensor {
  const [n, c, t, h, w] = x.shape;
  const factor = ft * fs * fs;
  const repeats = (cout * factor) / c;
  if (!Number.isInteger(repeats)) throw new Error(`duplicateUp: ${cout}·${factor} channels are not a multiple of ${c}`);
  const repeated = reshape(expand(reshape(x, [n, c, 1, t, h, w]), [n, c, repeats, t, h, w]), [n, cout, ft, fs, fs, t, h, w]);
  const y = reshape(transpose(repeated, [0, 1, 5, 2, 6, 3, 7, 4]), [n, cout, t * ft, h * fs, w * fs]);
  return firstChunk && ft > 1 ? slice(y, [ft - 1], [t * ft], [2]) : y;
}

/** Encoder3d of 2.2 on one chunk (or the whole clip when `cache` is undefined): patchified pixels → [N, 2z, T', h, w]. */
function encoder22(b: Builder, cfg: WanVaeConfig, x: Tensor, cache?: CausalCache): Tensor {
  const dims = [cfg.base, ...cfg.dimMult.map((m) => m * cfg.base)];
  const levels = cfg.dimMult.length;
  let h = cconv(b, 'conv1', x, x.shape[1], dims[0], [3, 3, 3], [1, 1, 1], cache);
  for (let i = 0; i < levels; i++) {
    const block = b.scope(`downsamples.${i}`);
    const temporal = cfg.temporalDownsample[i] ?? false;
    const down = i < levels - 1;
    let m = h, cin = dims[i];
    const cout = dims[i + 1];
    for (let r = 0; r < cfg.numResBlocks; r++) { m = residualBlock(block.scope(`downsamples.${r}`), m, cin, cout, cache); cin = cout; }
    if (down) m = downsample(block.scope(`downsamples.${cfg.numResBlocks}`), m, cout, temporal, cache);
    h = add(m, averageDown(h, cout, temporal ? 2 : 1, down ? 2 : 1));
  }
  const c = dims[levels];
  h = residualBlock(b.scope('middle.0'), h, c, c, cache);
  h = attentionBlock(b.scope('middle.1'), h);
  h = residualBlock(b.scope('middle.2'), h, c, c, cache);
  return cconv(b, 'head.2', silu(channelRmsNorm(b, 'head.0', h)), c, 2 * cfg.zDim, [3, 3, 3], [1, 1, 1], cache);
}

/**
 * Video [N, 3, 1 + 4n, H, W] in [−1, 1] → latent distribution and normalised latents [N, 48, 1 + n, H/16, W/16].
 * `chunked` (default): the first frame, then chunks of 4 carrying the causal caches, as Wan encodes.
 */
export function wan22VaeEncode(b: Builder, cfg: WanVaeConfig, video: Tensor, opts: { chunked?: boolean } = {}): WanVaeEncoding {
  checkEncodable(cfg, video);
  return causalEncode(b, cfg, patchifyPixels(video, cfg.patch ?? 2), encoder22, opts.chunked);
}

/** Decoder3d of 2.2 over latent frames (whole clip, or one frame of a chunked decode) → patchified pixels [N, 12, frames, h·8, w·8]. */
function decoder22(b: Builder, cfg: WanVaeConfig, z: Tensor, chunk?: DecodeChunk): Tensor {
  const levels = cfg.dimMult.length;
  const mult = [...cfg.dimMult].reverse();
  const dims = [mult[0], ...mult].map((m) => m * (cfg.decoderBase ?? cfg.base));
  const temporalUp = [...cfg.temporalDownsample].reverse();
  const cache = chunk?.cache;
  let h = cconv(b, 'conv1', z, cfg.zDim, dims[0], [3, 3, 3], [1, 1, 1], cache);
  h = residualBlock(b.scope('middle.0'), h, dims[0], dims[0], cache);
  h = attentionBlock(b.scope('middle.1'), h);
  h = residualBlock(b.scope('middle.2'), h, dims[0], dims[0], cache);
  for (let i = 0; i < levels; i++) {
    const block = b.scope(`upsamples.${i}`);
    const temporal = temporalUp[i] ?? false;
    const up = i < levels - 1;
    let m = h, cin = dims[i];
    const cout = dims[i + 1];
    for (let r = 0; r < cfg.numResBlocks + 1; r++) { m = residualBlock(block.scope(`upsamples.${r}`), m, cin, cout, cache); cin = cout; }
    if (!up) { h = m; continue; }
    m = upsample(block.scope(`upsamples.${cfg.numResBlocks + 1}`), m, cout, cout, temporal, chunk);
    h = add(m, duplicateUp(h, cout, temporal ? 2 : 1, 2, !chunk || chunk.first));
  }
  const c = dims[levels];
  const p = cfg.patch ?? 2;
  return cconv(b, 'head.2', silu(channelRmsNorm(b, 'head.0', h)), c, 3 * p * p, [3, 3, 3], [1, 1, 1], cache);
}

/**
 * Normalised latents [N, 48, T, h, w] → video [N, 3, 1 + 4(T − 1), 16h, 16w] (about [−1, 1]; not clamped).
 * `chunked`: one latent frame at a time with causal caches, as Wan decodes (the same numbers, tested).
 */
export function wan22VaeDecode(b: Builder, cfg: WanVaeConfig, latents: Tensor, opts: { chunked?: boolean } = {}): Tensor {
  const stat = (v: number[]) => constant(Float32Array.from(v), [1, cfg.zDim, 1, 1, 1]);
  const z = add(mul(latents, stat(cfg.latentStd)), stat(cfg.latentMean));
  const x = cconv(b, 'conv2', z, cfg.zDim, cfg.zDim, [1, 1, 1], [0, 0, 0]);
  return unpatchifyPixels(decodeByFrames(x, !!opts.chunked, (frames, chunk) => decoder22(b.scope('decoder'), cfg, frames, chunk)), cfg.patch ?? 2);
}
