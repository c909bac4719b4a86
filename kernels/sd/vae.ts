// AutoencoderKL (the SD VAE): the encoder maps images in [-1, 1] to a diagonal Gaussian over latents
// (mean, logvar, after quant_conv); the decoder maps latents (after post_quant_conv) back to images.
// Latents seen by the UNet are the sample times `scalingFactor` (0.18215 for SD 1.x).
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { add, silu } from '../ops/elementwise';
import { reshape, split, transpose } from '../ops/shape-and-reduce';
import type { VaeConfig } from './config';
import { attention } from './attention';
import { resnetBlock, downsample, upsample } from './resnet';

const VAE_EPS = 1e-6;

/** The mid block's single-head self-attention over all pixels, with GroupNorm and a residual. */
export function vaeAttention(b: Builder, x: Tensor, ch: number, groups: number): Tensor {
  const [bsz, , hgt, wid] = x.shape;
  const tokens = transpose(reshape(b.groupNorm('group_norm', x, groups, ch, VAE_EPS), [bsz, ch, hgt * wid]), [0, 2, 1]);
  const y = attention(b, tokens, undefined, ch, { heads: 1, qkvBias: true });
  return add(x, reshape(transpose(y, [0, 2, 1]), [bsz, ch, hgt, wid]));
}

function midBlock(b: Builder, x: Tensor, ch: number, groups: number): Tensor {
  const o = { groups, eps: VAE_EPS };
  let h = resnetBlock(b.scope('resnets.0'), x, ch, ch, o);
  h = vaeAttention(b.scope('attentions.0'), h, ch, groups);
  return resnetBlock(b.scope('resnets.1'), h, ch, ch, o);
}

/** Images [B, 3, H, W] in [-1, 1] → the latent distribution's mean and log-variance [B, latent, H/s, W/s]. */
export function vaeEncode(b: Builder, cfg: VaeConfig, images: Tensor): { mean: Tensor; logvar: Tensor } {
  const ch = cfg.blockOutChannels;
  const n = ch.length;
  const enc = b.scope('encoder');
  const o = { groups: cfg.normGroups, eps: VAE_EPS };
  let h = enc.conv('conv_in', images, cfg.inChannels, ch[0], 3, { padding: 1 });
  for (let i = 0; i < n; i++) {
    const db = enc.scope(`down_blocks.${i}`);
    for (let j = 0; j < cfg.layersPerBlock; j++) h = resnetBlock(db.scope(`resnets.${j}`), h, h.shape[1], ch[i], o);
    if (i < n - 1) h = downsample(db.scope('downsamplers.0'), h, ch[i], true);
  }
  h = midBlock(enc.scope('mid_block'), h, ch[n - 1], cfg.normGroups);
  h = silu(enc.groupNorm('conv_norm_out', h, cfg.normGroups, ch[n - 1], VAE_EPS));
  h = enc.conv('conv_out', h, ch[n - 1], 2 * cfg.latentChannels, 3, { padding: 1 });
  const moments = b.conv('quant_conv', h, 2 * cfg.latentChannels, 2 * cfg.latentChannels, 1);
  const [mean, logvar] = split(moments, 2, 1);
  return { mean, logvar };
}

/** Latents [B, latent, h, w] (unscaled: divide UNet latents by scalingFactor first) → images in about [-1, 1]. */
export function vaeDecode(b: Builder, cfg: VaeConfig, latents: Tensor): Tensor {
  const ch = [...cfg.blockOutChannels].reverse();
  const n = ch.length;
  const dec = b.scope('decoder');
  const z = b.conv('post_quant_conv', latents, cfg.latentChannels, cfg.latentChannels, 1);
  let h = dec.conv('conv_in', z, cfg.latentChannels, ch[0], 3, { padding: 1 });
  h = midBlock(dec.scope('mid_block'), h, ch[0], cfg.normGroups);
  const o = { groups: cfg.normGroups, eps: VAE_EPS };
  for (let i = 0; i < n; i++) {
    const ub = dec.scope(`up_blocks.${i}`);
    for (let j = 0; j <= cfg.layersPerBlock; j++) h = resnetBlock(ub.scope(`resnets.${j}`), h, h.shape[1], ch[i], o);
    if (i < n - 1) h = upsample(ub.scope('upsamplers.0'), h, ch[i]);
  }
  h = silu(dec.groupNorm('conv_norm_out', h, cfg.normGroups, ch[n - 1], VAE_EPS));
  return dec.conv('conv_out', h, ch[n - 1], cfg.outChannels, 3, { padding: 1 });
}
