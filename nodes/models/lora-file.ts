// LoRA files on disk for any model family (SD 1.x, SDXL…; module names from the family's LoRA components):
// writing an adapter's weights in kohya format (`lora_unet_…`,
// `lora_down/lora_up/alpha`, LyCORIS `lokr_*` names) or diffusers format (diffusers' non-PEFT layout:
// `unet.….processor.to_q_lora.down.weight`, `unet.….lora.down.weight`, `text_encoder.….lora_linear_layer.down.weight`,
// alpha folded into `up`, as diffusers assumes alpha = rank for these files) — each loads completely in
// ComfyUI, and in diffusers or A1111/Forge as README's format list says; and reading kohya, diffusers or
// PEFT files back into weights plus the AdapterSpec that reproduces the same network (type, rank, alpha,
// exact modules). Families with layouts of their own (FLUX: ai-toolkit, kohya, diffusers with fused ↔ split
// projections) write and read those through their `loraFiles`.
import type { HostTensor } from '../../kernels';
import { factorization } from '../../kernels/adapters';
import { loadSafetensors, writeSafetensors, type RawTensor, type SafetensorsDtype, type TensorToWrite } from '../../kernels/io/safetensors';
import { FamilyLoraNames, diffusersKeys, loraTensorToFloat32, parseDiffusersKey, type FamilyModuleRef } from '../../kernels/families/lora-names';
import type { AdapterSpec } from '../sockets';
import type { LoraModuleWeights, ModelFamily } from '../../kernels/families/contract';
import { componentsOf } from '../../kernels/families/adapters';
import { detectFamily, familyById, FAMILY_LABELS, modelLabel } from '../../kernels/families/registry';
import { adapterSetsFor, setList } from './adapters';

/** The Save LoRA widget's words, also written as `loragraph_format` (ai-toolkit: families with their own layouts). */
export type LoraFormat = 'kohya' | 'diffusers' | 'ai-toolkit';

/** Save LoRA's format widget choices: `auto` is the family's usual one (kohya; ai-toolkit for FLUX). */
export const SAVE_LORA_FORMATS = ['auto', 'ai-toolkit', 'kohya', 'diffusers'] as const;

/**
 * The format a Save LoRA choice stands for with a family; refuses formats the family has no layout for.
 * `auto` falls back to kohya for what the family's own layout cannot hold (LoKr, text-encoder modules).
 */
export function resolveLoraFormat(choice: (typeof SAVE_LORA_FORMATS)[number], family: ModelFamily, spec?: Pick<AdapterSpec, 'algo' | 'trainTextEncoder'>): LoraFormat {
  if (choice === 'auto') return (spec && (spec.algo === 'LoKr' || spec.trainTextEncoder) ? 'kohya' : family.loraFiles?.defaultFormat ?? 'kohya') as LoraFormat;
  if (choice === 'ai-toolkit' && !family.loraFiles?.formats['ai-toolkit']) {
    throw new Error(`format: ai-toolkit files are written for DiT families (FLUX); ${family.label} LoRAs are kohya or diffusers`);
  }
  return choice;
}

/**
 * Where a file of each format loads completely (every tensor used) — Save LoRA's tooltip and status line
 * and README say this; tests/nodes/lora-file-keymaps.test.ts holds it against the loaders' key maps.
 * diffusers loads no LoKr, so kohya LoKr (LyCORIS names) is for the others.
 */
export const LORA_FORMAT_TOOLS = {
  kohya: ['ComfyUI', 'A1111/Forge', 'kohya sd-scripts', 'diffusers'],
  'kohya-lokr': ['ComfyUI', 'A1111/Forge', 'kohya sd-scripts (LyCORIS)'],
  diffusers: ['diffusers', 'ComfyUI'],
} as const;

