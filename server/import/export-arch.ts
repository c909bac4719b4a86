// Which FLUX.2 release a training graph trains, for `loragraph export`'s ai-toolkit arch (klein 4B:
// flux2_klein_4b, klein 9B: flux2_klein_9b, dev: flux2 — ai-toolkit's Flux2Model). Load Model's family
// widget says FLUX.2 and no more, so the files the graph names are read (headers only): the checkpoint
// Load Model opens, as ComfyUI detects the base (txt_in width, block counts), else a LoRA file the Train
// continues from (Load LoRA), whose module widths and block indices fit one release only.
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openSafetensors } from '../../kernels/io/safetensors';
import { detectFluxTransformer } from '../../kernels/flux/detect';
import { indexSafetensors } from '../../kernels/flux/load';
import { flux2VariantOfLora } from '../../kernels/flux/lora';
import { flux2Label, type FluxTransformerConfig } from '../../kernels/flux/config';
import type { ApiGraph } from '../protocol';
import { resolveProjectPath, type ProjectPaths } from '../paths';

export interface DetectedArch {
  arch: string;
  /** The file and what in it told the release, for the export's notes. */
  from: string;
}

/** ai-toolkit's arch of each FLUX.2 release, by loragraph's config name. */
export const FLUX2_AI_TOOLKIT_ARCH: Readonly<Record<string, string>> = { 'flux2-klein-4b': 'flux2_klein_4b', 'flux2-klein-9b': 'flux2_klein_9b', 'flux2-dev': 'flux2' };

const sizes = (c: FluxTransformerConfig) => `width ${c.hiddenSize}, ${c.depthDouble} double + ${c.depthSingle} single blocks`;

/** A FLUX.2 checkpoint's release: a transformer file, or a diffusers folder's transformer/ (shards together). */
export async function flux2ArchOfCheckpoint(path: string): Promise<DetectedArch | undefined> {
  if (!existsSync(path)) return undefined;
  const dir = statSync(path).isDirectory();
  const at = dir && existsSync(join(path, 'transformer')) ? join(path, 'transformer') : path;
  const index = await indexSafetensors(at).catch(() => undefined);
  if (!index) return undefined;
  const flux = detectFluxTransformer([...index.tensors.keys()], (k) => index.tensors.get(k)?.entry.shape);
  const arch = flux?.variant && FLUX2_AI_TOOLKIT_ARCH[flux.variant];
  return arch ? { arch, from: `${basename(path)}: ${flux2Label(flux.config)} (${sizes(flux.config)})` } : undefined;
}

/** A FLUX.2 LoRA file's release, from its own module names and shapes. */
export async function flux2ArchOfLora(path: string): Promise<DetectedArch | undefined> {
  if (!existsSync(path) || statSync(path).isDirectory()) return undefined;
  const r = await openSafetensors(path).catch(() => undefined);
  if (!r) return undefined;
  try {
    const shapes = new Map(r.header.entries.map((e) => [e.name, e.shape]));
    const cfg = flux2VariantOfLora([...shapes.keys()], (k) => shapes.get(k));
    return cfg ? { arch: FLUX2_AI_TOOLKIT_ARCH[cfg.name]!, from: `${basename(path)}: a LoRA of ${flux2Label(cfg)} (${sizes(cfg)})` } : undefined;
  } finally {
    await r.close();
  }
}

/** The node a link input points at. */
function linked(api: ApiGraph, id: string | undefined, input: string): [string, ApiGraph[string]] | undefined {
  const v = id === undefined ? undefined : api[id]?.inputs[input];
  if (!Array.isArray(v) || v.length !== 2) return undefined;
  const to = String(v[0]);
  return api[to] ? [to, api[to]] : undefined;
}

/**
 * The release the graph's Train trains, from its Load Model's checkpoint (through a Quantize), else the
 * LoRA of a Load LoRA feeding its `training`; undefined when the graph names no readable FLUX.2 file.
 */
export async function flux2ArchOfGraph(api: ApiGraph, paths: ProjectPaths): Promise<DetectedArch | undefined> {
  const train = Object.entries(api).find(([, n]) => n.class_type === 'Train');
  if (!train) return undefined;
  let model = linked(api, train[0], 'model');
  if (model?.[1].class_type === 'Quantize') model = linked(api, model[0], 'model');
  const resolve = (kind: 'models' | 'lora', p: unknown) => {
    if (typeof p !== 'string' || p.startsWith('builtin:')) return undefined;
    try { return resolveProjectPath(paths, kind, p); } catch { return undefined; }
  };
  const checkpoint = model?.[1].class_type === 'LoadModel' ? resolve('models', model[1].inputs.checkpoint) : undefined;
  const fromBase = checkpoint ? await flux2ArchOfCheckpoint(checkpoint) : undefined;
  if (fromBase) return fromBase;
  const lora = linked(api, train[0], 'training');
  const loraFile = lora?.[1].class_type === 'LoadLora' ? resolve('lora', lora[1].inputs.loraFile) : undefined;
  return loraFile ? flux2ArchOfLora(loraFile) : undefined;
}
