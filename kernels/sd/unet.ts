// UNet2DConditionModel in the SD 1.x layout: timestep embedding, down blocks (resnets + spatial
// transformers, stride-2 downsampling), the mid block, up blocks fed the down path's skips, and the
// output head. Module paths are diffusers' (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`).
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, cos, mul, silu, sin } from '../ops/elementwise';
import { concat, reshape } from '../ops/shape-and-reduce';
import { upBlockCrossAttention, type UNetConfig } from './config';
import { resnetBlock, downsample, upsample } from './resnet';
import { transformer2d, type Transformer2DOptions } from './transformer2d';

/** Sinusoidal embedding of float timesteps [B] → [B, dim] (diffusers' get_timestep_embedding). */
export function timestepEmbedding(t: Tensor, dim: number, flipSinToCos: boolean, freqShift: number): Tensor {
  const half = dim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / (half - freqShift));
  const args = mul(reshape(t, [t.shape[0], 1]), constant(freqs, [1, half]));
  return flipSinToCos ? concat([cos(args), sin(args)], 1) : concat([sin(args), cos(args)], 1);
}

export interface UNetInputs {
  /** Noisy latents [B, inChannels, h, w]. */
  sample: Tensor;
  /** Timesteps [B] as float32 (0…999). */
  timestep: Tensor;
  /** Text encoder hidden states [B, 77, crossAttentionDim]. */
  context: Tensor;
  /** The added-embedding input [B, addEmbeddingInputDim] (SDXL: pooled text + size features); only with `addEmbeddingInputDim`. */
  y?: Tensor;
}

/** The UNet's prediction (noise or v) [B, outChannels, h, w]. */
export function unet(b: Builder, cfg: UNetConfig, { sample, timestep, context, y }: UNetInputs): Tensor {
  const ch = cfg.blockOutChannels;
  const n = ch.length;
  if (sample.shape[2] % 2 ** (n - 1) || sample.shape[3] % 2 ** (n - 1)) {
    throw new Error(`unet: latent size ${sample.shape[2]}×${sample.shape[3]} must be a multiple of ${2 ** (n - 1)}`);
  }
  const tembDim = ch[0] * 4;
  const tproj = timestepEmbedding(timestep, ch[0], cfg.flipSinToCos, cfg.freqShift);
  const te = b.scope('time_embedding');
  let temb = te.linear('linear_2', silu(te.linear('linear_1', tproj, ch[0], tembDim)), tembDim, tembDim);
  if (cfg.addEmbeddingInputDim) {
    if (!y) throw new Error(`unet: this UNet takes an added embedding y [B, ${cfg.addEmbeddingInputDim}] (pooled text + size conditioning)`);
    const ae = b.scope('add_embedding');
    temb = add(temb, ae.linear('linear_2', silu(ae.linear('linear_1', y, cfg.addEmbeddingInputDim, tembDim)), tembDim, tembDim));
  }

  const depth = (level: number) => cfg.transformerDepth?.[level] ?? 1;
  const tr = (level: number, channels: number, blocks = depth(level)): Transformer2DOptions => ({
    heads: cfg.attentionHeadDim ? channels / cfg.attentionHeadDim : cfg.attentionHeads,
    contextDim: cfg.crossAttentionDim, groups: cfg.normGroups, linearProjection: cfg.useLinearProjection, depth: blocks,
  });
  const res = { groups: cfg.normGroups, eps: cfg.normEps, temb, tembChannels: tembDim };
  // Each resnet is a block boundary (recomputed in the backward pass under gradient checkpointing).
  const resnet = (rb: Builder, x: Tensor, outCh: number) => b.block(() => resnetBlock(rb, x, x.shape[1], outCh, res));

  let h = b.conv('conv_in', sample, cfg.inChannels, ch[0], 3, { padding: 1 });
  const skips: Tensor[] = [h];
  for (let i = 0; i < n; i++) {
    const db = b.scope(`down_blocks.${i}`);
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      h = resnet(db.scope(`resnets.${j}`), h, ch[i]);
      if (cfg.downBlockCrossAttention[i]) h = transformer2d(db.scope(`attentions.${j}`), h, context, ch[i], tr(i, ch[i]));
      skips.push(h);
    }
    if (i < n - 1) {
      h = downsample(db.scope('downsamplers.0'), h, ch[i]);
      skips.push(h);
    }
  }

  const mid = b.scope('mid_block');
  h = resnet(mid.scope('resnets.0'), h, ch[n - 1]);
  h = transformer2d(mid.scope('attentions.0'), h, context, ch[n - 1], tr(n - 1, ch[n - 1], cfg.midTransformerDepth ?? depth(n - 1)));
  h = resnet(mid.scope('resnets.1'), h, ch[n - 1]);

  const up = [...ch].reverse();
  const upAttn = upBlockCrossAttention(cfg);
  for (let i = 0; i < n; i++) {
    const ub = b.scope(`up_blocks.${i}`);
    for (let j = 0; j <= cfg.layersPerBlock; j++) {
      h = concat([h, skips.pop()!], 1);
      h = resnet(ub.scope(`resnets.${j}`), h, up[i]);
      if (upAttn[i]) h = transformer2d(ub.scope(`attentions.${j}`), h, context, up[i], tr(n - 1 - i, up[i]));
    }
    if (i < n - 1) h = upsample(ub.scope('upsamplers.0'), h, up[i]);
  }

  h = silu(b.groupNorm('conv_norm_out', h, cfg.normGroups, ch[0], cfg.normEps));
  return b.conv('conv_out', h, ch[0], cfg.outChannels, 3, { padding: 1 });
}