/** The tools a saved file of `format` and network type loads in (the family's own list where it has one). */
export function loraLoadsIn(format: LoraFormat, algo: AdapterSpec['algo'], family?: ModelFamily): readonly string[] {
  if (format === 'kohya' && algo === 'LoKr') return LORA_FORMAT_TOOLS['kohya-lokr'];
  const own = family?.loraFiles?.formats[format];
  if (own) return own;
  if (format === 'ai-toolkit') throw new Error('format: ai-toolkit files are written for DiT families (FLUX) only');
  return LORA_FORMAT_TOOLS[format];
}

/**
 * Whether the family's own writer lays out this file: its formats, for LoRA on the denoiser. kohya LoKr
 * and text-encoder modules keep the generic kohya names (the same `lora_unet_…` paths); the other
 * formats cannot name them and say so.
 */
function usesFamilyLayout(o: Pick<SaveLoraOptions, 'spec' | 'format'>, family: ModelFamily): boolean {
  const own = family.loraFiles;
  if (!own?.formats[o.format]) return false;
  const generic = o.spec.algo === 'LoKr' || o.spec.trainTextEncoder;
  if (generic && o.format === 'kohya') return false;
  if (o.spec.algo === 'LoKr') throw new Error(`format: ${o.format} files hold no LoKr; save LoKr in kohya (LyCORIS) format, which ComfyUI loads`);
  if (o.spec.trainTextEncoder) throw new Error(`format: ${family.label} ${o.format} files hold the transformer only; save a LoRA with a trained text encoder in kohya format`);
  return true;
}

/** The denoiser modules' weights keyed by builder path, as the family's writer takes them. */
function denoiserModules(o: Omit<SaveLoraOptions, 'metadata'>, family: ModelFamily): Map<string, LoraModuleWeights> {
  const sets = adapterSetsFor(o.spec, { family, config: o.config });
  const out = new Map<string, LoraModuleWeights>();
  for (const m of sets.denoiser.modules) {
    const down = o.weights[`${m.name}.lora_down.weight`], up = o.weights[`${m.name}.lora_up.weight`];
    if (!down || !up) throw new Error(`adapter weights lack '${m.name}.lora_down.weight' or '.lora_up.weight'`);
    if (m.info.kind !== 'linear') throw new Error(`${family.label} LoRA files hold linear layers; '${m.info.module}' is a ${m.info.kind}`);
    out.set(m.info.module, { down: down.data as Float32Array, up: up.data as Float32Array, rank: m.rank, alpha: m.scale * m.rank, inFeatures: m.info.inFeatures, outFeatures: m.info.outFeatures });
  }
  return out;
}

export interface SaveLoraOptions {
  spec: AdapterSpec;
  /** The base model's family (default SD 1.x) and config: they lay out the modules. */
  family?: ModelFamily;
  config: unknown;
  weights: Readonly<Record<string, HostTensor>>;
  format: LoraFormat;
  dtype: 'F32' | 'F16' | 'BF16';
  metadata: Record<string, string>;
}

