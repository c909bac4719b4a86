// Stage B of pretraining the tiny model: UNet and CLIP text encoder learn together, from scratch, on
// the diffusion loss (epsilon prediction on the DDPM scaled-linear schedule) over cached latents of
// world images and their captions. Parameter names are `unet/<diffusers name>` and
// `text_encoder/<transformers name>`.
import { input, type Tensor } from '../../tensor';
import { add, mul, square, sub } from '../../ops/elementwise';
import { reduceMean } from '../../ops/shape-and-reduce';
import { Builder } from '../../nn/builder';
import type { SdConfig } from '../config';
import { unet } from '../unet';
import { clipTextEncoder } from '../clip-text';
import { TrainableWeights } from './train-params';

export const UNET_PREFIX = 'unet/';
export const TEXT_ENCODER_PREFIX = 'text_encoder/';

export interface DiffusionLossGraph {
  inputs: { latents: Tensor; noise: Tensor; signalScale: Tensor; noiseScale: Tensor; timesteps: Tensor; ids: Tensor };
  params: Record<string, Tensor>;
  loss: Tensor;
}

/** ε-prediction loss: ‖unet(√ᾱ·x0 + √(1−ᾱ)·ε, t, text(ids)) − ε‖² averaged over the batch. */
export function diffusionLossGraph(cfg: SdConfig, batch: number): DiffusionLossGraph {
  const latentSize = cfg.sampleSize / 2 ** (cfg.vae.blockOutChannels.length - 1);
  const shape = [batch, cfg.unet.inChannels, latentSize, latentSize];
  const latents = input('latents', shape);
  const noise = input('noise', shape);
  const signalScale = input('signal_scale', [batch, 1, 1, 1]);
  const noiseScale = input('noise_scale', [batch, 1, 1, 1]);
  const timesteps = input('timesteps', [batch]);
  const ids = input('ids', [batch, cfg.text.maxPositions], 'int64');
  const te = new TrainableWeights(TEXT_ENCODER_PREFIX);
  const un = new TrainableWeights(UNET_PREFIX);
  const { hidden } = clipTextEncoder(new Builder(te), cfg.text, ids);
  const noisy = add(mul(latents, signalScale), mul(noise, noiseScale));
  const prediction = unet(new Builder(un), cfg.unet, { sample: noisy, timestep: timesteps, context: hidden });
  const loss = reduceMean(square(sub(prediction, noise)));
  return { inputs: { latents, noise, signalScale, noiseScale, timesteps, ids }, params: { ...te.record(), ...un.record() }, loss };
}
