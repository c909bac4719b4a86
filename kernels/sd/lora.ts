// SD 1.x adapters: one AdapterSet for the UNet (`lora_unet_…`) and optionally one for the text encoder
// (`lora_te_…`), named exactly as kohya writes them; symbolic module discovery (no weights touched)
// for parameter counts; and reading a LoRA file back into values for either set.
import type { HostTensor } from '../tensor';
import type { AdapterSet, AdapterSetOptions, TargetSpec } from '../adapters';
import { loadSafetensors, toFloat32, type RawTensor } from '../io/safetensors';
import { familyAdapters } from '../families/adapters';
import type { SdConfig } from './config';
import { sd1Family } from './sd1-family';

export interface SdAdapterOptions extends Omit<AdapterSetOptions, 'namer' | 'targets'> {
  targets: TargetSpec;
  trainTextEncoder: boolean;
}

export interface SdAdapters {
  unet: AdapterSet;
  textEncoder?: AdapterSet;
}

/**
 * Makes the adapter sets and builds the models symbolically once so every targeted module is known
 * (names, shapes, parameter count) before any weight is read: the family adapter sets of the sd1 family.
 */
export function sdAdapters(cfg: SdConfig, o: SdAdapterOptions): SdAdapters {
  const sets = familyAdapters(sd1Family, cfg, o);
  return sets.text.length ? { unet: sets.denoiser, textEncoder: sets.text[0] } : { unet: sets.denoiser };
}

/** Every trainable parameter of both sets, keyed by tensor name. */
export function sdAdapterParamCount(sets: SdAdapters) {
  return sets.unet.trainableCount + (sets.textEncoder?.trainableCount ?? 0);
}

/**
 * Reads a kohya-format LoRA file into float32 values for the given sets. Tensors the sets don't know
 * are listed (a LoRA for another model, or other targets) and, with `strict`, refused by name.
 */
export async function readLoraValues(path: string, sets: SdAdapters, strict = true): Promise<{ values: Record<string, HostTensor>; unused: string[]; metadata: Record<string, string> }> {
  const file = await loadSafetensors(path);
  const wanted = new Map<string, readonly number[]>();
  for (const s of [sets.unet, sets.textEncoder]) for (const p of s?.paramSpecs ?? []) wanted.set(p.key, p.shape);
  const values: Record<string, HostTensor> = {};
  const unused: string[] = [];
  for (const [key, raw] of file.tensors) {
    const shape = wanted.get(key);
    if (!shape) { if (!key.endsWith('.alpha')) unused.push(key); continue; }
    if (raw.shape.join() !== shape.join()) throw new Error(`${path}: tensor '${key}' has shape [${raw.shape}], the adapter expects [${shape}] (another rank?)`);
    values[key] = { dtype: 'float32', shape: [...shape], data: loraTensorToFloat32(path, key, raw) };
  }
  const missing = [...wanted.keys()].filter((k) => !values[k]);
  if (strict && missing.length) throw new Error(`${path}: missing ${missing.length} adapter tensor(s), e.g. '${missing[0]}'`);
  return { values, unused, metadata: file.metadata };
}

/** A LoRA file's tensor as float32; LoRA tensors are F32, F16 or BF16 (anything else is named and refused). */
export function loraTensorToFloat32(path: string, key: string, raw: RawTensor): Float32Array {
  if (raw.dtype !== 'F32' && raw.dtype !== 'F16' && raw.dtype !== 'BF16') throw new Error(`${path}: tensor '${key}' is ${raw.dtype}; LoRA tensors must be F32, F16 or BF16`);
  return toFloat32(raw);
}
