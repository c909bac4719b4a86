// Adapter networks over any family: one AdapterSet for the denoiser and, when the text encoders train,
// one per text encoder, each named with its LoRA component's kohya prefix; the family's parts are
// traced once symbolically (no weight read) so every targeted module, shape and count is known.
import { Builder, type ModuleInfo } from '../nn/builder';
import { ShapeRecorder } from '../nn/weights';
import { AdapterSet, targetFilter, type AdapterSetOptions, type TargetSpec } from '../adapters';
import type { LoraComponent, ModelFamily } from './contract';

export interface FamilyAdapterOptions extends Omit<AdapterSetOptions, 'namer' | 'targets' | 'filter'> {
  targets: TargetSpec;
  trainTextEncoder: boolean;
}

export interface FamilyAdapters {
  denoiser: AdapterSet;
  /** One per text encoder (in the family's textEncoders order) when they train; empty otherwise. */
  text: AdapterSet[];
}

/** kohya's module name: the component's prefix and its (format-mapped) path with dots as underscores. */
export function kohyaModuleName(component: LoraComponent, builderPath: string): string {
  const path = component.modulePath?.kohya ? component.modulePath.kohya(builderPath) : builderPath;
  if (path === undefined) throw new Error(`module '${builderPath}' has no kohya name in ${component.part}`);
  return `${component.kohyaPrefix}_${path.replace(/\./g, '_')}`;
}

/** diffusers/PEFT module prefix: `<peftPrefix>.<diffusers path>` (tensors add .lora_A.weight / .lora_B.weight). */
export function peftModuleName(component: LoraComponent, builderPath: string): string | undefined {
  const path = component.modulePath?.peft ? component.modulePath.peft(builderPath) : builderPath;
  return path === undefined ? undefined : `${component.peftPrefix}.${path}`;
}

/** The LoRA component of each part: [denoiser, text encoder 1, …]. */
export function componentsOf(family: ModelFamily, config: unknown): { denoiser: LoraComponent; text: LoraComponent[] } {
  const comps = family.loraComponents(config);
  const byPart = new Map(comps.map((c) => [c.part, c]));
  const denoiserPart = family.parts(config).find((p) => p.role === 'denoiser')!;
  const denoiser = byPart.get(denoiserPart.id);
  if (!denoiser) throw new Error(`${family.label}: no LoRA component for the denoiser part '${denoiserPart.id}'`);
  const text = family.textEncoders(config).map((t) => {
    const c = byPart.get(t.part);
    if (!c) throw new Error(`${family.label}: no LoRA component for text encoder '${t.part}'`);
    return c;
  });
  return { denoiser, text };
}

/**
 * Makes the sets and traces the parts so the sets discover their modules before any weight is read.
 * Throws when the targets select no denoiser module.
 */
export function familyAdapters(family: ModelFamily, config: unknown, o: FamilyAdapterOptions): FamilyAdapters {
  const comps = componentsOf(family, config);
  const setFor = (c: LoraComponent, filter?: (m: ModuleInfo) => boolean) => new AdapterSet({ ...o, targets: o.targets, filter, namer: (p) => kohyaModuleName(c, p) });
  // A family's own preset (its module paths) narrows the denoiser; include/exclude still apply on top.
  const own = family.presetFilter?.(o.targets.preset ?? 'attention_ff');
  const patterns = targetFilter({ ...o.targets, preset: 'all_linear_conv' });
  const denoiserFilter = own ? (m: ModuleInfo) => own(m) && patterns(m) : undefined;
  const sets: FamilyAdapters = { denoiser: setFor(comps.denoiser, denoiserFilter), text: o.trainTextEncoder ? comps.text.map((c) => setFor(c)) : [] };
  const parts = new Map(family.parts(config).map((p) => [p.id, p]));
  parts.get(comps.denoiser.part)!.trace(new Builder(new ShapeRecorder(), sets.denoiser.hook({ training: true })));
  sets.text.forEach((set, i) => parts.get(comps.text[i].part)!.trace(new Builder(new ShapeRecorder(), set.hook({ training: true }))));
  if (sets.denoiser.modules.length === 0) {
    throw new Error(`the adapter targets select no ${comps.denoiser.part === 'unet' ? 'UNet' : comps.denoiser.part} module: check the preset and include/exclude patterns`);
  }
  return sets;
}

/** Every set, denoiser first. */
export function adapterSetList(sets: FamilyAdapters): AdapterSet[] {
  return [sets.denoiser, ...sets.text];
}

/** Trainable parameters of all sets. */
export function adapterParamCount(sets: FamilyAdapters): number {
  return adapterSetList(sets).reduce((n, s) => n + s.trainableCount, 0);
}
