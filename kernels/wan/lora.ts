// Wan LoRA targets and file formats. Targets are chosen over Wan module paths; files are written and
// read in the layouts ComfyUI loads for Wan (and the trainers write):
//   ai-toolkit     diffusion_model.blocks.0.self_attn.q.lora_A.weight / .lora_B.weight (no alpha: scale 1)
//   kohya/musubi   lora_unet_blocks_0_self_attn_q.lora_down.weight / .lora_up.weight / .alpha
//   diffusers      transformer.blocks.0.attn1.to_q.lora_A.weight / .lora_B.weight (PEFT, scale 1)
// Reading also takes `diffusion_model.….lora_down/.lora_up/.alpha` (how the lightx2v and Kijai files are
// named). Wan fuses nothing, so every diffusers module is exactly one Wan module (kernels/wan/keys.ts).
import type { HostTensor } from '../tensor';
import type { LinearInfo } from '../nn/builder';
import type { TargetSpec } from '../adapters/targets';
import type { FamilyLoraFiles } from '../families/contract';
import type { WanTransformerConfig } from './config';
import { diffusersToWan, wanToDiffusers } from './keys';
import { wanTransformerShapes } from './shapes';

export type WanTargetPreset = 'blocks' | 'attention' | 'all_linear';
export const WAN_TARGET_PRESETS: readonly WanTargetPreset[] = ['blocks', 'attention', 'all_linear'];

/**
 * What each preset trains, as a TargetSpec over Wan module paths:
 * `blocks` — every linear layer inside the attention blocks (self- and cross-attention q/k/v/o, 2.1 I2V's
 * k_img/v_img, ffn.0/ffn.2): ai-toolkit's and musubi-tuner's default (400 modules for a 14B T2V expert);
 * `attention` — the attention projections only;
 * `all_linear` — also the text/time embedders, the time projection and the head.
 */
export function wanTargetSpec(preset: WanTargetPreset): TargetSpec {
  switch (preset) {
    case 'blocks': return { preset: 'all_linear', include: ['/^blocks\\.\\d+\\.(self_attn|cross_attn|ffn)\\./'] };
    case 'attention': return { preset: 'all_linear', include: ['/^blocks\\.\\d+\\.(self_attn|cross_attn)\\.(q|k|v|o|k_img|v_img)$/'] };
    case 'all_linear': return { preset: 'all_linear' };
    default: throw new Error(`unknown Wan target preset '${String(preset)}' (expected ${WAN_TARGET_PRESETS.join(', ')})`);
  }
}

export type WanLoraFormat = 'ai-toolkit' | 'kohya' | 'diffusers';
export const WAN_LORA_FORMATS: readonly WanLoraFormat[] = ['ai-toolkit', 'kohya', 'diffusers'];

/** One module's LoRA as float32: delta W = up · down · alpha / rank. */
export interface WanLoraModule { down: Float32Array; up: Float32Array; rank: number; inFeatures: number; outFeatures: number; alpha: number }

/** kohya's / musubi-tuner's name of a Wan module path (`blocks.0.self_attn.q` → `lora_unet_blocks_0_self_attn_q`). */
export const wanKohyaName = (module: string) => `lora_unet_${module.replace(/\./g, '_')}`;

/** The name stem (before `.lora_A.weight` / `.lora_down.weight`) a format gives a Wan module. */
export function wanLoraStem(module: string, format: WanLoraFormat): string {
  switch (format) {
    case 'ai-toolkit': return `diffusion_model.${module}`;
    case 'kohya': return wanKohyaName(module);
    case 'diffusers': return `transformer.${wanToDiffusers(module)}`;
  }
}

interface Tables { linears: Map<string, LinearInfo>; byKohya: Map<string, string> }
const tableCache = new WeakMap<WanTransformerConfig, Tables>();
function tables(cfg: WanTransformerConfig): Tables {
  let t = tableCache.get(cfg);
  if (!t) {
    const linears = new Map(wanTransformerShapes(cfg).modules.filter((m): m is LinearInfo => m.kind === 'linear').map((m) => [m.module, m]));
    t = { linears, byKohya: new Map([...linears.keys()].map((m) => [wanKohyaName(m), m])) };
    tableCache.set(cfg, t);
  }
  return t;
}

const tensor = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });
const f32 = (t: HostTensor, key: string): Float32Array => {
  if (t.dtype !== 'float32') throw new Error(`LoRA tensor '${key}' must be converted to float32 first (got ${t.dtype})`);
  return t.data as Float32Array;
};

/** Writes modules (keyed by Wan path) in a format. Formats without alpha get alpha/rank folded into `up`. */
export function writeWanLora(cfg: WanTransformerConfig, modules: ReadonlyMap<string, WanLoraModule>, format: WanLoraFormat): Map<string, HostTensor> {
  const t = tables(cfg);
  const out = new Map<string, HostTensor>();
  for (const [module, m] of modules) {
    const info = t.linears.get(module);
    if (!info) throw new Error(`'${module}' is not a linear layer of ${cfg.name}`);
    if (info.inFeatures !== m.inFeatures || info.outFeatures !== m.outFeatures) throw new Error(`LoRA for '${module}' is ${m.outFeatures}×${m.inFeatures}, the layer is ${info.outFeatures}×${info.inFeatures}`);
    const stem = wanLoraStem(module, format);
    if (format === 'kohya') {
      out.set(`${stem}.lora_down.weight`, tensor([m.rank, m.inFeatures], m.down));
      out.set(`${stem}.lora_up.weight`, tensor([m.outFeatures, m.rank], m.up));
      out.set(`${stem}.alpha`, tensor([], Float32Array.of(m.alpha)));
      continue;
    }
    const scale = m.alpha / m.rank;
    out.set(`${stem}.lora_A.weight`, tensor([m.rank, m.inFeatures], m.down));
    out.set(`${stem}.lora_B.weight`, tensor([m.outFeatures, m.rank], scale === 1 ? m.up : m.up.map((v) => v * scale)));
  }
  return out;
}

