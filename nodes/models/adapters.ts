// From an ADAPTER spec (LoRA Target) to the engine's AdapterSets for an SD 1.x model: the one place the
// node vocabulary (LoRA / LoCon / LoKr, network_dim, conv_dim, preset) maps onto kernels/adapters options.
import type { HostTensor } from '../../kernels';
import { AdapterSet } from '../../kernels/adapters';
import { safetensorsFileBytes, type SafetensorsDtype } from '../../kernels/io/safetensors';
import type { SdConfig } from '../../kernels/sd/config';
import { sdAdapters, sdAdapterParamCount, type SdAdapterOptions, type SdAdapters } from '../../kernels/sd/lora';
import type { AdapterSpec } from '../sockets';

export type { SdAdapters } from '../../kernels/sd/lora';

/**
 * kernels/adapters options for a spec. LoCon is LoRA that also adapts the 3×3 convs (ResNets, samplers)
 * at conv rank, so it always uses the all_linear_conv preset; LoRA with that preset is the same network.
 */
export function adapterOptions(spec: AdapterSpec): SdAdapterOptions {
  const preset = spec.algo === 'LoCon' ? 'all_linear_conv' : spec.preset;
  return {
    algo: spec.algo === 'LoKr' ? 'lokr' : 'lora',
    rank: spec.rank,
    alpha: spec.alpha,
    convRank: spec.convRank,
    convAlpha: spec.convAlpha,
    dropout: spec.dropout,
    factor: spec.factor,
    fullMatrix: spec.fullMatrix,
    targets: { preset, include: [...spec.include], exclude: [...spec.exclude] },
    trainTextEncoder: spec.trainTextEncoder,
  };
}

const setsCache = new WeakMap<SdConfig, Map<string, SdAdapters>>();

/**
 * The UNet (and, with trainTextEncoder, text-encoder) adapter sets of `spec` over a model of `config`,
 * with every targeted module known. Cached per (config, spec): sets are reused, never mutated after
 * tracing, and graphs built with their hooks read parameters as inputs by name.
 */
export function adapterSetsFor(spec: AdapterSpec, config: SdConfig): SdAdapters {
  const key = JSON.stringify(adapterOptions(spec));
  let m = setsCache.get(config);
  if (!m) setsCache.set(config, (m = new Map()));
  let sets = m.get(key);
  if (!sets) {
    sets = sdAdapters(config, adapterOptions(spec));
    m.set(key, sets);
  }
  return sets;
}

/** Every set of `sets`, UNet first. */
export function setList(sets: SdAdapters): AdapterSet[] {
  return [sets.unet, ...(sets.textEncoder ? [sets.textEncoder] : [])];
}

/** Trainable parameters, modules and the kohya file size of a spec over a model. */
export function adapterFacts(spec: AdapterSpec, config: SdConfig, dtype: SafetensorsDtype = 'F16') {
  const sets = adapterSetsFor(spec, config);
  return {
    params: sdAdapterParamCount(sets),
    unetModules: sets.unet.modules.length,
    textEncoderModules: sets.textEncoder?.modules.length ?? 0,
    fileBytes: kohyaFileBytes(sets, dtype),
  };
}

/** Exact size of the kohya-format file both sets save to. */
export function kohyaFileBytes(sets: SdAdapters, dtype: SafetensorsDtype = 'F16', metadata: Record<string, string> = {}): number {
  return safetensorsFileBytes(setList(sets).flatMap((s) => s.fileEntries(dtype)), metadata);
}

/** Fresh initial weights for a spec (seeded, kohya's init: down kaiming-uniform, up zero). */
export function initialAdapterWeights(spec: AdapterSpec, config: SdConfig, seed: number | string): Record<string, HostTensor> {
  const sets = adapterSetsFor(spec, config);
  return Object.assign({}, ...setList(sets).map((s) => s.initialValues(seed)));
}
