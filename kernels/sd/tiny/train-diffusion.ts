// Stage B of pretraining the tiny model: UNet and CLIP text encoder learn together, from scratch, on
// the diffusion loss (epsilon prediction on the DDPM scaled-linear schedule) over cached latents of
// world images and their captions. Parameter names are `unet/<diffusers name>` and
// `text_encoder/<transformers name>`.
//
// A text encoder trained from scratch through the UNet's cross-attention alone picks up the prompt
// very slowly (measured: after 900 steps the loss with the right caption, a wrong one and the empty
// one differed by under 1%). So an auxiliary head, used only during pretraining and not saved, asks
// every position from the end-of-text token on to name the caption's shape, colour and background:
// the encoder's states then carry the attributes where the UNet's attention looks first.
import { input, type Tensor } from '../../tensor';
import { add, div, exp, log, mul, square, sub } from '../../ops/elementwise';
import { reduceMean, reduceSum, slice } from '../../ops/shape-and-reduce';
import { linear } from '../../ops/nn';
import { Builder } from '../../nn/builder';
import { COLOR_NAMES, WORLD_SHAPES } from './world';
import type { SdConfig } from '../config';
import { unet } from '../unet';
import { clipTextEncoder } from '../clip-text';
import { TrainableWeights } from './train-params';

export const UNET_PREFIX = 'unet/';
export const TEXT_ENCODER_PREFIX = 'text_encoder/';
/** Trained alongside, never saved: the auxiliary attribute head. */
export const AUX_PREFIX = 'aux/';

/** Attribute groups the auxiliary head names: [offset, count] in its output. */
const GROUPS: [number, number][] = [[0, WORLD_SHAPES.length], [WORLD_SHAPES.length, COLOR_NAMES.length], [WORLD_SHAPES.length + COLOR_NAMES.length, COLOR_NAMES.length]];
export const ATTRIBUTE_COUNT = WORLD_SHAPES.length + 2 * COLOR_NAMES.length;

/**
 * One-hot targets [ATTRIBUTE_COUNT] (shape, colour, background) of a world caption such as
 * "a red circle on a blue background"; undefined for the empty prompt.
 */
export function captionAttributes(caption: string): Float32Array | undefined {
  if (caption === '') return undefined;
  const m = /^an? (\w+) (\w+) on an? (\w+) background$/.exec(caption);
  const shape = m ? WORLD_SHAPES.indexOf(m[2] as never) : -1;
  const color = m ? COLOR_NAMES.indexOf(m[1] as never) : -1;
  const background = m ? COLOR_NAMES.indexOf(m[3] as never) : -1;
  if (shape < 0 || color < 0 || background < 0) throw new Error(`pretrain: '${caption}' is not a caption of the shape world`);
  const out = new Float32Array(ATTRIBUTE_COUNT);
  out[GROUPS[0][0] + shape] = 1;
  out[GROUPS[1][0] + color] = 1;
  out[GROUPS[2][0] + background] = 1;
  return out;
}

/**
 * The auxiliary head's cross-entropy: a linear layer on `hidden` [B, L, D] names shape, colour and
 * background per position; averaged over the positions `attributeMask` [B, L, 1] marks against the
 * one-hot `attributes` [B, 1, ATTRIBUTE_COUNT]. Its weights are `aux.attribute_head.*` (never saved).
 * `groups` ([offset, count] each) lets a world with more attributes (the video world's direction) use it.
 */
export function attributeHeadLoss(aux: TrainableWeights, hidden: Tensor, attributes: Tensor, attributeMask: Tensor, groups: readonly [number, number][] = GROUPS): Tensor {
  const width = hidden.shape[hidden.shape.length - 1];
  const count = Math.max(...groups.map(([at, n]) => at + n));
  const logits = linear(hidden, aux.get('attribute_head.weight', [count, width]), aux.get('attribute_head.bias', [count]));
  let crossEntropy: Tensor | undefined;
  for (const [at, n] of groups) {
    const l = slice(logits, [at], [at + n], [2]);
    const t = slice(attributes, [at], [at + n], [2]);
    const ce = sub(log(reduceSum(exp(l), 2, true)), reduceSum(mul(l, t), 2, true));
    crossEntropy = crossEntropy ? add(crossEntropy, ce) : ce;
  }
  return div(reduceSum(mul(crossEntropy!, attributeMask)), add(reduceSum(attributeMask), 1));
}

export interface DiffusionLossGraph {
  inputs: { latents: Tensor; noise: Tensor; signalScale: Tensor; noiseScale: Tensor; timesteps: Tensor; ids: Tensor; attributeMask: Tensor; attributes: Tensor };
  params: Record<string, Tensor>;
  loss: Tensor;
  diffusionLoss: Tensor;
  attributeLoss: Tensor;
}

/**
 * ε-prediction loss ‖unet(√ᾱ·x0 + √(1−ᾱ)·ε, t, text(ids)) − ε‖² averaged over the batch, plus
 * `attributeWeight` × the auxiliary head's cross-entropy over the positions `attribute_mask` marks.
 */
export function diffusionLossGraph(cfg: SdConfig, batch: number, attributeWeight = 0.05): DiffusionLossGraph {
  const latentSize = cfg.sampleSize / 2 ** (cfg.vae.blockOutChannels.length - 1);
  const shape = [batch, cfg.unet.inChannels, latentSize, latentSize];
  const latents = input('latents', shape);
  const noise = input('noise', shape);
  const signalScale = input('signal_scale', [batch, 1, 1, 1]);
  const noiseScale = input('noise_scale', [batch, 1, 1, 1]);
  const timesteps = input('timesteps', [batch]);
  const ids = input('ids', [batch, cfg.text.maxPositions], 'int64');
  const attributeMask = input('attribute_mask', [batch, cfg.text.maxPositions, 1]);
  const attributes = input('attributes', [batch, 1, ATTRIBUTE_COUNT]);
  const te = new TrainableWeights(TEXT_ENCODER_PREFIX);
  const un = new TrainableWeights(UNET_PREFIX);
  const aux = new TrainableWeights(AUX_PREFIX);
  const { hidden } = clipTextEncoder(new Builder(te), cfg.text, ids);
  const noisy = add(mul(latents, signalScale), mul(noise, noiseScale));
  const prediction = unet(new Builder(un), cfg.unet, { sample: noisy, timestep: timesteps, context: hidden });
  const diffusionLoss = reduceMean(square(sub(prediction, noise)));
  const attributeLoss = attributeHeadLoss(aux, hidden, attributes, attributeMask);
  const loss = add(diffusionLoss, mul(attributeLoss, attributeWeight));
  return {
    inputs: { latents, noise, signalScale, noiseScale, timesteps, ids, attributeMask, attributes },
    params: { ...te.record(), ...un.record(), ...aux.record() }, loss, diffusionLoss, attributeLoss,
  };
}
