// Writes SD 1.x weights as a single-file checkpoint (ldm names, what A1111/ComfyUI load) or as a
// diffusers folder, tensor by tensor from a fill function so a full-size model is never held twice.
import { mkdir, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors';
import type { SdConfig } from './config';
import { componentTensors, COMPONENTS, type Component } from './keys/expected';
import { toSingleFileKey, toSingleFileShape } from './keys/single-file';
import { CONFIG_METADATA_KEY } from './load';

/** Produces the float32 values of one tensor (diffusers name, diffusers shape). */
export type TensorFill = (component: Component, name: string, shape: readonly number[]) => Float32Array | Promise<Float32Array>;

export interface SaveOptions {
  dtype?: 'F32' | 'F16' | 'BF16';
  metadata?: Record<string, string>;
  /** Only these components (default all three). */
  components?: readonly Component[];
}

/** A single `.safetensors` file in the ldm layout; the config goes into the metadata so non-SD-1.5 sizes load back. */
export async function saveSingleFile(path: string, cfg: SdConfig, fill: TensorFill, opts: SaveOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const tensors: [string, TensorToWrite][] = [];
  for (const c of opts.components ?? COMPONENTS) {
    for (const [name, shape] of componentTensors(cfg, c).shapes) {
      tensors.push([toSingleFileKey(cfg, c, name), { dtype, shape: toSingleFileShape(c, name, shape), data: () => fill(c, name, shape) }]);
    }
  }
  await writeSafetensors(path, tensors, { ...opts.metadata, [CONFIG_METADATA_KEY]: JSON.stringify(cfg), 'modelspec.architecture': 'stable-diffusion-v1' });
}

const WEIGHTS_FILE: Record<Component, string> = { unet: 'diffusion_pytorch_model.safetensors', vae: 'diffusion_pytorch_model.safetensors', text_encoder: 'model.safetensors' };

/** The config.json each diffusers part carries, from our config. */
export function diffusersConfigs(cfg: SdConfig): Record<Component | 'scheduler', Record<string, unknown>> {
  const u = cfg.unet;
  return {
    unet: {
      _class_name: 'UNet2DConditionModel', in_channels: u.inChannels, out_channels: u.outChannels,
      block_out_channels: u.blockOutChannels, layers_per_block: u.layersPerBlock, attention_head_dim: u.attentionHeads,
      cross_attention_dim: u.crossAttentionDim, norm_num_groups: u.normGroups, norm_eps: u.normEps,
      down_block_types: u.downBlockCrossAttention.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
      up_block_types: [...u.downBlockCrossAttention].reverse().map((a) => (a ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
      use_linear_projection: u.useLinearProjection, flip_sin_to_cos: u.flipSinToCos, freq_shift: u.freqShift,
      sample_size: cfg.sampleSize / 2 ** (cfg.vae.blockOutChannels.length - 1),
    },
    text_encoder: {
      architectures: ['CLIPTextModel'], vocab_size: cfg.text.vocabSize, hidden_size: cfg.text.hiddenSize,
      intermediate_size: cfg.text.intermediateSize, num_hidden_layers: cfg.text.numLayers, num_attention_heads: cfg.text.numHeads,
      max_position_embeddings: cfg.text.maxPositions, hidden_act: cfg.text.hiddenAct, layer_norm_eps: cfg.text.layerNormEps,
    },
    vae: {
      _class_name: 'AutoencoderKL', in_channels: cfg.vae.inChannels, out_channels: cfg.vae.outChannels,
      block_out_channels: cfg.vae.blockOutChannels, layers_per_block: cfg.vae.layersPerBlock, latent_channels: cfg.vae.latentChannels,
      norm_num_groups: cfg.vae.normGroups, scaling_factor: cfg.vae.scalingFactor, sample_size: cfg.sampleSize,
    },
    scheduler: {
      _class_name: 'DDPMScheduler', num_train_timesteps: cfg.scheduler.numTrainTimesteps, beta_start: cfg.scheduler.betaStart,
      beta_end: cfg.scheduler.betaEnd, beta_schedule: cfg.scheduler.betaSchedule, prediction_type: cfg.scheduler.predictionType,
    },
  };
}

async function writeJson(path: string, value: unknown) {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2));
  await rename(tmp, path);
}

/** A diffusers folder: model_index.json, unet/, vae/, text_encoder/, scheduler/ (tokenizer files are copied by the caller). */
export async function saveDiffusersFolder(folder: string, cfg: SdConfig, fill: TensorFill, opts: SaveOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const configs = diffusersConfigs(cfg);
  await mkdir(folder, { recursive: true });
  for (const c of opts.components ?? COMPONENTS) {
    await mkdir(join(folder, c), { recursive: true });
    const tensors: [string, TensorToWrite][] = [...componentTensors(cfg, c).shapes].map(([name, shape]) => [name, { dtype, shape, data: () => fill(c, name, shape) }]);
    await writeSafetensors(join(folder, c, WEIGHTS_FILE[c]), tensors, opts.metadata);
    await writeJson(join(folder, c, 'config.json'), configs[c]);
  }
  await mkdir(join(folder, 'scheduler'), { recursive: true });
  await writeJson(join(folder, 'scheduler', 'scheduler_config.json'), configs.scheduler);
  await writeJson(join(folder, 'model_index.json'), {
    _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
    text_encoder: ['transformers', 'CLIPTextModel'], tokenizer: ['transformers', 'CLIPTokenizer'], scheduler: ['diffusers', 'DDPMScheduler'],
  });
}
