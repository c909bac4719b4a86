// SDXL tensor names in both checkpoint layouts, recorded from the model code without allocating a
// weight, and the map between them:
//   diffusers folder   unet/ text_encoder/ text_encoder_2/ vae/  (transformers names for the text towers)
//   single file (SGM)  model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight
//                      conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight
//                      conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight  (q|k|v fused)
//                      conditioner.embedders.1.model.text_projection  (stored [in, out]: transposed)
//                      first_stage_model.encoder.down.0.block.0.conv1.weight
// A diffusers tensor is one single-file tensor, a third of one (the fused in_proj rows q, k, v), or its
// transpose (text_projection).
import { Builder, type ModuleInfo } from '../nn/builder';
import { ShapeRecorder } from '../nn/weights';
import { input } from '../tensor';
import { unetToLdm, vaeToLdm } from '../sd/keys/single-file';
import { vaeDecode, vaeEncode } from '../sd/vae';
import type { SdxlConfig } from './config';
import { SIZE_CONDITIONING_COUNT } from './config';
import { sdxlUnet } from './unet';
import { bigGText, clipLPenultimate } from './text';

/** The four parts, named as diffusers' folders are. */
export type SdxlComponent = 'unet' | 'text_encoder' | 'text_encoder_2' | 'vae';
export const SDXL_COMPONENTS: readonly SdxlComponent[] = ['unet', 'text_encoder', 'text_encoder_2', 'vae'];

export interface SdxlComponentTensors {
  /** diffusers name → shape, in the order the model asks for them. */
  shapes: Map<string, number[]>;
  /** Every linear/conv module the builder made (adapter targets). */
  modules: ModuleInfo[];
}

/** Builds one part symbolically (text towers complete, every layer and norm) and records what it asks for. */
export function sdxlComponentTensors(cfg: SdxlConfig, component: SdxlComponent): SdxlComponentTensors {
  const rec = new ShapeRecorder();
  const b = new Builder(rec);
  const L = cfg.textL.maxPositions;
  if (component === 'unet') {
    const down = 2 ** (cfg.unet.blockOutChannels.length - 1);
    sdxlUnet(b, cfg, {
      sample: input('sample', [1, cfg.unet.inChannels, down, down]),
      timestep: input('timestep', [1]),
      context: input('context', [1, L, cfg.unet.crossAttentionDim]),
      pooled: input('pooled', [1, cfg.textG.projectionDim]),
      timeIds: input('time_ids', [1, SIZE_CONDITIONING_COUNT]),
    });
  } else if (component === 'text_encoder') {
    clipLPenultimate(b, cfg.textL, input('ids', [1, L], 'int64'), { complete: true });
  } else if (component === 'text_encoder_2') {
    bigGText(b, cfg.textG, input('ids', [1, L], 'int64'), input('eos', [1], 'int64'));
  } else {
    const px = 2 ** (cfg.vae.blockOutChannels.length - 1);
    vaeEncode(b, cfg.vae, input('images', [1, cfg.vae.inChannels, px, px]));
    vaeDecode(b, cfg.vae, input('latents', [1, cfg.vae.latentChannels, 1, 1]));
  }
  return { shapes: rec.shapes, modules: b.modules };
}

export const SDXL_SINGLE_FILE_PREFIX: Record<SdxlComponent, string> = {
  unet: 'model.diffusion_model.',
  text_encoder: 'conditioner.embedders.0.transformer.',
  text_encoder_2: 'conditioner.embedders.1.model.',
  vae: 'first_stage_model.',
};

/** Where a diffusers tensor lives in a single file. */
export interface SingleFileSlot {
  key: string;
  /** Rows `part`·n … (part+1)·n of the fused q|k|v tensor (n = the diffusers tensor's first dimension). */
  part?: 0 | 1 | 2;
  /** Stored as the transpose ([in, out]): OpenCLIP multiplies x @ text_projection. */
  transpose?: boolean;
  /** Stored with trailing 1×1 (the VAE attention projections are 1×1 convs in ldm). */
  conv1x1?: boolean;
}

const OPENCLIP_LAYER: Record<string, string> = {
  layer_norm1: 'ln_1', layer_norm2: 'ln_2', 'mlp.fc1': 'mlp.c_fc', 'mlp.fc2': 'mlp.c_proj', 'self_attn.out_proj': 'attn.out_proj',
};
const QKV_PART = { q_proj: 0, k_proj: 1, v_proj: 2 } as const;