/** The tensors of the file, by name. */
export function loraFileTensors(o: Omit<SaveLoraOptions, 'metadata'>): Record<string, TensorToWrite> {
  const family = o.family ?? familyById('sd1');
  const sets = adapterSetsFor(o.spec, { family, config: o.config });
  const weights = o.weights as Record<string, HostTensor>;
  if (usesFamilyLayout(o, family)) {
    const tensors = family.loraFiles!.write(o.config, denoiserModules(o, family), o.format);
    return Object.fromEntries([...tensors].map(([k, t]) => [k, { dtype: o.dtype, shape: t.shape, data: t.data as Float32Array }]));
  }
  if (o.format === 'ai-toolkit') throw new Error(`format: ${family.label} has no ai-toolkit layout (kohya or diffusers)`);
  if (o.format === 'kohya') return Object.assign({}, ...setList(sets).map((s) => s.fileTensors(weights, o.dtype)));
  if (o.spec.algo === 'LoKr') throw new Error('format: diffusers loads no LoKr files; save LoKr in kohya (LyCORIS) format, which ComfyUI and A1111/Forge load');
  const out: Record<string, TensorToWrite> = {};
  const comps = componentsOf(family, o.config);
  const pairs = [[comps.denoiser, sets.denoiser] as const, ...sets.text.map((s, i) => [comps.text[i], s] as const)];
  for (const [comp, set] of pairs) {
    const component = comp.peftPrefix;
    for (const m of set.modules) {
      const down = weights[`${m.name}.lora_down.weight`], up = weights[`${m.name}.lora_up.weight`];
      if (!down || !up) throw new Error(`adapter weights lack '${m.name}.lora_down.weight' or '.lora_up.weight'`);
      const keys = diffusersKeys(component, comp.modulePath?.peft?.(m.info.module) ?? m.info.module);
      const B = Float32Array.from(up.data as Float32Array, (v) => v * m.scale);
      out[keys.down] = { dtype: o.dtype, shape: down.shape, data: down.data as Float32Array };
      out[keys.up] = { dtype: o.dtype, shape: up.shape, data: B };
    }
  }
  return out;
}

/** Writes the file (to a temporary name, then renamed into place). */
export async function saveLoraFile(path: string, o: SaveLoraOptions): Promise<void> {
  await writeSafetensors(path, loraFileTensors(o), o.metadata);
}

// ---- reading -----------------------------------------------------------------------------------------

export interface LoadedLora {
  spec: AdapterSpec;
  /** Float32 weights by kohya name, rescaled so the spec's alpha gives each module its file's scale. */
  weights: Record<string, HostTensor>;
  metadata: Record<string, string>;
  format: LoraFormat;
}

/** What base model a LoRA file's metadata or names point to, when it is not the loaded model's family. */
function otherBaseModel(family: ModelFamily, config: unknown, keys: string[], meta: Record<string, string>, namesAreTheFamilys = false): string | undefined {
  const version = meta.ss_base_model_version ?? meta['modelspec.architecture'];
  // The variant's own stem too: musubi-tuner names a FLUX.2 [dev] LoRA Flux.2-dev/lora, the family's stem is Flux.2-klein.
  const variant = config !== undefined ? family.modelspecArchitectureOf?.(config) : undefined;
  if (version && ![family.baseModelVersion, family.modelspecArchitecture, variant].some((v) => v && version.startsWith(v))) return version;
  if (namesAreTheFamilys) return undefined;
  if (meta.ss_v2 === 'True') return 'sd_v2';
  const prefixes = family.loraComponents(config).map((c) => c.kohyaPrefix);
  if (!prefixes.includes('lora_te1') && keys.some((k) => /^lora_te[12]_/.test(k))) return 'SDXL (lora_te1_/lora_te2_ text encoders)';
  if (prefixes.includes('lora_unet') && keys.some((k) => /^(lora_transformer_|transformer\.|diffusion_model\.(double|single)_blocks)/.test(k))) return 'a DiT model (Flux/SD3-style names)';
  return undefined;
}

interface FileModule { ref: FamilyModuleRef; kohya: string; tensors: Map<string, RawTensor> }

/**
 * Reads a kohya, diffusers or PEFT LoRA file for a model of `family` and `config` (default SD 1.x). Every module in the file must exist in
 * the model; unsupported layouts (LoHa, DoRA, mixed ranks outside a family's own layout) are refused by name.
 */
