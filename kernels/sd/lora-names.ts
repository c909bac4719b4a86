// LoRA module names for SD 1.x exactly as the tools write them, both ways, from the builder's module
// list (diffusers paths):
//   kohya (sd-scripts, A1111, ComfyUI):  lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q
//                                        lora_te_text_model_encoder_layers_0_self_attn_q_proj
//     tensors  <name>.lora_down.weight, <name>.lora_up.weight, <name>.alpha
//   diffusers (what we write):           unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight
//                                        unet.down_blocks.0.attentions.0.proj_in.lora.down.weight
//                                        text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight
//   PEFT (diffusers ≥ 0.24 saves, read): unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight
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

/**
 * A UNet attention projection as diffusers' attention processors named it (`attn1.processor.to_q`,
 * `to_out.0` → `processor.to_out`). ComfyUI maps SD UNet attention in diffusers-style files only under
 * these names (comfy/lora.py model_lora_keys_unet), so the PEFT `attn1.to_q.lora_A` layout would be skipped there.
 */
const ATTENTION_PROJECTION = /^(.*\.attn[12])\.(to_q|to_k|to_v|to_out\.0)$/;

/**
 * The diffusers-format tensor keys of one module, in diffusers' non-PEFT layout: the one its own kohya
 * converter produces and its loader still converts to PEFT (utils/state_dict_utils.py: `.processor.` dropped,
 * `to_q_lora.down` → `to_q.lora_A`, `lora.down` → `lora_A`, `lora_linear_layer.down` → `lora_A`), and the
 * only one ComfyUI also loads completely. `component` is the diffusers prefix: unet, text_encoder, text_encoder_2
 * (or transformer, for which diffusers' own PEFT names already load in both).
 * No alpha tensor: these files carry alpha folded into `up` (diffusers: alpha = rank when a file has none).
 */
export function diffusersKeys(component: string, module: string): { down: string; up: string } {
  if (component === 'unet') {
    const a = ATTENTION_PROJECTION.exec(module);
    const n = a ? `unet.${a[1]}.processor.${a[2].replace(/\.0$/, '')}_lora` : `unet.${module}.lora`;
    return { down: `${n}.down.weight`, up: `${n}.up.weight` };
  }
  if (/^text_encoder(_\d+)?$/.test(component)) {
    const n = `${component}.${module}.lora_linear_layer`;
    return { down: `${n}.down.weight`, up: `${n}.up.weight` };
  }
  // A DiT denoiser (`transformer`): ComfyUI maps `transformer.<module>` as diffusers names it for those
  // families, so the PEFT names diffusers saves are the ones both load (the UNet attention rule is UNet-only).
  return { down: `${component}.${module}.lora_A.weight`, up: `${component}.${module}.lora_B.weight` };
}

const DIFFUSERS_KEY = /^(unet|text_encoder(?:_2)?)\.(.+?)(?:\.lora_([AB])\.weight|_lora\.(down|up)\.weight|\.lora\.(down|up)\.weight|\.lora_linear_layer\.(down|up)\.weight)$/;

/**
 * Any diffusers-family LoRA key — PEFT (`….lora_A.weight`), attention-processor (`…processor.to_q_lora.down.weight`),
 * LoRACompatible (`….lora.down.weight`) or text-encoder (`….lora_linear_layer.down.weight`) — to its module path.
 */
export function parseDiffusersKey(key: string): { component: string; module: string; part: 'down' | 'up' } | undefined {
  const m = DIFFUSERS_KEY.exec(key);
  if (!m) return undefined;
  let module = m[2].replace(/\.processor\./, '.');
  if (/\.attn[12]\.to_out$/.test(module)) module += '.0';
  // Old text-encoder layout: self_attn.to_q_lora → self_attn.q_proj (diffusers' DIFFUSERS_OLD_TO_PEFT).
  if (m[1] !== 'unet') module = module.replace(/\.self_attn\.to_(q|k|v|out)$/, '.self_attn.$1_proj');
  const part = m[3] ? (m[3] === 'A' ? 'down' : 'up') : (m[4] ?? m[5] ?? m[6]) as 'down' | 'up';
  return { component: m[1], module, part };
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

  /** A diffusers-format tensor key in any of the layouts parseDiffusersKey reads → the module and which factor. */
  fromDiffusers(key: string): (LoraModuleRef & { part: 'down' | 'up' }) | undefined {
    const p = parseDiffusersKey(key);
    const ref = p && this.byPeft.get(`${p.component}.${p.module}`);
    return ref && p ? { ...ref, part: p.part } : undefined;
  }

  /** Every module known, in build order. */
  all(): LoraModuleRef[] { return [...new Map([...this.byKohya.values()].map((r) => [`${r.component}/${r.module}`, r])).values()]; }
}
