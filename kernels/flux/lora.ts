// FLUX LoRA targets and file formats. Targets are chosen over BFL module paths; files are written
// and read in the three layouts the ecosystem loads:
//   ai-toolkit   diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight / .lora_B.weight (no alpha: scale 1)
//   kohya        lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight / .lora_up.weight / .alpha
//   diffusers    transformer.transformer_blocks.0.attn.to_q.lora_A.weight / .lora_B.weight (PEFT, scale 1)
// diffusers keeps q, k, v apart where BFL fuses them: a fused module's LoRA becomes one per part with
// the same down matrix and the rows of the up matrix; parts read back are fused again (the shared down
// matrix when they agree, else stacked downs and a block-diagonal up of rank Σ ranks — the same product
// either way; each part's own alpha / rank, when the file states one, is folded into its up rows first).
// diffusers' final-layer modulation is (scale, shift) where BFL's is (shift, scale): its up rows swap halves.
import type { HostTensor } from '../tensor';
import type { LinearInfo } from '../nn/builder';
import type { TargetSpec } from '../adapters/targets';
import type { FamilyLoraFiles } from '../families/contract';
import { FLUX2_DEV, FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, type FluxTransformerConfig } from './config';
import { fluxKeyMapping, fluxModuleMapping } from './keys';
import { fluxTransformerShapes } from './shapes';

export type FluxTargetPreset = 'ai_toolkit' | 'attention' | 'all_linear';
export const FLUX_TARGET_PRESETS: readonly FluxTargetPreset[] = ['ai_toolkit', 'attention', 'all_linear'];

/**
 * What each preset trains, as a TargetSpec over BFL module paths:
 * `ai_toolkit` — ai-toolkit's default for FLUX: both streams' qkv, proj, mlp.0, mlp.2 in double blocks
 * and linear1, linear2 in single blocks (112 modules for klein 9B);
 * `attention` — the double blocks' attention projections (qkv, proj); single blocks fuse attention
 * into linear1/linear2 together with the MLP, so they have no attention-only layer;
 * `all_linear` — every linear layer, embedders, modulations and the final layer included.
 */
export function fluxTargetSpec(preset: FluxTargetPreset): TargetSpec {
  switch (preset) {
    case 'ai_toolkit': return { preset: 'all_linear', include: ['/^double_blocks\\.\\d+\\.(img|txt)_(attn\\.(qkv|proj)|mlp\\.[02])$|^single_blocks\\.\\d+\\.linear[12]$/'] };
    case 'attention': return { preset: 'all_linear', include: ['/^double_blocks\\.\\d+\\.(img|txt)_attn\\.(qkv|proj)$/'] };
    case 'all_linear': return { preset: 'all_linear' };
    default: throw new Error(`unknown FLUX target preset '${String(preset)}' (expected ${FLUX_TARGET_PRESETS.join(', ')})`);
  }
}

export type FluxLoraFormat = 'ai-toolkit' | 'kohya' | 'diffusers';
export const FLUX_LORA_FORMATS: readonly FluxLoraFormat[] = ['ai-toolkit', 'kohya', 'diffusers'];

/** One module's LoRA as float32: delta W = up · down · alpha / rank. */
export interface FluxLoraModule { down: Float32Array; up: Float32Array; rank: number; inFeatures: number; outFeatures: number; alpha: number }

/** kohya's name of a BFL module path. */
export const fluxKohyaName = (module: string) => `lora_unet_${module.replace(/\./g, '_')}`;

interface Tables {
  linears: Map<string, LinearInfo>;
  byKohya: Map<string, string>;
  toDiffusers: Map<string, { module: string; rows: [number, number] }[]>;
  fromDiffusers: Map<string, { bfl: string; rows: [number, number]; parts: number }>;
  /** BFL modules whose diffusers weight has its row halves swapped (final layer modulation). */
  swapped: Set<string>;
}

const tableCache = new WeakMap<FluxTransformerConfig, Tables>();
function tables(cfg: FluxTransformerConfig): Tables {
  let t = tableCache.get(cfg);
  if (t) return t;
  const linears = new Map(fluxTransformerShapes(cfg).modules.filter((m): m is LinearInfo => m.kind === 'linear').map((m) => [m.module, m]));
  const toDiffusers = fluxModuleMapping(cfg);
  const fromDiffusers = new Map<string, { bfl: string; rows: [number, number]; parts: number }>();
  for (const [bfl, parts] of toDiffusers) for (const p of parts) fromDiffusers.set(p.module, { bfl, rows: p.rows, parts: parts.length });
  const swapped = new Set(fluxKeyMapping(cfg).filter((m) => m.swapHalves && m.bfl.endsWith('.weight')).map((m) => m.bfl.slice(0, -'.weight'.length)));
  t = { linears, byKohya: new Map([...linears.keys()].map((m) => [fluxKohyaName(m), m])), toDiffusers, fromDiffusers, swapped };
  tableCache.set(cfg, t);
  return t;
}

