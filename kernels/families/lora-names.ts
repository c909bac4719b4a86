// LoRA module names of any family, both ways: every module of every LoRA component (found by tracing the
// family's parts without weights) under its kohya name (`lora_unet_…`, `lora_te1_…`) and its diffusers
// module path (`unet.…`, `text_encoder_2.…`), so a file in either format maps back to the model's modules.
import { Builder, type ModuleInfo } from '../nn/builder';
import { ShapeRecorder } from '../nn/weights';
import type { LoraComponent, ModelFamily } from './contract';
import { kohyaModuleName, peftModuleName } from './adapters';

export interface FamilyModuleRef {
  component: LoraComponent;
  /** Whether the component is a text encoder (kohya's lora_te*). */
  text: boolean;
  /** The builder's module path (what target patterns match). */
  module: string;
  info: ModuleInfo;
  /** kohya module name, e.g. lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q. */
  kohya: string;
}

export class FamilyLoraNames {
  private readonly byKohya = new Map<string, FamilyModuleRef>();
  private readonly byDiffusers = new Map<string, FamilyModuleRef>();

  constructor(readonly family: ModelFamily, config: unknown) {
    const parts = new Map(family.parts(config).map((p) => [p.id, p]));
    for (const component of family.loraComponents(config)) {
      const part = parts.get(component.part);
      if (!part) throw new Error(`${family.label}: LoRA component '${component.kohyaPrefix}' names part '${component.part}', which the family does not have`);
      const b = new Builder(new ShapeRecorder());
      part.trace(b);
      for (const info of b.modules) {
        const ref: FamilyModuleRef = { component, text: part.role === 'text', module: info.module, info, kohya: kohyaModuleName(component, info.module) };
        const prev = this.byKohya.get(ref.kohya);
        if (prev && prev.module !== info.module) throw new Error(`kohya name '${ref.kohya}' would stand for '${prev.module}' and '${info.module}'`);
        this.byKohya.set(ref.kohya, ref);
        const diffusers = peftModuleName(component, info.module);
        if (diffusers) this.byDiffusers.set(diffusers, ref);
      }
    }
  }

  /** `lora_unet_…` / `lora_te1_…` (a module name, without tensor suffix) → the module. */
  fromKohya(name: string): FamilyModuleRef | undefined { return this.byKohya.get(name); }

  /** `unet.down_blocks.…` / `text_encoder_2.text_model.…` (diffusers prefix and module path) → the module. */
  fromDiffusers(prefixedModule: string): FamilyModuleRef | undefined { return this.byDiffusers.get(prefixedModule); }
}

// Shared by every family whose diffusers files use unet./text_encoder(_2). prefixes, and the dtype-checked
// reader of LoRA tensors: written with SD 1.x, used by all families through here.
export { diffusersKeys, parseDiffusersKey } from '../sd/lora-names';
export { loraTensorToFloat32 } from '../sd/lora';
