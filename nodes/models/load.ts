// Loads a checkpoint file or diffusers folder (or the built-in tiny model) into MODEL, CLIP and VAE
// values: the family is detected from the checkpoint's keys (kernels/families/registry.ts), the family
// loads and checks its tensors and finds its tokenizers, the id comes from the header.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { detectCheckpoint, familyById, familyLabel, familyOfCheckpoint } from '../../kernels/families/registry';
import type { ModelFamily } from '../../kernels/families/contract';
import type { WeightSource } from '../../kernels';
import type { ClipValue, ModelSource, ModelValue, VaeValue } from '../sockets';
import { BUILTIN_MODELS, builtinCheckpoint, builtinTiny, isBuiltinModel } from './builtin';
import { modelSourceId } from './source';
import { clipValue, modelValue, vaeValue } from './values';

export interface LoadedModel {
  family: ModelFamily;
  model: ModelValue;
  clip: ClipValue;
  vae: VaeValue;
  /** Storage dtypes of the file, e.g. ['F16']. */
  dtypes: string[];
  /** Parameter counts per part id (unet / transformer, text_encoder…, vae), for the node's text. */
  params: Record<string, number>;
}

export interface LoadModelOptions {
  clipSkip?: number;
  modelsDir?: string;
  /** A family id to load as instead of detecting one ('auto' or absent: detect); a file detected as another family is refused. */
  family?: string;
  /** Text encoder files chosen separately (ComfyUI's text_encoders/), in the family's order; undefined entries are searched for. */
  textEncoderFiles?: (string | undefined)[];
  /** A VAE file chosen separately (ComfyUI's vae/). */
  vaeFile?: string;
  /** A CLIP vision file chosen separately (ComfyUI's clip_vision/): Wan 2.1 I2V's image encoder. */
  clipVisionFile?: string;
}

/** The family a checkpoint loads as: detected, or the one chosen when detection agrees or cannot tell. */
async function familyFor(path: string, chosen: string | undefined): Promise<ModelFamily> {
  if (!chosen || chosen === 'auto') return (await familyOfCheckpoint(path)).family;
  const family = familyById(chosen);
  const evidence = await detectCheckpoint(path);
  if (evidence.family !== 'unknown' && evidence.family !== family.id) {
    throw new Error(`family: ${path} looks like ${evidence.label ?? familyLabel(evidence.family)} (${evidence.reason}), not ${family.label}; set family to auto or to its family`);
  }
  return family;
}

/** `checkpoint` is a built-in model (`builtin:tiny`, `builtin:tiny-flux`) or an absolute path already confined to the models folder. */
export async function loadModel(requested: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  // A built-in name that a caller resolved against the models folder (<models>/builtin:tiny-flux) is still
  // the built-in model, unless the user has a file of that name there.
  const checkpoint = !isBuiltinModel(requested) && isBuiltinModel(basename(requested)) && !existsSync(requested) ? basename(requested) : requested;
  const builtin = isBuiltinModel(checkpoint);
  const path = builtin ? builtinCheckpoint(checkpoint) : checkpoint;
  if (!existsSync(path)) throw new Error(`checkpoint: ${path} does not exist`);
  const isFolder = statSync(path).isDirectory();
  if (!isFolder && !path.endsWith('.safetensors')) throw new Error(`checkpoint: ${path} is not a .safetensors file or a diffusers folder (.ckpt/.pt pickles are not read)`);
  const family = await familyFor(path, opts.family);
  const separate = [...(opts.textEncoderFiles ?? []), opts.vaeFile, opts.clipVisionFile].filter((f): f is string => !!f);
  if (separate.length && !family.loadsSeparateFiles) {
    throw new Error(`${opts.clipVisionFile ? 'clipVision' : 'textEncoder/vae'}: ${family.label} checkpoints carry their own text encoders and VAE${opts.clipVisionFile ? ' and take no CLIP vision file' : ''}; leave these on auto`);
  }
  for (const f of separate) if (!existsSync(f)) throw new Error(`${f} does not exist`);
  // A user's checkpoint stays on disk: ORT reads fp32/fp16 weights straight from the file (external
  // data), so a 4 GB model is never copied into JS memory. The tiny built-in model is read in. The tiny
  // tokenizer serves test checkpoints made with its vocabulary.
  const loaded = await family.load(path, { external: !builtin, modelsDir: opts.modelsDir, fallbackTokenizerDirs: [builtinTiny.tokenizer], textEncoderFiles: opts.textEncoderFiles, vaeFile: opts.vaeFile, clipVisionFile: opts.clipVisionFile });
  // Only a model with an image branch reads a CLIP vision file (Wan 2.1 I2V and FLF2V); another would ignore it silently.
  if (opts.clipVisionFile && loaded.params.clip_vision === undefined) {
    loaded.close();
    throw new Error(`clipVision: ${basename(path)} (${family.label}) takes no CLIP vision file, only Wan 2.1 I2V and FLF2V do; leave it on auto`);
  }
  const source: ModelSource = Object.freeze({
    path: builtin ? checkpoint : path,
    label: builtin ? BUILTIN_MODELS[checkpoint].label : basename(path, extname(path)),
    family: family.id,
    id: await combinedSourceId(path, separate),
    config: loaded.config,
  });
  const cfg = loaded.config;
  const denoiserPart = family.parts(cfg).find((p) => p.role === 'denoiser')!.id;
  // Weights sit in the graphs as float32: 4 bytes per parameter.
  const bytes = (part: string) => () => (loaded.params[part] ?? 0) * 4;
  const textBytes = () => loaded.textEncoders.reduce((n, e) => n + (loaded.params[e.part] ?? 0) * 4, 0);
  return {
    family,
    model: modelValue(family, source, cfg, loaded.denoiser, 'none', bytes(denoiserPart)),
    clip: clipValue(family, source, cfg, loaded.textEncoders, opts.clipSkip ?? 1, 'none', textBytes),
    vae: vaeValue(family, source, cfg, loaded.vae as WeightSource, bytes('vae')),
    dtypes: loaded.dtypes,
    params: loaded.params,
  };
}

/** The checkpoint's id, combined with those of separately chosen files (another text encoder is another model). */
async function combinedSourceId(path: string, separate: string[]): Promise<string> {
  const own = await modelSourceId(path);
  if (!separate.length) return own;
  const hash = createHash('sha256').update(own);
  for (const f of separate) hash.update(await modelSourceId(f));
  return hash.digest('hex');
}
