// From an ADAPTER spec (LoRA Target) to the engine's AdapterSets over a model of any family: the one place
// the node vocabulary (LoRA / LoCon / LoKr, network_dim, conv_dim, preset) maps onto kernels/adapters options.
import type { HostTensor } from '../../kernels';
import { AdapterSet } from '../../kernels/adapters';
import { safetensorsFileBytes, type SafetensorsDtype } from '../../kernels/io/safetensors';
import { adapterParamCount, adapterSetList, familyAdapters, type FamilyAdapterOptions, type FamilyAdapters } from '../../kernels/families/adapters';
import type { AdapterSpec, FamilyModel } from '../sockets';

export type { FamilyAdapters } from '../../kernels/families/adapters';

/**
 * kernels/adapters options for a spec. LoCon is LoRA that also adapts the 3×3 convs (ResNets, samplers)
 * at conv rank, so it always uses the all_linear_conv preset; LoRA with that preset is the same network.
 */
export function adapterOptions(spec: AdapterSpec): FamilyAdapterOptions {
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

const setsCache = new WeakMap<object, Map<string, FamilyAdapters>>();

/**
 * The denoiser (and, with trainTextEncoder, text-encoder) adapter sets of `spec` over a model, with every
 * targeted module known. Cached per (config, spec): sets are reused, never mutated after tracing, and
 * graphs built with their hooks read parameters as inputs by name.
 */
export function adapterSetsFor(spec: AdapterSpec, model: FamilyModel): FamilyAdapters {
  const key = `${model.family.id}|${JSON.stringify(adapterOptions(spec))}`;
  const config = model.config as object;
  let m = setsCache.get(config);
  if (!m) setsCache.set(config, (m = new Map()));
  let sets = m.get(key);
  if (!sets) {
    sets = familyAdapters(model.family, model.config, adapterOptions(spec));
    m.set(key, sets);
  }
  return sets;
}

/** Every set of `sets`, denoiser first. */
export function setList(sets: FamilyAdapters): AdapterSet[] {
  return adapterSetList(sets);
}

/** Trainable parameters, modules and the kohya file size of a spec over a model. */
export function adapterFacts(spec: AdapterSpec, model: FamilyModel, dtype: SafetensorsDtype = 'F16') {
  const sets = adapterSetsFor(spec, model);
  return {
    params: adapterParamCount(sets),
    denoiserModules: sets.denoiser.modules.length,
    textEncoderModules: sets.text.reduce((n, s) => n + s.modules.length, 0),
    fileBytes: kohyaFileBytes(sets, dtype),
  };
}

/** Exact size of the kohya-format file the sets save to. */
export function kohyaFileBytes(sets: FamilyAdapters, dtype: SafetensorsDtype = 'F16', metadata: Record<string, string> = {}): number {
  return safetensorsFileBytes(setList(sets).flatMap((s) => s.fileEntries(dtype)), metadata);
}

/** Fresh initial weights for a spec (seeded, kohya's init: down kaiming-uniform, up zero). */
export function initialAdapterWeights(spec: AdapterSpec, model: FamilyModel, seed: number | string): Record<string, HostTensor> {
  const sets = adapterSetsFor(spec, model);
  return Object.assign({}, ...setList(sets).map((s) => s.initialValues(seed)));
}
