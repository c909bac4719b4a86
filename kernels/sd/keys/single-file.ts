// Key names of SD 1.x single-file checkpoints (the original ldm/CompVis layout that A1111, ComfyUI
// and kohya read and write) ↔ diffusers folder names. A bijection over a config's tensors:
//   unet          model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight
//   vae           first_stage_model.encoder.down.0.block.0.conv1.weight
//   text encoder  cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight
// The VAE mid-block attention's q/k/v/proj_out are 1×1 convs in ldm ([C, C, 1, 1]) and linears in
// diffusers ([C, C]); same bytes, different shape.
import type { SdConfig, UNetConfig, VaeConfig } from '../config';
import { componentTensors, COMPONENTS, type Component } from './expected';

export const SINGLE_FILE_PREFIX: Record<Component, string> = {
  unet: 'model.diffusion_model.',
  vae: 'first_stage_model.',
  text_encoder: 'cond_stage_model.transformer.',
};

const RESNET_UNET: Record<string, string> = {
  norm1: 'in_layers.0', conv1: 'in_layers.2', time_emb_proj: 'emb_layers.1',
  norm2: 'out_layers.0', conv2: 'out_layers.3', conv_shortcut: 'skip_connection',
};
const VAE_ATTENTION: Record<string, string> = { group_norm: 'norm', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out' };

function fail(component: Component, name: string): never {
  throw new Error(`no single-file name for ${component} tensor '${name}'`);
}

/** UNet: diffusers name → ldm/SGM name (without the `model.diffusion_model.` prefix); SDXL uses the same layout. */
export function unetToLdm(unet: UNetConfig, name: string): string {
  const L = unet.layersPerBlock;
  const n = unet.blockOutChannels.length;
  const fixed: Record<string, string> = {
    'conv_in': 'input_blocks.0.0', 'time_embedding.linear_1': 'time_embed.0', 'time_embedding.linear_2': 'time_embed.2',
    'add_embedding.linear_1': 'label_emb.0.0', 'add_embedding.linear_2': 'label_emb.0.2',
    'conv_norm_out': 'out.0', 'conv_out': 'out.2',
  };
  const resnet = (rest: string) => {
    const m = /^(norm1|conv1|time_emb_proj|norm2|conv2|conv_shortcut)\.(weight|bias)$/.exec(rest);
    return m ? `${RESNET_UNET[m[1]]}.${m[2]}` : fail('unet', name);
  };
  let m = /^(conv_in|time_embedding\.linear_[12]|add_embedding\.linear_[12]|conv_norm_out|conv_out)\.(weight|bias)$/.exec(name);
  if (m) return `${fixed[m[1]]}.${m[2]}`;
  m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const idx = 1 + Number(m[1]) * (L + 1) + Number(m[3]);
    return m[2] === 'resnets' ? `input_blocks.${idx}.0.${resnet(m[4])}` : `input_blocks.${idx}.1.${m[4]}`;
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(name);
  if (m) return `input_blocks.${1 + Number(m[1]) * (L + 1) + L}.0.op.${m[2]}`;
  m = /^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(name);
  if (m) return m[1] === 'attentions' ? `middle_block.1.${m[3]}` : `middle_block.${Number(m[2]) * 2}.${resnet(m[3])}`;
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const idx = Number(m[1]) * (L + 1) + Number(m[3]);
    return m[2] === 'resnets' ? `output_blocks.${idx}.0.${resnet(m[4])}` : `output_blocks.${idx}.1.${m[4]}`;
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(name);
  if (m) {
    const i = Number(m[1]);
    const hasAttention = [...unet.downBlockCrossAttention].reverse()[i];
    if (i >= n - 1) fail('unet', name);
    return `output_blocks.${i * (L + 1) + L}.${hasAttention ? 2 : 1}.conv.${m[2]}`;
  }
  return fail('unet', name);
}

/** VAE: diffusers name → ldm name (without `first_stage_model.`); SDXL's VAE uses the same layout. */
export function vaeToLdm(vae: VaeConfig, name: string): string {
  const n = vae.blockOutChannels.length;
  const resnet = (rest: string) => rest.replace(/^conv_shortcut\./, 'nin_shortcut.');
  const mid = (rest: string) => {
    let m = /^resnets\.([01])\.(.+)$/.exec(rest);
    if (m) return `mid.block_${Number(m[1]) + 1}.${resnet(m[2])}`;
    m = /^attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(rest);
    if (m) return `mid.attn_1.${VAE_ATTENTION[m[1]]}.${m[2]}`;
    return fail('vae', name);
  };
  let m = /^(quant_conv|post_quant_conv)\.(weight|bias)$/.exec(name);
  if (m) return name;
  m = /^(encoder|decoder)\.(conv_in|conv_out)\.(weight|bias)$/.exec(name);
  if (m) return name;
  m = /^(encoder|decoder)\.conv_norm_out\.(weight|bias)$/.exec(name);
  if (m) return `${m[1]}.norm_out.${m[2]}`;
  m = /^(encoder|decoder)\.mid_block\.(.+)$/.exec(name);
  if (m) return `${m[1]}.${mid(m[2])}`;
  m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(name);
  if (m) return `encoder.down.${m[1]}.block.${m[2]}.${resnet(m[3])}`;
  m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)$/.exec(name);
  if (m) return `encoder.down.${m[1]}.downsample.conv.${m[2]}`;
  // The decoder's up blocks are numbered from the lowest resolution in diffusers, from the highest in ldm.
  m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(name);
  if (m) return `decoder.up.${n - 1 - Number(m[1])}.block.${m[2]}.${resnet(m[3])}`;
  m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)$/.exec(name);
  if (m) return `decoder.up.${n - 1 - Number(m[1])}.upsample.conv.${m[2]}`;
  return fail('vae', name);
}