export async function readLoraFile(path: string, config: unknown, family: ModelFamily = familyById('sd1')): Promise<LoadedLora> {
  let file;
  try { file = await loadSafetensors(path); } catch (e) { throw new Error(`${path}: not a readable safetensors file: ${(e as Error).message}`); }
  const keys = [...file.tensors.keys()];
  const fam = detectFamily(keys, (k) => file.tensors.get(k)?.shape);
  if (fam.family !== 'lora') throw new Error(`${path}: not a LoRA file — it looks like ${fam.family === 'unknown' ? 'no known layout' : `a ${FAMILY_LABELS[fam.family]}`} (${fam.reason})`);
  // A layout of the family's own (FLUX's ai-toolkit / diffusers names) is read by the family.
  const ownFormat = family.loraFiles?.formatOf(keys);
  const other = otherBaseModel(family, config, keys, file.metadata, ownFormat !== undefined);
  if (other) throw new Error(`${path}: this LoRA was made for ${other}, not ${modelLabel(family, config)}`);
  if (ownFormat && ownFormat !== 'kohya') return readFamilyLayout(path, file, family, config, ownFormat as LoraFormat);
  const names = new FamilyLoraNames(family, config);
  const format: LoraFormat = keys.some((k) => /^(unet|text_encoder)\./.test(k)) ? 'diffusers' : 'kohya';

  // Group tensors by module.
  const modules = new Map<string, FileModule>();
  for (const [key, raw] of file.tensors) {
    let ref: FamilyModuleRef | undefined, suffix: string;
    if (format === 'diffusers') {
      const p = parseDiffusersKey(key);
      const d = p && names.fromDiffusers(`${p.component}.${p.module}`);
      if (!d && !/^(unet|text_encoder)\..*(lora_[AB]\.weight|lora\.(down|up)\.weight|lora_linear_layer\.(down|up)\.weight)$/.test(key)) {
        throw new Error(`${path}: unexpected tensor '${key}' in a diffusers LoRA (loragraph reads lora_A/lora_B, lora.down/up and lora_linear_layer.down/up keys)`);
      }
      ref = d;
      suffix = p?.part === 'down' ? 'lora_down.weight' : 'lora_up.weight';
    } else {
      const dot = key.indexOf('.');
      suffix = key.slice(dot + 1);
      if (/^hada_/.test(suffix)) throw new Error(`${path}: '${key}' is LoHa, which loragraph does not train or load (LoRA, LoCon, LoKr are supported)`);
      if (suffix === 'dora_scale') throw new Error(`${path}: '${key}' is DoRA, which loragraph does not load`);
      ref = names.fromKohya(key.slice(0, dot));
    }
    if (!ref) throw new Error(`${path}: module of '${key}' is not in this ${modelLabel(family, config)} model (a LoRA for another base model or model size?)`);
    const kohya = ref.kohya;
    const entry = modules.get(kohya) ?? { ref, kohya, tensors: new Map() };
    entry.tensors.set(suffix, raw);
    modules.set(kohya, entry);
  }
  const list = [...modules.values()];
  const isLokr = list.some((m) => m.tensors.has('lokr_w1') || m.tensors.has('lokr_w1_a'));
  const isBigConv = (m: FileModule) => m.ref.info.kind === 'conv' && (m.ref.info.kernel[0] > 1 || m.ref.info.kernel[1] > 1);
  const alphaOf = (m: FileModule, rank: number) => {
    const a = m.tensors.get('alpha');
    return format === 'diffusers' || !a ? rank : loraTensorToFloat32(path, `${m.kohya}.alpha`, a)[0];
  };

  // One rank for linear modules and one for 3×3 convs, as kohya's network_dim / conv_dim.
  const rankOf = (m: FileModule): number | undefined => {
    if (isLokr) return m.tensors.get('lokr_w2_a')?.shape[1] ?? m.tensors.get('lokr_w1_a')?.shape[1];
    const down = m.tensors.get('lora_down.weight');
    if (!down || !m.tensors.has('lora_up.weight')) throw new Error(`${path}: module '${m.kohya}' lacks lora_down or lora_up`);
    return down.shape[0];
  };
  const pick = (group: FileModule[], what: string) => {
    const ranks = [...new Set(group.map(rankOf).filter((r): r is number => r !== undefined))];
    if (ranks.length > 1) throw new Error(`${path}: ${what} modules have different ranks (${ranks.join(', ')}); loragraph loads one rank per kind`);
    const rank = ranks[0];
    const alphas = group.map((m) => alphaOf(m, rank ?? 1));
    return { rank, alpha: alphas[0] ?? rank };
  };
  const linear = pick(list.filter((m) => !isBigConv(m)), 'linear');
  const conv = pick(list.filter(isBigConv), '3×3 conv');

  let factor = -1, fullMatrix = false;
  if (isLokr) {
    if (list.some((m) => m.tensors.has('lokr_w1_a'))) throw new Error(`${path}: LoKr with a decomposed w1 (lokr_w1_a) is not supported`);
    fullMatrix = list.some((m) => m.tensors.has('lokr_w2')) && linear.rank === undefined;
    factor = lokrFactor(list, path);
  }
  const rank = linear.rank ?? conv.rank ?? Math.round(linear.alpha ?? conv.alpha ?? 1);
  const spec: AdapterSpec = Object.freeze({
    kind: 'adapter' as const,
    algo: isLokr ? 'LoKr' as const : list.some(isBigConv) ? 'LoCon' as const : 'LoRA' as const,
    rank,
    alpha: linear.alpha ?? rank,
    convRank: conv.rank ?? rank,
    convAlpha: conv.alpha ?? conv.rank ?? rank,
    dropout: 0,
    factor,
    fullMatrix,
    preset: 'all_linear_conv' as const,
    include: Object.freeze(list.map((m) => m.ref.module)),
    exclude: Object.freeze([] as string[]),
    trainTextEncoder: list.some((m) => m.ref.text),
    byteSize: () => 512 + list.length * 128,
  });

  const sets = adapterSetsFor(spec, { family, config });
  const weights: Record<string, HostTensor> = {};
  for (const set of setList(sets)) {
    for (const m of set.modules) {
      const fm = modules.get(m.name);
      if (!fm) throw new Error(`${path}: internal: module '${m.name}' selected but not in the file`);
      // The file's alpha may differ per module from the spec's: fold the ratio into the zero-initialised factor.
      // LoKr with both factors whole always has scale 1 (LyCORIS ignores alpha there).
      const bothWhole = isLokr && m.params.some((p) => p.key.endsWith('.lokr_w1')) && m.params.some((p) => p.key.endsWith('.lokr_w2'));
      const fileScale = bothWhole ? 1 : alphaOf(fm, m.rank) / m.rank;
      const ratio = format === 'diffusers' ? 1 / m.scale : fileScale / m.scale;
      for (const p of m.params) {
        const suffix = p.key.slice(m.name.length + 1);
        const raw = fm.tensors.get(suffix);
        if (!raw) throw new Error(`${path}: module '${m.name}' lacks '${suffix}' (expected by a ${spec.algo} of rank ${m.rank})`);
        if (raw.shape.reduce((a, b) => a * b, 1) !== p.shape.reduce((a, b) => a * b, 1)) throw new Error(`${path}: tensor '${m.name}.${suffix}' has shape [${raw.shape}], expected [${p.shape}]`);
        let data = loraTensorToFloat32(path, `${m.name}.${suffix}`, raw);
        const scaled = /lora_up|lokr_w2(_b)?$/.test(suffix) && ratio !== 1;
        if (scaled) data = Float32Array.from(data, (v) => v * ratio);
        else if (data === raw.data) data = data.slice();
        weights[p.key] = { dtype: 'float32', shape: [...p.shape], data };
      }
    }
  }
  return { spec, weights, metadata: file.metadata, format };
}

