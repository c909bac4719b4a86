// Loads a checkpoint file or diffusers folder (or the built-in tiny model) into MODEL, CLIP and VAE
// values: the family is detected from the checkpoint's keys (kernels/families/registry.ts), the family
// loads and checks its tensors and finds its tokenizers, the id comes from the header.
import { existsSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { familyOfCheckpoint } from '../../kernels/families/registry';
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

/** `checkpoint` is a built-in model (`builtin:tiny`, `builtin:tiny-flux`) or an absolute path already confined to the models folder. */
export async function loadModel(checkpoint: string, opts: { clipSkip?: number; modelsDir?: string } = {}): Promise<LoadedModel> {
  const builtin = isBuiltinModel(checkpoint);
  const path = builtin ? builtinCheckpoint(checkpoint) : checkpoint;
  if (!existsSync(path)) throw new Error(`checkpoint: ${path} does not exist`);
  const isFolder = statSync(path).isDirectory();
  if (!isFolder && !path.endsWith('.safetensors')) throw new Error(`checkpoint: ${path} is not a .safetensors file or a diffusers folder (.ckpt/.pt pickles are not read)`);
  const { family } = await familyOfCheckpoint(path);
  // A user's checkpoint stays on disk: ORT reads fp32/fp16 weights straight from the file (external
  // data), so a 4 GB model is never copied into JS memory. The tiny built-in model is read in. The tiny
  // tokenizer serves test checkpoints made with its vocabulary.
  const loaded = await family.load(path, { external: !builtin, modelsDir: opts.modelsDir, fallbackTokenizerDirs: [builtinTiny.tokenizer] });
  const source: ModelSource = Object.freeze({
    path: builtin ? checkpoint : path,
    label: builtin ? BUILTIN_MODELS[checkpoint].label : basename(path, extname(path)),
    family: family.id,
    id: await modelSourceId(path),
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