/** bigG: transformers name → OpenCLIP slot (without the prefix). */
function openClipSlot(name: string): Omit<SingleFileSlot, 'key'> & { key: string } {
  let m = /^text_model\.encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj)\.(weight|bias)$/.exec(name);
  if (m) return { key: `transformer.resblocks.${m[1]}.attn.in_proj_${m[3]}`, part: QKV_PART[m[2] as keyof typeof QKV_PART] };
  m = /^text_model\.encoder\.layers\.(\d+)\.(layer_norm1|layer_norm2|mlp\.fc1|mlp\.fc2|self_attn\.out_proj)\.(weight|bias)$/.exec(name);
  if (m) return { key: `transformer.resblocks.${m[1]}.${OPENCLIP_LAYER[m[2]]}.${m[3]}` };
  const fixed: Record<string, string> = {
    'text_model.embeddings.token_embedding.weight': 'token_embedding.weight',
    'text_model.embeddings.position_embedding.weight': 'positional_embedding',
    'text_model.final_layer_norm.weight': 'ln_final.weight',
    'text_model.final_layer_norm.bias': 'ln_final.bias',
  };
  if (fixed[name]) return { key: fixed[name] };
  if (name === 'text_projection.weight') return { key: 'text_projection', transpose: true };
  throw new Error(`no single-file name for text_encoder_2 tensor '${name}'`);
}

/** The single-file slot of a diffusers tensor (prefix included). */
export function sdxlSingleFileSlot(cfg: SdxlConfig, component: SdxlComponent, name: string): SingleFileSlot {
  const prefix = SDXL_SINGLE_FILE_PREFIX[component];
  switch (component) {
    case 'unet': return { key: prefix + unetToLdm(cfg.unet, name) };
    case 'text_encoder': return { key: prefix + name };
    case 'text_encoder_2': { const s = openClipSlot(name); return { ...s, key: prefix + s.key }; }
    case 'vae': return {
      key: prefix + vaeToLdm(cfg.vae, name),
      conv1x1: /mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(name) || undefined,
    };
  }
}

/** The shape a single-file tensor has, given the diffusers tensor(s) it holds. */
export function singleFileShape(slot: SingleFileSlot, diffusersShape: readonly number[]): number[] {
  if (slot.part !== undefined) return [3 * diffusersShape[0], ...diffusersShape.slice(1)];
  if (slot.transpose) return [diffusersShape[1], diffusersShape[0]];
  if (slot.conv1x1) return [...diffusersShape, 1, 1];
  return [...diffusersShape];
}

export interface DiffusersTensorRef { component: SdxlComponent; name: string; shape: number[] }

/**
 * Both directions over every tensor of a config. Each single-file key stands for one diffusers tensor,
 * or for three (a fused in_proj: q, k, v in that order).
 */
export class SdxlKeyMap {
  private readonly bySingle = new Map<string, { shape: number[]; parts: DiffusersTensorRef[] }>();
  private readonly byDiffusers = new Map<string, SingleFileSlot>();

  constructor(readonly cfg: SdxlConfig) {
    for (const component of SDXL_COMPONENTS) {
      for (const [name, shape] of sdxlComponentTensors(cfg, component).shapes) {
        const slot = sdxlSingleFileSlot(cfg, component, name);
        this.byDiffusers.set(`${component}/${name}`, slot);
        const entry = this.bySingle.get(slot.key) ?? { shape: singleFileShape(slot, shape), parts: [] };
        const index = slot.part ?? 0;
        if (entry.parts[index]) throw new Error(`key map: '${slot.key}' would stand for '${entry.parts[index].name}' and '${name}'`);
        entry.parts[index] = { component, name, shape };
        this.bySingle.set(slot.key, entry);
      }
    }
  }

  /** The diffusers tensors a single-file key holds (one, or q/k/v), or undefined when it is not one of the config's. */
  toDiffusers(singleFileKey: string): DiffusersTensorRef[] | undefined {
    return this.bySingle.get(singleFileKey)?.parts;
  }

  /** The single-file shape of a key of this config. */
  singleFileShape(singleFileKey: string): number[] | undefined {
    return this.bySingle.get(singleFileKey)?.shape;
  }

  toSingleFile(component: SdxlComponent, name: string): SingleFileSlot | undefined {
    return this.byDiffusers.get(`${component}/${name}`);
  }

  singleFileKeys(): string[] { return [...this.bySingle.keys()]; }
}

/**
 * Keys real checkpoints carry that are not model weights: recognised and skipped. CLIP's position_ids
 * buffer, OpenCLIP's logit_scale (SDXL base has it), EMA copies and ldm's schedule buffers.
 */
export function isIgnoredSdxlKey(key: string): boolean {
  return /(^|\.)text_model\.embeddings\.position_ids$/.test(key)
    || key === 'conditioner.embedders.1.model.logit_scale' || key === 'logit_scale'
    || /^model_ema\./.test(key)
    || /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod|log_one_minus_alphas_cumprod|sqrt_recip_alphas_cumprod|sqrt_recipm1_alphas_cumprod|posterior_variance|posterior_log_variance_clipped|posterior_mean_coef1|posterior_mean_coef2|logvar)$/.test(key);
}
