// SD 1.x adapters: one AdapterSet for the UNet (`lora_unet_…`) and optionally one for the text encoder
// (`lora_te_…`), named exactly as kohya writes them; symbolic module discovery (no weights touched)
// for parameter counts; and reading a LoRA file back into values for either set.
import { Builder } from '../nn/builder';
import { ShapeRecorder } from '../nn/weights';
import { input, type HostTensor } from '../tensor';
import { AdapterSet, kohyaNamer, type AdapterSetOptions, type TargetSpec } from '../adapters';
import { loadSafetensors, toFloat32, type RawTensor } from '../io/safetensors';
import type { SdConfig } from './config';
import { unet } from './unet';
import { clipTextEncoder } from './clip-text';

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
 * (names, shapes, parameter count) before any weight is read. `latent` is the latent size to trace at.
 */
export function sdAdapters(cfg: SdConfig, o: SdAdapterOptions): SdAdapters {
  const base = { ...o, targets: o.targets };
  const sets: SdAdapters = { unet: new AdapterSet({ ...base, namer: kohyaNamer({}, 'lora_unet') }) };
  if (o.trainTextEncoder) sets.textEncoder = new AdapterSet({ ...base, namer: kohyaNamer({}, 'lora_te') });
  traceModules(cfg, sets);
  if (sets.unet.modules.length === 0) throw new Error('the adapter targets select no UNet module: check the preset and include/exclude patterns');
  return sets;
}

/** Runs the model builders over shape-only weights so the sets discover their modules. */
function traceModules(cfg: SdConfig, sets: SdAdapters) {
  const down = 2 ** (cfg.unet.blockOutChannels.length - 1);
  unet(new Builder(new ShapeRecorder(), sets.unet.hook({ training: true })), cfg.unet, {
    sample: input('sample', [1, cfg.unet.inChannels, down, down]),
    timestep: input('timestep', [1]),
    context: input('context', [1, cfg.text.maxPositions, cfg.unet.crossAttentionDim]),
  });
  if (sets.textEncoder) {
    clipTextEncoder(new Builder(new ShapeRecorder(), sets.textEncoder.hook({ training: true })), cfg.text, input('ids', [1, cfg.text.maxPositions], 'int64'));
  }
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
