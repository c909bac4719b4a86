// The families loragraph trains, and the one way nodes find them: from a checkpoint (detected by its
// tensor names or a diffusers folder's model_index.json) or from an id. Adding a family = its folder of
// kernels/ implementing contract.ts plus one line in FAMILIES below; families that are recognised but
// not implemented yet are refused with their name.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors } from '../io/safetensors';
import type { ModelFamily } from './contract';
import { detectFamily, familyOfPipelineClass, FAMILY_LABELS, withArticle, type DetectedFamily, type FamilyEvidence } from './detect';
import { sd1Family } from '../sd/sd1-family';
import { sdxlFamily } from '../sdxl/family';
import { flux2Family } from '../flux/family';
import { flux1Family } from '../flux/family1';
import { wanFamily } from '../wan/family';

/** Every trainable family, by id. Detection ids (detect.ts) equal these ids. */
const FAMILIES: readonly ModelFamily[] = [sd1Family, sdxlFamily, flux2Family, flux1Family, wanFamily];

const byId = new Map<string, ModelFamily>(FAMILIES.map((f) => [f.id, f]));

/** Registers a family at run time (tests of a family under construction; normal families are listed above). */
export function registerFamily(family: ModelFamily): void {
  const known = byId.get(family.id);
  if (known && known !== family) throw new Error(`model family '${family.id}' is registered twice`);
  byId.set(family.id, family);
}

export function trainableFamilies(): ModelFamily[] { return [...byId.values()]; }

/** Every preview sampler some family offers (the Sampler widget's choices), first family's first. */
export function previewSamplers(): string[] {
  return [...new Set(FAMILIES.flatMap((f) => f.samplers))];
}

/** Every scheduler some family steps on (the Sampler widget's choices), `auto` (each family's own) first. */
export function previewSchedulers(): string[] {
  return [...new Set(['auto', ...FAMILIES.flatMap((f) => f.schedulers ?? [])])];
}

/** The label of any detected or registered id, for messages. */
export function familyLabel(id: string): string {
  return byId.get(id)?.label ?? FAMILY_LABELS[id as DetectedFamily] ?? id;
}

/** A file or folder loragraph cannot train: names its family when known. */
export class UnsupportedModelError extends Error {
  constructor(readonly path: string, readonly family: DetectedFamily, reason: string) {
    const label = FAMILY_LABELS[family];
    const what = family === 'unknown' ? 'not a model loragraph recognises'
      : family === 'lora' ? 'a LoRA/LyCORIS file, not a base model (load it with Load LoRA)'
      : family === 'vae-only' || family === 'text-encoder-only' || family === 'unet-only' ? `${withArticle(label)}, not a whole checkpoint`
      : `${withArticle(label)} checkpoint, which loragraph cannot train yet (it trains ${trainableFamilies().map((f) => f.label).join(', ')})`;
    super(`${path}: this is ${what} (${reason})`);
    this.name = 'UnsupportedModelError';
  }
}

/** The family id with the trainable family when there is one. */
export function familyById(id: string): ModelFamily {
  const f = byId.get(id);
  if (!f) throw new Error(`model family '${id}' (${familyLabel(id)}) is not one loragraph trains (${[...byId.keys()].join(', ')})`);
  return f;
}

function readJson(path: string): Record<string, unknown> | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>; } catch { return undefined; }
}

/** Detection for a diffusers folder: model_index.json's pipeline class, else the denoiser's config and keys. */
async function detectFolder(folder: string): Promise<FamilyEvidence> {
  const index = readJson(join(folder, 'model_index.json'));
  const cls = String(index?._class_name ?? '');
  const fromClass = cls ? familyOfPipelineClass(cls) : undefined;
  if (fromClass) return { family: fromClass, reason: `model_index.json: ${cls}` };
  const unet = readJson(join(folder, 'unet', 'config.json'));
  if (unet) {
    if (unet.addition_embed_type === 'text_time') return { family: 'sdxl', reason: "unet/config.json: addition_embed_type 'text_time'" };
    if (unet.cross_attention_dim === 1024) return { family: 'sd2', reason: 'unet/config.json: cross_attention_dim 1024' };
    return { family: 'sd1', reason: cls ? `model_index.json: ${cls}` : 'unet/config.json' };
  }
  for (const part of ['transformer', 'unet']) {
    for (const f of ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors']) {
      const file = join(folder, part, f);
      if (existsSync(file)) return detectFile(file);
    }
    // Sharded (diffusion_pytorch_model-00001-of-00004.safetensors, as FLUX's transformers ship): all shards' names together.
    const dir = join(folder, part);
    const shards = existsSync(dir) && statSync(dir).isDirectory() ? readdirSync(dir).filter((f) => /^diffusion_pytorch_model.*\.safetensors$/.test(f)).sort() : [];
    if (shards.length) return detectFiles(shards.map((f) => join(dir, f)));
  }
  return { family: 'unknown', reason: 'no model_index.json, unet/ or transformer/ found' };
}

async function detectFile(file: string): Promise<FamilyEvidence> {
  const reader = await openSafetensors(file);
  try {
    return detectFamily(reader.names(), (k) => (reader.has(k) ? reader.entry(k).shape : undefined));
  } finally {
    await reader.close();
  }
}

/** Detection over the names of several files read as one (a sharded diffusers part). */
async function detectFiles(files: string[]): Promise<FamilyEvidence> {
  const shapes = new Map<string, readonly number[]>();
  for (const file of files) {
    const reader = await openSafetensors(file);
    try { for (const k of reader.names()) shapes.set(k, reader.entry(k).shape); } finally { await reader.close(); }
  }
  return detectFamily([...shapes.keys()], (k) => shapes.get(k));
}

/** What a checkpoint file or diffusers folder is (reads only headers and config files). */
export async function detectCheckpoint(path: string): Promise<FamilyEvidence> {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
  return statSync(path).isDirectory() ? detectFolder(path) : detectFile(path);
}

/** The trainable family of a checkpoint, or an UnsupportedModelError naming what it is. */
export async function familyOfCheckpoint(path: string): Promise<{ family: ModelFamily; evidence: FamilyEvidence }> {
  const evidence = await detectCheckpoint(path);
  const family = byId.get(evidence.family);
  if (!family) throw new UnsupportedModelError(path, evidence.family, evidence.reason);
  return { family, evidence };
}

export { detectFamily, FAMILY_LABELS, withArticle, type DetectedFamily, type FamilyEvidence } from './detect';
export type * from './contract';
export { modelLabel } from './contract';
