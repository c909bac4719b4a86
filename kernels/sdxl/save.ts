// Writes SDXL weights with the real key names — a single file in the SGM layout (what A1111/Forge,
// ComfyUI and kohya read; bigG's q/k/v fused into in_proj, its projection stored transposed, plus
// logit_scale and position_ids as sd_xl_base_1.0 has them) or a diffusers folder — tensor by tensor
// from a fill function, so tests and benchmarks make checkpoints of any size without holding them twice.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors';
import type { SdxlConfig } from './config';
import { sdxlComponentTensors, SDXL_COMPONENTS, SdxlKeyMap, type SdxlComponent } from './keys';

/** float32 values of one tensor, by diffusers component, name and shape. */
export type SdxlTensorFill = (component: SdxlComponent, name: string, shape: readonly number[]) => Float32Array | Promise<Float32Array>;

/** safetensors metadata key under which loragraph stores a config that is not SDXL 1.0 base's. */
export const SDXL_CONFIG_METADATA_KEY = 'loragraph.sdxl_config';

export interface SdxlSaveOptions {
  dtype?: 'F32' | 'F16' | 'BF16';
  metadata?: Record<string, string>;
  /** Only these parts (default all four). */
  components?: readonly SdxlComponent[];
}

function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** One `.safetensors` file in the SGM layout; the config goes into the metadata so other sizes load back. */
export async function saveSdxlSingleFile(path: string, cfg: SdxlConfig, fill: SdxlTensorFill, opts: SdxlSaveOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const wanted = new Set(opts.components ?? SDXL_COMPONENTS);
  const map = new SdxlKeyMap(cfg);
  const tensors: [string, TensorToWrite][] = [];
  for (const key of map.singleFileKeys()) {
    const parts = map.toDiffusers(key)!;
    if (!wanted.has(parts[0].component)) continue;
    const shape = map.singleFileShape(key)!;
    const slot = map.toSingleFile(parts[0].component, parts[0].name)!;
    tensors.push([key, {
      dtype, shape,
      data: async () => {
        const values = await Promise.all(parts.map((p) => fill(p.component, p.name, p.shape)));
        if (values.length === 3) {
          const out = new Float32Array(values[0].length * 3);
          values.forEach((v, i) => out.set(v, i * v.length));
          return out;
        }
        return slot.transpose ? transpose2d(values[0], parts[0].shape[0], parts[0].shape[1]) : values[0];
      },
    }]);
  }
  if (wanted.has('text_encoder_2')) tensors.push(['conditioner.embedders.1.model.logit_scale', { dtype, shape: [], data: Float32Array.of(Math.log(100)) }]);
  if (wanted.has('text_encoder')) {
    const n = cfg.textL.maxPositions;
    tensors.push(['conditioner.embedders.0.transformer.text_model.embeddings.position_ids', { dtype: 'I64', shape: [1, n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)) }]);
  }
  await writeSafetensors(path, tensors, { ...opts.metadata, [SDXL_CONFIG_METADATA_KEY]: JSON.stringify(cfg), 'modelspec.architecture': 'stable-diffusion-xl-v1-base' });
}

const WEIGHTS_FILE: Record<SdxlComponent, string> = {
  unet: 'diffusion_pytorch_model.safetensors', vae: 'diffusion_pytorch_model.safetensors',
  text_encoder: 'model.safetensors', text_encoder_2: 'model.safetensors',
};