const f32 = (t: HostTensor, key: string): Float32Array => {
  if (t.dtype !== 'float32') throw new Error(`LoRA tensor '${key}' must be converted to float32 first (got ${t.dtype})`);
  return t.data as Float32Array;
};
const tensor = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });

/** An [out, rank] up matrix with its two row halves exchanged (its own inverse). */
function swapUpHalves(up: Float32Array, rank: number): Float32Array {
  const rows = up.length / rank;
  if (rows % 2) throw new Error(`an up matrix of ${rows} rows has no halves to swap`);
  const half = (rows / 2) * rank;
  const out = new Float32Array(up.length);
  out.set(up.subarray(half), 0);
  out.set(up.subarray(0, half), half);
  return out;
}

/** Writes modules (keyed by BFL path) in a format. Formats without alpha get the scale folded into `up`. */
export function writeFluxLora(cfg: FluxTransformerConfig, modules: ReadonlyMap<string, FluxLoraModule>, format: FluxLoraFormat): Map<string, HostTensor> {
  const t = tables(cfg);
  const out = new Map<string, HostTensor>();
  for (const [module, m] of modules) {
    const info = t.linears.get(module);
    if (!info) throw new Error(`'${module}' is not a linear layer of ${cfg.name}`);
    if (info.inFeatures !== m.inFeatures || info.outFeatures !== m.outFeatures) throw new Error(`LoRA for '${module}' is ${m.outFeatures}×${m.inFeatures}, the layer is ${info.outFeatures}×${info.inFeatures}`);
    if (format === 'kohya') {
      const n = fluxKohyaName(module);
      out.set(`${n}.lora_down.weight`, tensor([m.rank, m.inFeatures], m.down));
      out.set(`${n}.lora_up.weight`, tensor([m.outFeatures, m.rank], m.up));
      out.set(`${n}.alpha`, tensor([], Float32Array.of(m.alpha)));
      continue;
    }
    const scale = m.alpha / m.rank;
    let up = scale === 1 ? m.up : m.up.map((v) => v * scale);
    if (format === 'ai-toolkit') {
      out.set(`diffusion_model.${module}.lora_A.weight`, tensor([m.rank, m.inFeatures], m.down));
      out.set(`diffusion_model.${module}.lora_B.weight`, tensor([m.outFeatures, m.rank], up));
      continue;
    }
    if (t.swapped.has(module)) up = swapUpHalves(up, m.rank);
    for (const p of t.toDiffusers.get(module)!) {
      out.set(`transformer.${p.module}.lora_A.weight`, tensor([m.rank, m.inFeatures], m.down));
      out.set(`transformer.${p.module}.lora_B.weight`, tensor([p.rows[1] - p.rows[0], m.rank], up.slice(p.rows[0] * m.rank, p.rows[1] * m.rank)));
    }
  }
  return out;
}

/** Which format a file's tensor names are in (undefined when none fits). */
export function fluxLoraFormatOf(keys: Iterable<string>): FluxLoraFormat | undefined {
  for (const k of keys) {
    // By prefix, not block names: a LoRA of only the embedders or final layer is one too.
    if (/^lora_unet_/.test(k)) return 'kohya';
    if (/^diffusion_model\./.test(k)) return 'ai-toolkit';
    if (/^transformer\./.test(k)) return 'diffusers';
  }
  return undefined;
}

/**
 * Whether every module of a LoRA file (names and shapes only) is a linear layer of `cfg` with the
 * file's in and out widths: its block indices exist in cfg and its down/up matrices fit.
 */
export function fluxLoraFits(cfg: FluxTransformerConfig, keys: readonly string[], shapeOf: (key: string) => readonly number[] | undefined): boolean {
  const format = fluxLoraFormatOf(keys);
  if (!format) return false;
  const t = tables(cfg);
  let modules = 0;
  for (const key of keys) {
    const m = /^(.*)\.(lora_down|lora_A)\.weight$/.exec(key);
    if (!m) continue;
    const down = shapeOf(key), up = shapeOf(`${m[1]}.${m[2] === 'lora_down' ? 'lora_up' : 'lora_B'}.weight`);
    let info: LinearInfo | undefined, rows: number | undefined;
    if (format === 'diffusers') {
      const at = t.fromDiffusers.get(m[1].slice('transformer.'.length));
      info = at && t.linears.get(at.bfl);
      rows = at && at.rows[1] - at.rows[0];
    } else {
      info = t.linears.get((format === 'kohya' ? t.byKohya.get(m[1]) : m[1].replace(/^diffusion_model\./, '')) ?? '');
      rows = info?.outFeatures;
    }
    if (!info || !down || !up || down[1] !== info.inFeatures || up[0] !== rows) return false;
    modules++;
  }
  return modules > 0;
}

