// Loads an SD 1.x checkpoint file or diffusers folder (or the built-in tiny model) into MODEL, CLIP and
// VAE values: family checked by the SD loader, tokenizer found beside the model, id from the header.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { loadSd, type LoadedSd } from '../../kernels/sd/load';
import { ClipTokenizer } from '../../kernels/sd/tokenizer';
import type { CheckpointWeights } from '../../kernels/sd/checkpoint-weights';
import type { ClipValue, ModelSource, ModelValue, VaeValue } from '../sockets';
import { BUILTIN_TINY, builtinTiny, builtinTinyCheckpoint } from './builtin';
import { modelSourceId } from './source';
import { clipValue, modelValue, vaeValue } from './values';

export interface LoadedModel {
  model: ModelValue;
  clip: ClipValue;
  vae: VaeValue;
  /** Storage dtypes of the file, e.g. ['F16']. */
  dtypes: string[];
  /** Parameter counts per part, for the node's text. */
  params: { unet: number; textEncoder: number; vae: number };
}

/** Bytes of a part's weights as float32 (how they sit in the ORT graphs). */
function fp32Bytes(w: CheckpointWeights): number {
  let n = 0;
  for (const loc of w.tensors.values()) n += loc.entry.shape.reduce((a, b) => a * b, 1) * 4;
  return n;
}

/**
 * Where the CLIP tokenizer (vocab.json + merges.txt) of a checkpoint is looked for: a diffusers folder's
 * own tokenizer/, then `tokenizer/` or `<name>.tokenizer/` beside a single file, then `tokenizers/clip/`
 * in the models folder; the built-in tiny model's tokenizer fits checkpoints made with its vocabulary.
 */
function findTokenizer(path: string, loaded: LoadedSd, modelsDir: string | undefined): ClipTokenizer {
  if (loaded.tokenizer) return loaded.tokenizer;
  const candidates = [join(dirname(path), 'tokenizer'), join(dirname(path), `${basename(path, extname(path))}.tokenizer`)];
  if (modelsDir) candidates.push(join(modelsDir, 'tokenizers', 'clip'));
  for (const dir of candidates) {
    if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) return checkVocab(ClipTokenizer.fromFolder(dir), loaded, dir);
  }
  const tiny = ClipTokenizer.fromFolder(builtinTiny.tokenizer);
  if (tiny.vocabSize === loaded.config.text.vocabSize) return tiny;
  throw new Error(`${path}: no CLIP tokenizer found (vocab.json + merges.txt of openai/clip-vit-large-patch14); put them in one of: ${candidates.join(', ')}`);
}

function checkVocab(tok: ClipTokenizer, loaded: LoadedSd, dir: string): ClipTokenizer {
  if (tok.vocabSize !== loaded.config.text.vocabSize) throw new Error(`${dir}: tokenizer has ${tok.vocabSize} tokens, the text encoder ${loaded.config.text.vocabSize}`);
  return tok;
}

/** `checkpoint` is `builtin:tiny` or an absolute path already confined to the models folder. */
export async function loadModel(checkpoint: string, opts: { clipSkip?: number; modelsDir?: string } = {}): Promise<LoadedModel> {
  const builtin = checkpoint === BUILTIN_TINY;
  const path = builtin ? builtinTinyCheckpoint() : checkpoint;
  if (!existsSync(path)) throw new Error(`checkpoint: ${path} does not exist`);
  const isFolder = statSync(path).isDirectory();
  if (!isFolder && !path.endsWith('.safetensors')) throw new Error(`checkpoint: ${path} is not a .safetensors file or a diffusers folder (.ckpt/.pt pickles are not read)`);
  // A user's checkpoint stays on disk: ORT reads fp32/fp16 weights straight from the file (external
  // data), so a 4 GB model is never copied into JS memory. The tiny built-in model is read in.
  const loaded = await loadSd(path, builtin ? { tokenizer: ClipTokenizer.fromFolder(builtinTiny.tokenizer) } : { external: true });
  const tokenizer = findTokenizer(path, loaded, opts.modelsDir);
  const source: ModelSource = Object.freeze({
    path: builtin ? BUILTIN_TINY : path,
    label: builtin ? builtinTiny.label : basename(path, extname(path)),
    family: 'sd1' as const,
    id: await modelSourceId(path),
    config: loaded.config,
  });
  const count = (w: CheckpointWeights) => fp32Bytes(w) / 4;
  const cfg = loaded.config;
  return {
    model: modelValue(source, cfg, loaded.unet, 'none', () => fp32Bytes(loaded.unet)),
    clip: clipValue(source, cfg, loaded.textEncoder, tokenizer, opts.clipSkip ?? 1, 'none', () => fp32Bytes(loaded.textEncoder)),
    vae: vaeValue(source, cfg, loaded.vae, () => fp32Bytes(loaded.vae)),
    dtypes: loaded.dtypes,
    params: { unet: count(loaded.unet), textEncoder: count(loaded.textEncoder), vae: count(loaded.vae) },
  };
}