const STEM = /^(?:(diffusion_model\.|transformer\.)(.+)|(lora_unet_.+))\.(lora_A|lora_down)\.weight$/;

/** The Wan module a LoRA name stem stands for, in whichever layout it is written. */
function moduleOfStem(cfg: WanTransformerConfig, prefix: string | undefined, rest: string | undefined, kohya: string | undefined): string | undefined {
  if (kohya) return tables(cfg).byKohya.get(kohya);
  // transformer.… is diffusers naming; diffusion_model.… is Wan naming (ai-toolkit, lightx2v), though
  // some tools put diffusers names there too — try both.
  const wanName = (p: string) => (tables(cfg).linears.has(p) ? p : undefined);
  const fromDiffusers = (p: string) => { try { return wanName(diffusersToWan(p)); } catch { return undefined; } };
  return prefix === 'transformer.' ? fromDiffusers(rest!) : (wanName(rest!) ?? fromDiffusers(rest!));
}

/** Reads a Wan LoRA in any of the layouts above into modules keyed by Wan path (float32 tensors). */
export function readWanLora(cfg: WanTransformerConfig, tensors: ReadonlyMap<string, HostTensor>): Map<string, WanLoraModule> {
  const t = tables(cfg);
  const get = (key: string) => { const v = tensors.get(key); if (!v) throw new Error(`LoRA file lacks '${key}'`); return v; };
  const out = new Map<string, WanLoraModule>();
  for (const key of tensors.keys()) {
    const m = key.match(STEM);
    if (!m) continue;
    const stem = key.slice(0, -`.${m[4]}.weight`.length);
    const module = moduleOfStem(cfg, m[1], m[2], m[3]);
    if (!module) throw new Error(`LoRA module '${stem}' names no linear layer of ${cfg.name}`);
    const down = get(key);
    const up = get(`${stem}.${m[4] === 'lora_A' ? 'lora_B' : 'lora_up'}.weight`);
    const info = t.linears.get(module)!;
    const rank = down.shape[0];
    if (down.shape[1] !== info.inFeatures || up.shape[0] !== info.outFeatures || up.shape[1] !== rank) {
      throw new Error(`LoRA '${stem}': down [${down.shape}] / up [${up.shape}] do not fit ${module} (${info.outFeatures}×${info.inFeatures})`);
    }
    const alphaT = tensors.get(`${stem}.alpha`);
    if (out.has(module)) throw new Error(`LoRA file holds '${module}' twice (under two names)`);
    out.set(module, { down: f32(down, key), up: f32(up, `${stem} up`), rank, inFeatures: info.inFeatures, outFeatures: info.outFeatures, alpha: alphaT ? Number(f32(alphaT, `${stem}.alpha`)[0]) : rank });
  }
  if (out.size === 0) throw new Error(`not a Wan LoRA: no ai-toolkit (diffusion_model.blocks.…), kohya/musubi (lora_unet_blocks_…) or diffusers (transformer.blocks.….attn1…) names`);
  return out;
}

/** Which Wan layout a LoRA file's names are in (undefined when none: another family's file). */
export function wanLoraFormatOf(keys: Iterable<string>): WanLoraFormat | undefined {
  for (const k of keys) {
    if (/^lora_unet_(blocks_\d+_|head_head|time_|text_embedding|img_emb)/.test(k)) return 'kohya';
    if (/^diffusion_model\.(blocks\.\d+\.(self_attn|cross_attn|ffn)|head\.head|time_|text_embedding|img_emb)/.test(k)) return 'ai-toolkit';
    if (/^transformer\.(blocks\.\d+\.(attn[12]|ffn)|condition_embedder\.|proj_out)/.test(k)) return 'diffusers';
  }
  return undefined;
}

/**
 * Save LoRA's and Load LoRA's Wan layouts. Where each loads completely (tests/fixtures/lora-keymaps/wan.json):
 * ComfyUI maps Wan LoRAs by the generic `diffusion_model.<path>` and `lora_unet_<path>` names only, so
 * diffusers-named files are for diffusers; diffusers converts ai-toolkit and musubi files on load
 * (musubi's converter wants exactly the blocks' attention + FFN layers).
 */
export function wanLoraFiles<C extends { transformer: WanTransformerConfig }>(): FamilyLoraFiles<C> {
  return {
    formats: {
      'ai-toolkit': ['ai-toolkit', 'ComfyUI', 'diffusers'],
      kohya: ['ComfyUI', 'musubi-tuner', 'diffusers'],
      diffusers: ['diffusers'],
    },
    defaultFormat: 'ai-toolkit',
    write: (c, modules, format) => {
      if (!(WAN_LORA_FORMATS as readonly string[]).includes(format)) throw new Error(`format: Wan LoRA files are ${WAN_LORA_FORMATS.join(', ')} (got '${format}')`);
      return writeWanLora(c.transformer, modules, format as WanLoraFormat);
    },
    formatOf: (keys) => wanLoraFormatOf(keys),
    read: (c, tensors) => readWanLora(c.transformer, tensors),
  };
}
