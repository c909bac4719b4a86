// Adapters: LoRA / LoCon / LoKr networks over a model's builder modules, target selection, kohya
// naming, and host-side merging.
export { AdapterSet, MULTIPLIER_INPUT, type AdapterSetOptions, type AdapterMode } from './adapter-set';
export { TARGET_PRESETS, targetFilter, selectTargets, compilePattern, type TargetPreset, type TargetSpec } from './targets';
export { kohyaNamer, type LoraNamer } from './naming';
export { loraModule, type LoraConfig } from './lora';
export { lokrModule, factorization, type LokrConfig } from './lokr';
export { mergeAdapter } from './merge';
export type { AdapterModule, AdapterParam, AdapterAlgo } from './module';