/**
 * A file in one of the family's own layouts: the family reads its modules (fused projections fused back),
 * and they become a LoRA spec over exactly those modules, one rank; each module's own alpha / rank is
 * folded into its up weights relative to the spec's. Modules of lower rank than the highest (a fused qkv
 * read from q, k, v of their own downs has rank Σ ranks; per-block ranks) are padded with zero down rows
 * and up columns: the same product, so the same delta.
 */
function readFamilyLayout(path: string, file: { tensors: Map<string, RawTensor>; metadata: Record<string, string> }, family: ModelFamily, config: unknown, format: LoraFormat): LoadedLora {
  const tensors = new Map<string, HostTensor>([...file.tensors].map(([k, raw]) => [k, { dtype: 'float32', shape: [...raw.shape], data: loraTensorToFloat32(path, k, raw) }]));
  let modules: Map<string, LoraModuleWeights>;
  try { modules = family.loraFiles!.read(config, tensors); } catch (e) { throw new Error(`${path}: ${(e as Error).message}`); }
  if (modules.size === 0) throw new Error(`${path}: no LoRA modules found in this ${format} file`);
  const ranks = [...new Set([...modules.values()].map((m) => m.rank))];
  const rank = Math.max(...ranks);
  const first = modules.values().next().value!;
  // One rank: the file's alpha as it is; padded ranks: the first module's scale at the common rank.
  const alpha = ranks.length === 1 ? first.alpha : (first.alpha / first.rank) * rank;
  const spec: AdapterSpec = Object.freeze({
    kind: 'adapter' as const, algo: 'LoRA' as const, rank, alpha, convRank: rank, convAlpha: alpha, dropout: 0, factor: -1, fullMatrix: false,
    preset: 'all_linear_conv' as const, include: Object.freeze([...modules.keys()]), exclude: Object.freeze([] as string[]), trainTextEncoder: false,
    byteSize: () => 512 + modules.size * 128,
  });
  const sets = adapterSetsFor(spec, { family, config });
  if (sets.denoiser.modules.length !== modules.size) throw new Error(`${path}: ${modules.size} modules in the file, ${sets.denoiser.modules.length} of them adaptable in this ${modelLabel(family, config)} model`);
  const weights: Record<string, HostTensor> = {};
  for (const m of sets.denoiser.modules) {
    const fm = modules.get(m.info.module)!;
    const ratio = fm.alpha / fm.rank / m.scale;
    const down = new Float32Array(rank * fm.inFeatures);
    down.set(fm.down);
    const up = new Float32Array(fm.outFeatures * rank);
    for (let o = 0; o < fm.outFeatures; o++) for (let r = 0; r < fm.rank; r++) up[o * rank + r] = fm.up[o * fm.rank + r] * ratio;
    weights[`${m.name}.lora_down.weight`] = { dtype: 'float32', shape: [rank, fm.inFeatures], data: down };
    weights[`${m.name}.lora_up.weight`] = { dtype: 'float32', shape: [fm.outFeatures, rank], data: up };
  }
  return { spec, weights, metadata: file.metadata, format };
}

/** The LoKr factor that reproduces every module's w1 shape (−1 when LyCORIS' default split does). */
function lokrFactor(list: FileModule[], path: string): number {
  const shapes = list.map((m) => {
    const info = m.ref.info;
    const out = info.kind === 'linear' ? info.outFeatures : info.outChannels;
    const inp = info.kind === 'linear' ? info.inFeatures : info.inChannels;
    return { out, inp, w1: m.tensors.get('lokr_w1')!.shape };
  });
  const fits = (f: number) => shapes.every((s) => factorization(s.out, f)[0] === s.w1[0] && factorization(s.inp, f)[0] === s.w1[1]);
  const candidates = [-1, ...new Set(shapes.flatMap((s) => s.w1))].sort((a, b) => a - b);
  const found = candidates.find(fits);
  if (found === undefined) throw new Error(`${path}: the LoKr factors' shapes do not follow one factor setting`);
  return found;
}

/** Reads a LoRA file for a loaded model (its family's names, in kohya or diffusers layouts). */
export function readLoraFileFor(path: string, model: { family: ModelFamily; config: unknown }): Promise<LoadedLora> {
  return readLoraFile(path, model.config, model.family);
}
