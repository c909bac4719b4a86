// SDXL LoRA module names exactly as the tools write them, from the builder's module paths (diffusers):
//   kohya (sd-scripts, A1111/Forge, ComfyUI)  lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q  (SGM path)
//                                             lora_te1_text_model_encoder_layers_0_self_attn_q_proj      (CLIP-L)
//                                             lora_te2_text_model_encoder_layers_0_self_attn_q_proj      (bigG)
//   diffusers / PEFT                          unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q
//                                             text_encoder.text_model…, text_encoder_2.text_model…
// and the modules kohya's sd-scripts trains by default: 722 UNet linears (every linear inside the
// Transformer2D blocks), 72 in CLIP-L and 192 in bigG (attention and MLP linears).
import type { ModuleInfo } from '../nn/builder';
import type { UNetConfig } from '../sd/config';
import { unetToLdm } from '../sd/keys/single-file';
import type { SdxlComponent } from './keys';

/** The parts an SDXL LoRA adapts. */
export type SdxlLoraComponent = Exclude<SdxlComponent, 'vae'>;
export const SDXL_LORA_COMPONENTS: readonly SdxlLoraComponent[] = ['unet', 'text_encoder', 'text_encoder_2'];

export const SDXL_KOHYA_PREFIX: Record<SdxlLoraComponent, string> = { unet: 'lora_unet', text_encoder: 'lora_te1', text_encoder_2: 'lora_te2' };
export const SDXL_PEFT_PREFIX: Record<SdxlLoraComponent, string> = { unet: 'unet', text_encoder: 'text_encoder', text_encoder_2: 'text_encoder_2' };

/** What SDXL LoRA files say about their base model (kohya's ss_* and the modelspec). */
export const SDXL_LORA_METADATA = {
  ss_base_model_version: 'sdxl_base_v1-0',
  'modelspec.architecture': 'stable-diffusion-xl-v1-base/lora',
} as const;

/** A UNet module's SGM path (`input_blocks.4.1.transformer_blocks.0.attn1.to_q`) from its diffusers path. */
export function sgmModulePath(unet: UNetConfig, diffusersModule: string): string {
  return unetToLdm(unet, `${diffusersModule}.weight`).replace(/\.weight$/, '');
}

/** The path a format uses for a module (without prefix): kohya's UNet names are SGM paths, everything else the diffusers/transformers path. */
export function sdxlModulePath(format: 'kohya' | 'peft', component: SdxlLoraComponent, module: string, unet: UNetConfig): string {
  return format === 'kohya' && component === 'unet' ? sgmModulePath(unet, module) : module;
}

/** kohya's module name: prefix + SGM/transformers path with dots turned into underscores. */
export function sdxlKohyaName(component: SdxlLoraComponent, module: string, unet: UNetConfig): string {
  return `${SDXL_KOHYA_PREFIX[component]}_${sdxlModulePath('kohya', component, module, unet).replace(/\./g, '_')}`;
}

/** diffusers/PEFT module prefix (tensor keys add `.lora_A.weight` / `.lora_B.weight`). */
export function sdxlPeftName(component: SdxlLoraComponent, module: string): string {
  return `${SDXL_PEFT_PREFIX[component]}.${module}`;
}

/** One exported entry for both formats (what LoRA file writers and key-map fixtures call). */
export function sdxlLoraName(format: 'kohya' | 'peft', component: SdxlLoraComponent, module: string, unet: UNetConfig): string {
  return format === 'kohya' ? sdxlKohyaName(component, module, unet) : sdxlPeftName(component, module);
}

/** kohya's default SDXL targets: UNet linears inside Transformer2D blocks; text attention and MLP linears. */
export function isSdxlKohyaDefaultTarget(component: SdxlLoraComponent, m: ModuleInfo): boolean {
  if (m.kind !== 'linear') return false;
  if (component !== 'unet') return /\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$/.test(m.module);
  return /\.attentions\.\d+\./.test(m.module);
}