/** True for the VAE attention projections stored as 1×1 convs in ldm and as linears in diffusers. */
export function isVaeAttentionProjection(component: Component, diffusersName: string): boolean {
  return component === 'vae' && /mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(diffusersName);
}

/** The single-file key of a diffusers tensor (prefix included). */
export function toSingleFileKey(cfg: SdConfig, component: Component, name: string): string {
  const body = component === 'unet' ? unetToLdm(cfg.unet, name) : component === 'vae' ? vaeToLdm(cfg.vae, name) : name;
  return SINGLE_FILE_PREFIX[component] + body;
}

/** The shape a diffusers-shaped tensor has in a single-file checkpoint. */
export function toSingleFileShape(component: Component, name: string, shape: readonly number[]): number[] {
  return isVaeAttentionProjection(component, name) ? [...shape, 1, 1] : [...shape];
}

export interface DiffusersKey { component: Component; name: string }

/** Both directions over every tensor of a config; single-file keys not in it are not SD 1.x tensors. */
export class SingleFileKeyMap {
  private readonly fromSingle = new Map<string, DiffusersKey>();
  private readonly toSingle = new Map<string, string>();

  constructor(readonly cfg: SdConfig) {
    for (const component of COMPONENTS) {
      for (const name of componentTensors(cfg, component).shapes.keys()) {
        const key = toSingleFileKey(cfg, component, name);
        if (this.fromSingle.has(key)) throw new Error(`key map: '${key}' would stand for two tensors`);
        this.fromSingle.set(key, { component, name });
        this.toSingle.set(`${component}/${name}`, key);
      }
    }
  }

  /** diffusers component + name of a single-file key, or undefined when the key is not one of the config's tensors. */
  toDiffusers(singleFileKey: string): DiffusersKey | undefined {
    return this.fromSingle.get(singleFileKey);
  }

  toSingleFile(component: Component, name: string): string | undefined {
    return this.toSingle.get(`${component}/${name}`);
  }

  singleFileKeys(): string[] {
    return [...this.fromSingle.keys()];
  }
}
