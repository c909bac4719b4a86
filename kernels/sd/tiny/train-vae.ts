// Stage A of pretraining the tiny model: the AutoencoderKL learns to reconstruct rendered world images
// (all four shapes, the star included, because the VAE stays frozen when the quickstart's LoRA learns
// the star). Loss: L1 + MSE reconstruction of a latent sample, plus a small KL term.
import { input, type HostTensor, type Tensor } from '../../tensor';
import { abs, add, exp, maximum, minimum, mul, square, sub } from '../../ops/elementwise';
import { reduceMean } from '../../ops/shape-and-reduce';
import { Builder } from '../../nn/builder';
import { HostWeights } from '../../nn/weights';
import { compileGraph } from '../../compile';
import type { Runtime } from '../../runtime';
import type { VaeConfig } from '../config';
import { vaeDecode, vaeEncode } from '../vae';
import { TrainableWeights } from './train-params';

export interface VaeLossGraph {
  images: Tensor;
  noise: Tensor;
  params: Record<string, Tensor>;
  loss: Tensor;
  reconstruction: Tensor;
}

/** The VAE's training loss for a batch of `batch` images of `size` pixels. */
export function vaeLossGraph(cfg: VaeConfig, batch: number, size: number, klWeight: number): VaeLossGraph {
  const weights = new TrainableWeights();
  const b = new Builder(weights);
  const down = 2 ** (cfg.blockOutChannels.length - 1);
  const images = input('images', [batch, cfg.inChannels, size, size]);
  const noise = input('noise', [batch, cfg.latentChannels, size / down, size / down]);
  const { mean, logvar } = vaeEncode(b, cfg, images);
  // diffusers clamps the log-variance to [-30, 20] before using it.
  const lv = minimum(maximum(logvar, -30), 20);
  const z = add(mean, mul(exp(mul(lv, 0.5)), noise));
  const recon = vaeDecode(b, cfg, z);
  const diff = sub(recon, images);
  const reconstruction = add(reduceMean(abs(diff)), reduceMean(square(diff)));
  const kl = mul(reduceMean(sub(add(square(mean), exp(lv)), add(lv, 1))), 0.5);
  return { images, noise, params: weights.record(), loss: add(reconstruction, mul(kl, klWeight)), reconstruction };
}

/**
 * Decoder fine-tuning with the encoder frozen (as SD's ft-MSE VAE was made): sharper edges and truer
 * colours without moving the latent space the diffusion model learns on. `vae` holds stage A's weights;
 * the trainable parameters are the decoder's and post_quant_conv's.
 */
export function decoderLossGraph(cfg: VaeConfig, vae: Record<string, HostTensor>, batch: number, size: number): VaeLossGraph {
  const frozen = new Builder(new HostWeights(new Map(Object.entries(vae)), 'vae'));
  const weights = new TrainableWeights();
  const down = 2 ** (cfg.blockOutChannels.length - 1);
  const images = input('images', [batch, cfg.inChannels, size, size]);
  const noise = input('noise', [batch, cfg.latentChannels, size / down, size / down]);
  const { mean, logvar } = vaeEncode(frozen, cfg, images);
  const z = add(mean, mul(exp(mul(minimum(maximum(logvar, -30), 20), 0.5)), noise));
  const recon = vaeDecode(new Builder(weights), cfg, z);
  const diff = sub(recon, images);
  const reconstruction = add(reduceMean(abs(diff)), reduceMean(square(diff)));
  return { images, noise, params: weights.record(), loss: reconstruction, reconstruction };
}

/** Encoder means for a batch of images, with fixed weights: the latents stage B learns on. */
export async function vaeEncodeSession(rt: Runtime, cfg: VaeConfig, weights: Record<string, HostTensor>, batch: number, size: number) {
  const b = new Builder(new HostWeights(new Map(Object.entries(weights)), 'vae'));
  const images = input('images', [batch, cfg.inChannels, size, size]);
  const { mean } = vaeEncode(b, cfg, images);
  return rt.load(compileGraph([images], { mean }, { name: 'vae_encode' }));
}

export async function vaeDecodeSession(rt: Runtime, cfg: VaeConfig, weights: Record<string, HostTensor>, batch: number, latentSize: number) {
  const b = new Builder(new HostWeights(new Map(Object.entries(weights)), 'vae'));
  const latents = input('latents', [batch, cfg.latentChannels, latentSize, latentSize]);
  return rt.load(compileGraph([latents], { images: vaeDecode(b, cfg, latents) }, { name: 'vae_decode' }));
}

/**
 * Folds a per-channel shift and scale into quant_conv / post_quant_conv so that the encoder's means,
 * times the config's scaling factor (0.18215), have zero mean and unit variance per channel — what
 * the diffusion model expects — while decode(encode(x)) stays exactly the same function.
 */
export function normalizeLatents(weights: Record<string, HostTensor>, cfg: VaeConfig, channelMean: number[], channelStd: number[]): Record<string, HostTensor> {
  const c = cfg.latentChannels;
  const k = channelStd.map((s) => 1 / (cfg.scalingFactor * s));
  const qw = (weights['quant_conv.weight'].data as Float32Array).slice();
  const qb = (weights['quant_conv.bias'].data as Float32Array).slice();
  const pw = (weights['post_quant_conv.weight'].data as Float32Array).slice();
  const pb = (weights['post_quant_conv.bias'].data as Float32Array).slice();
  const inQ = 2 * c; // quant_conv: [2c, 2c, 1, 1]; rows 0..c-1 are the means, c..2c-1 the log-variances.
  for (let o = 0; o < c; o++) {
    for (let i = 0; i < inQ; i++) qw[o * inQ + i] *= k[o];
    qb[o] = k[o] * (qb[o] - channelMean[o]);
    qb[c + o] += 2 * Math.log(k[o]);
  }
  // post_quant_conv: [c, c, 1, 1]; it sees z' = k(z − μ), so W' = W/k on the input axis, b' = b + Wμ.
  const pb2 = pb.slice();
  for (let o = 0; o < c; o++) {
    for (let i = 0; i < c; i++) {
      pb2[o] += pw[o * c + i] * channelMean[i];
      pw[o * c + i] /= k[i];
    }
  }
  const out = { ...weights };
  out['quant_conv.weight'] = { ...weights['quant_conv.weight'], data: qw };
  out['quant_conv.bias'] = { ...weights['quant_conv.bias'], data: qb };
  out['post_quant_conv.weight'] = { ...weights['post_quant_conv.weight'], data: pw };
  out['post_quant_conv.bias'] = { ...weights['post_quant_conv.bias'], data: pb2 };
  return out;
}