/**
 * The FLUX.2 release a LoRA was trained on, from the file alone as ComfyUI tells the base apart: the one
 * release all its modules fit — klein 4B (width 3072, 5 + 20 blocks), klein 9B (4096, 8 + 24) or dev
 * (6144, 8 + 48); no two share a width, so one module is enough. undefined when none fits.
 */
export function flux2VariantOfLora(keys: readonly string[], shapeOf: (key: string) => readonly number[] | undefined): FluxTransformerConfig | undefined {
  const fits = [FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, FLUX2_DEV].filter((c) => fluxLoraFits(c, keys, shapeOf));
  return fits.length === 1 ? fits[0] : undefined;
}

/** Reads a FLUX LoRA in any of the three formats into modules keyed by BFL path (float32 tensors). */
export function readFluxLora(cfg: FluxTransformerConfig, tensors: ReadonlyMap<string, HostTensor>): Map<string, FluxLoraModule> {
  const format = fluxLoraFormatOf(tensors.keys());
  if (!format) throw new Error('not a FLUX LoRA: no kohya (lora_unet_double_blocks_…), ai-toolkit (diffusion_model.double_blocks.…) or diffusers (transformer.transformer_blocks.…) names');
  const t = tables(cfg);
  const get = (key: string) => { const v = tensors.get(key); if (!v) throw new Error(`LoRA file lacks '${key}'`); return v; };
  const out = new Map<string, FluxLoraModule>();
  const make = (module: string, down: HostTensor, up: HostTensor, alpha: number | undefined, key: string): FluxLoraModule => {
    const info = t.linears.get(module);
    if (!info) throw new Error(`LoRA module '${key}' is not a linear layer of ${cfg.name}`);
    const rank = down.shape[0];
    if (down.shape[1] !== info.inFeatures || up.shape[0] !== info.outFeatures || up.shape[1] !== rank) {
      throw new Error(`LoRA '${key}': down [${down.shape}] / up [${up.shape}] do not fit ${module} (${info.outFeatures}×${info.inFeatures})`);
    }
    return { down: f32(down, key), up: f32(up, key), rank, inFeatures: info.inFeatures, outFeatures: info.outFeatures, alpha: alpha ?? rank };
  };
  if (format === 'kohya' || format === 'ai-toolkit') {
    // BFL names under diffusion_model. also come with kohya's lora_down/lora_up/alpha (files saved by
    // ComfyUI and some trainers); diffusers' FLUX.2 loader takes both spellings too.
    for (const key of tensors.keys()) {
      const m = /^(.*)\.(lora_down|lora_A)\.weight$/.exec(key);
      if (!m) continue;
      const base = m[1];
      const module = format === 'kohya' ? t.byKohya.get(base) : base.replace(/^diffusion_model\./, '');
      if (!module) throw new Error(`LoRA module '${base}' names no layer of ${cfg.name}`);
      const up = get(`${base}.${m[2] === 'lora_down' ? 'lora_up' : 'lora_B'}.weight`);
      const alphaT = tensors.get(`${base}.alpha`);
      out.set(module, make(module, get(key), up, alphaT ? Number(f32(alphaT, `${base}.alpha`)[0]) : undefined, base));
    }
    return out;
  }
  // diffusers: gather the parts of each BFL module, then fuse.
  const parts = new Map<string, { rows: [number, number]; down: HostTensor; up: HostTensor }[]>();
  for (const key of tensors.keys()) {
    if (!key.endsWith('.lora_A.weight')) continue;
    const module = key.slice('transformer.'.length, -'.lora_A.weight'.length);
    const at = t.fromDiffusers.get(module);
    if (!at) throw new Error(`LoRA module '${module}' names no layer of ${cfg.name}`);
    const list = parts.get(at.bfl) ?? [];
    const down = get(key);
    let up = get(`transformer.${module}.lora_B.weight`);
    if (up.shape[0] !== at.rows[1] - at.rows[0] || up.shape[1] !== down.shape[0]) {
      throw new Error(`LoRA '${module}': down [${down.shape}] / up [${up.shape}] do not fit its ${at.rows[1] - at.rows[0]} rows of ${at.bfl}`);
    }
    // PEFT files carry no alpha (scale 1); converted ones may, per part: fold it so the parts fuse at scale 1.
    const alphaT = tensors.get(`transformer.${module}.alpha`);
    const scale = alphaT ? Number(f32(alphaT, `transformer.${module}.alpha`)[0]) / down.shape[0] : 1;
    if (scale !== 1) up = tensor(up.shape, f32(up, module).map((v) => v * scale));
    list.push({ rows: at.rows, down, up });
    parts.set(at.bfl, list);
  }
  for (const [bfl, list] of parts) {
    const expected = t.toDiffusers.get(bfl)!;
    if (list.length !== expected.length) throw new Error(`LoRA has ${list.length} of the ${expected.length} parts of '${bfl}' (${expected.map((p) => p.module).join(', ')}); partial fused layers are not supported`);
    list.sort((a, b) => a.rows[0] - b.rows[0]);
    const [down, up] = fuseParts(list);
    const bflUp = t.swapped.has(bfl) ? tensor(up.shape, swapUpHalves(f32(up, bfl), up.shape[1])) : up;
    out.set(bfl, make(bfl, down, bflUp, undefined, bfl));
  }
  return out;
}