/** The config.json of each diffusers part (field names as diffusers and transformers write them). */
export function sdxlDiffusersConfigs(cfg: SdxlConfig): Record<SdxlComponent | 'scheduler', Record<string, unknown>> {
  const u = cfg.unet;
  const headDim = u.attentionHeadDim ?? 64;
  const text = (t: SdxlConfig['textL'], cls: string, extra: Record<string, unknown> = {}) => ({
    architectures: [cls], vocab_size: t.vocabSize, hidden_size: t.hiddenSize, intermediate_size: t.intermediateSize,
    num_hidden_layers: t.numLayers, num_attention_heads: t.numHeads, max_position_embeddings: t.maxPositions,
    hidden_act: t.hiddenAct, layer_norm_eps: t.layerNormEps, ...extra,
  });
  return {
    unet: {
      _class_name: 'UNet2DConditionModel', in_channels: u.inChannels, out_channels: u.outChannels,
      block_out_channels: u.blockOutChannels, layers_per_block: u.layersPerBlock,
      attention_head_dim: u.blockOutChannels.map((c) => c / headDim),
      transformer_layers_per_block: u.transformerDepth ?? u.blockOutChannels.map(() => 1),
      cross_attention_dim: u.crossAttentionDim, norm_num_groups: u.normGroups, norm_eps: u.normEps,
      down_block_types: u.downBlockCrossAttention.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
      up_block_types: [...u.downBlockCrossAttention].reverse().map((a) => (a ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
      use_linear_projection: u.useLinearProjection, flip_sin_to_cos: u.flipSinToCos, freq_shift: u.freqShift,
      addition_embed_type: 'text_time', addition_time_embed_dim: cfg.sizeEmbeddingDim,
      projection_class_embeddings_input_dim: u.addEmbeddingInputDim,
      sample_size: cfg.sampleSize / 2 ** (cfg.vae.blockOutChannels.length - 1),
    },
    text_encoder: text(cfg.textL, 'CLIPTextModel'),
    text_encoder_2: text(cfg.textG, 'CLIPTextModelWithProjection', { projection_dim: cfg.textG.projectionDim }),
    vae: {
      _class_name: 'AutoencoderKL', in_channels: cfg.vae.inChannels, out_channels: cfg.vae.outChannels,
      block_out_channels: cfg.vae.blockOutChannels, layers_per_block: cfg.vae.layersPerBlock, latent_channels: cfg.vae.latentChannels,
      norm_num_groups: cfg.vae.normGroups, scaling_factor: cfg.vae.scalingFactor, force_upcast: cfg.vae.forceUpcast, sample_size: cfg.sampleSize,
    },
    scheduler: {
      _class_name: 'EulerDiscreteScheduler', num_train_timesteps: cfg.scheduler.numTrainTimesteps, beta_start: cfg.scheduler.betaStart,
      beta_end: cfg.scheduler.betaEnd, beta_schedule: cfg.scheduler.betaSchedule, prediction_type: cfg.scheduler.predictionType,
      timestep_spacing: 'leading', steps_offset: 1,
    },
  };
}

async function writeJson(path: string, value: unknown) {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2));
  await rename(tmp, path);
}

/** A diffusers folder: model_index.json, unet/, text_encoder/, text_encoder_2/, vae/, scheduler/ (tokenizers are copied by the caller). */
export async function saveSdxlDiffusersFolder(folder: string, cfg: SdxlConfig, fill: SdxlTensorFill, opts: SdxlSaveOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const configs = sdxlDiffusersConfigs(cfg);
  await mkdir(folder, { recursive: true });
  for (const c of opts.components ?? SDXL_COMPONENTS) {
    await mkdir(join(folder, c), { recursive: true });
    const tensors: [string, TensorToWrite][] = [...sdxlComponentTensors(cfg, c).shapes].map(([name, shape]) => [name, { dtype, shape, data: () => fill(c, name, shape) }]);
    await writeSafetensors(join(folder, c, WEIGHTS_FILE[c]), tensors, opts.metadata);
    await writeJson(join(folder, c, 'config.json'), configs[c]);
  }
  await mkdir(join(folder, 'scheduler'), { recursive: true });
  await writeJson(join(folder, 'scheduler', 'scheduler_config.json'), configs.scheduler);
  await writeJson(join(folder, 'model_index.json'), {
    _class_name: 'StableDiffusionXLPipeline', unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
    text_encoder: ['transformers', 'CLIPTextModel'], text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'],
    tokenizer: ['transformers', 'CLIPTokenizer'], tokenizer_2: ['transformers', 'CLIPTokenizer'], scheduler: ['diffusers', 'EulerDiscreteScheduler'],
  });
}

/**
 * Seeded uniform noise of standard deviation `std` per tensor (norm scales 1): a stand-in for trained
 * weights in tests and benchmarks (the tiny checkpoints the CLI tests train, the random full-size UNet
 * of bench:sdxl). Each tensor's values depend only on the seed and its name, not on writing order.
 */
export function seededSdxlFill(seed = 1, std = 0.02): SdxlTensorFill {
  const half = std * Math.sqrt(3);
  return (component, name, shape) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/norm.*\.weight$/.test(name)) return out.fill(1);
    let s = seed >>> 0;
    for (const ch of `${component}/${name}`) s = Math.imul(s ^ ch.charCodeAt(0), 16777619) >>> 0;
    const step = (2 * half) / 2 ** 32;
    for (let i = 0; i < out.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s * step - half; }
    return out;
  };
}
