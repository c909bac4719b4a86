// LoRA module names for SD 1.x exactly as the tools write them, both ways, from the builder's module
// list (diffusers paths):
//   kohya (sd-scripts, A1111, ComfyUI):  lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q
//                                        lora_te_text_model_encoder_layers_0_self_attn_q_proj
//     tensors  <name>.lora_down.weight, <name>.lora_up.weight, <name>.alpha
//   diffusers / PEFT:                    unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q
//     tensors  <prefix>.lora_A.weight, <prefix>.lora_B.weight
import type { ModuleInfo } from '../nn/builder';

export type LoraComponent = 'unet' | 'text_encoder';

const KOHYA_PREFIX: Record<LoraComponent, string> = { unet: 'lora_unet_', text_encoder: 'lora_te_' };

/** kohya's module name: its prefix plus the diffusers path with dots turned into underscores. */
export function kohyaName(component: LoraComponent, module: string): string {
  return KOHYA_PREFIX[component] + module.replace(/\./g, '_');
}

/** The diffusers/PEFT module prefix (tensor keys add `.lora_A.weight` / `.lora_B.weight`). */
export function peftName(component: LoraComponent, module: string): string {
  return `${component}.${module}`;
}

/** The tensor keys of one module in each format. */
export function kohyaKeys(component: LoraComponent, module: string) {
  const n = kohyaName(component, module);
  return { down: `${n}.lora_down.weight`, up: `${n}.lora_up.weight`, alpha: `${n}.alpha` };
}
export function peftKeys(component: LoraComponent, module: string) {
  const n = peftName(component, module);
  return { down: `${n}.lora_A.weight`, up: `${n}.lora_B.weight` };
}

/**
 * The modules kohya's sd-scripts trains by default for SD 1.x: every linear/1×1 conv inside the
 * UNet's Transformer2DModel blocks (proj_in, attention projections, feed-forward, proj_out) and the
 * text encoder's attention and MLP linears. LoCon-style training adds the ResNet and sampler convs.
 */
export function isKohyaDefaultTarget(component: LoraComponent, m: ModuleInfo): boolean {
  if (component === 'text_encoder') return /\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$/.test(m.module);
  return /\.attentions\.\d+\./.test(m.module) && (m.kind === 'linear' || m.kernel[0] === 1);
}

export interface LoraModuleRef { component: LoraComponent; module: string; info: ModuleInfo }

/** Name lookups over a model's modules: kohya and PEFT names back to diffusers module paths. */
export class LoraNames {
  private readonly byKohya = new Map<string, LoraModuleRef>();
  private readonly byPeft = new Map<string, LoraModuleRef>();

  constructor(modules: Partial<Record<LoraComponent, readonly ModuleInfo[]>>) {
    for (const component of ['unet', 'text_encoder'] as const) {
      for (const info of modules[component] ?? []) {
        const ref = { component, module: info.module, info };
        const k = kohyaName(component, info.module);
        const prev = this.byKohya.get(k);
        if (prev && prev.module !== info.module) throw new Error(`kohya name '${k}' would stand for '${prev.module}' and '${info.module}'`);
        this.byKohya.set(k, ref);
        this.byPeft.set(peftName(component, info.module), ref);
      }
    }
  }

  /** `lora_unet_…` (with or without a tensor suffix such as `.lora_down.weight`) → the module. */
  fromKohya(nameOrKey: string): LoraModuleRef | undefined {
    return this.byKohya.get(nameOrKey.replace(/\.(lora_down\.weight|lora_up\.weight|alpha|lora_mid\.weight|dora_scale)$/, ''));
  }

  /** `unet.…` (with or without `.lora_A.weight`/`.lora_B.weight`) → the module. */
  fromPeft(nameOrKey: string): LoraModuleRef | undefined {
    return this.byPeft.get(nameOrKey.replace(/\.(lora_[AB]\.weight|lora_magnitude_vector)$/, ''));
  }

  /** Every module known, in build order. */
  all(): LoraModuleRef[] { return [...new Map([...this.byKohya.values()].map((r) => [`${r.component}/${r.module}`, r])).values()]; }
}