/** Parts [rows, down, up] → one down/up pair with the same product (shared down when the parts agree). */
function fuseParts(list: { rows: [number, number]; down: HostTensor; up: HostTensor }[]): [HostTensor, HostTensor] {
  if (list.length === 1) return [list[0].down, list[0].up];
  const d0 = list[0].down.data as Float32Array;
  const shared = list.every((p) => p.down.shape.join() === list[0].down.shape.join() && (p.down.data as Float32Array).every((v, i) => v === d0[i]));
  const out = list[list.length - 1].rows[1];
  if (shared) {
    const r = list[0].down.shape[0];
    const up = new Float32Array(out * r);
    for (const p of list) up.set(p.up.data as Float32Array, p.rows[0] * r);
    return [list[0].down, tensor([out, r], up)];
  }
  const ranks = list.map((p) => p.down.shape[0]);
  const total = ranks.reduce((a, b) => a + b, 0);
  const inF = list[0].down.shape[1];
  const down = new Float32Array(total * inF);
  const up = new Float32Array(out * total);
  let col = 0;
  list.forEach((p, i) => {
    down.set(p.down.data as Float32Array, col * inF);
    const u = p.up.data as Float32Array;
    for (let r = p.rows[0]; r < p.rows[1]; r++) for (let c = 0; c < ranks[i]; c++) up[r * total + col + c] = u[(r - p.rows[0]) * ranks[i] + c];
    col += ranks[i];
  });
  return [tensor([total, inF], down), tensor([out, total], up)];
}

/** delta W = up · down · alpha / rank as a dense [out, in] matrix (tests, merging). */
export function fluxLoraDelta(m: FluxLoraModule): Float32Array {
  const w = new Float32Array(m.outFeatures * m.inFeatures);
  const s = m.alpha / m.rank;
  for (let o = 0; o < m.outFeatures; o++) for (let r = 0; r < m.rank; r++) {
    const u = m.up[o * m.rank + r] * s;
    if (u === 0) continue;
    for (let i = 0; i < m.inFeatures; i++) w[o * m.inFeatures + i] += u * m.down[r * m.inFeatures + i];
  }
  return w;
}

/**
 * FLUX's LoRA files behind the family contract: ai-toolkit (FLUX.2: `diffusion_model.` BFL names; FLUX.1:
 * ai-toolkit trains diffusers' FluxTransformer2DModel and saves its PEFT names, so the diffusers layout),
 * kohya and diffusers. Where each loads completely is what tests/fixtures/lora-keymaps/flux{1,2}.json
 * derive from the loaders, for ai-toolkit's default targets.
 */
export function fluxLoraFiles<C extends { transformer: FluxTransformerConfig }>(generation: 1 | 2): FamilyLoraFiles<C> {
  const layout = (format: string): FluxLoraFormat => {
    if (!(FLUX_LORA_FORMATS as readonly string[]).includes(format)) throw new Error(`format: FLUX LoRA files are ${FLUX_LORA_FORMATS.join(', ')} (got '${format}')`);
    return generation === 1 && format === 'ai-toolkit' ? 'diffusers' : format as FluxLoraFormat;
  };
  return {
    formats: {
      'ai-toolkit': ['ai-toolkit', 'ComfyUI', 'diffusers'],
      kohya: ['ComfyUI', 'kohya sd-scripts / musubi-tuner', 'diffusers'],
      diffusers: ['diffusers', 'ComfyUI'],
    },
    defaultFormat: 'ai-toolkit',
    write: (c, modules, format) => writeFluxLora(c.transformer, modules, layout(format)),
    formatOf: (keys) => fluxLoraFormatOf(keys),
    read: (c, tensors) => readFluxLora(c.transformer, tensors),
  };
}
