// The embedded default models: `builtin:tiny` names the tiny SD 1.x checkpoint and tokenizer shipped in
// assets/tiny, `builtin:tiny-flux` the tiny FLUX.2 [klein] in assets/tiny-flux (a BFL-named transformer
// with its Qwen3 text encoder, ae.safetensors and tokenizer.json beside it), `builtin:tiny-wan` (and
// `-low-noise`) the two experts of the tiny Wan 2.2 I2V in assets/tiny-wan, so the quickstarts run
// without the user owning any model file.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUILTIN_TINY = 'builtin:tiny';
export const BUILTIN_TINY_FLUX = 'builtin:tiny-flux';
/** The tiny Wan 2.2 I2V pair in assets/tiny-wan: the high-noise expert (the low-noise one beside it is `…-low-noise`). */
export const BUILTIN_TINY_WAN = 'builtin:tiny-wan';
export const BUILTIN_TINY_WAN_LOW_NOISE = 'builtin:tiny-wan-low-noise';

const assets = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets');

export const builtinTiny = {
  checkpoint: join(assets, 'tiny', 'sd-tiny.safetensors'),
  tokenizer: join(assets, 'tiny', 'tokenizer'),
  label: 'sd-tiny (built in)',
};

/** Every built-in model by its widget name: the file Load Model opens, its label, and how to build it. */
export const BUILTIN_MODELS: Readonly<Record<string, { checkpoint: string; label: string; build: string }>> = {
  [BUILTIN_TINY]: { checkpoint: builtinTiny.checkpoint, label: builtinTiny.label, build: 'npm run pretrain:tiny' },
  [BUILTIN_TINY_FLUX]: { checkpoint: join(assets, 'tiny-flux', 'flux2-tiny.safetensors'), label: 'flux2-tiny (built in)', build: 'npm run pretrain:tiny-flux' },
  [BUILTIN_TINY_WAN]: { checkpoint: join(assets, 'tiny-wan', 'wan2.2_i2v_tiny_high_noise.safetensors'), label: 'wan-tiny-i2v high noise (built in)', build: 'npm run pretrain:tiny-wan' },
  [BUILTIN_TINY_WAN_LOW_NOISE]: { checkpoint: join(assets, 'tiny-wan', 'wan2.2_i2v_tiny_low_noise.safetensors'), label: 'wan-tiny-i2v low noise (built in)', build: 'npm run pretrain:tiny-wan' },
};

export const isBuiltinModel = (checkpoint: string): boolean => Object.hasOwn(BUILTIN_MODELS, checkpoint);

/** A built-in model's file; a clear error when the asset has not been built yet. */
export function builtinCheckpoint(name: string): string {
  const m = BUILTIN_MODELS[name];
  if (!m) throw new Error(`checkpoint: "${name}" is not a built-in model (${Object.keys(BUILTIN_MODELS).join(', ')})`);
  if (!existsSync(m.checkpoint)) {
    throw new Error(`${name}: ${m.checkpoint} is missing (build it with \`${m.build}\`, or point checkpoint at a model file under the models folder)`);
  }
  return m.checkpoint;
}

/** The tiny SD checkpoint's path; a clear error when the asset has not been built yet. */
export function builtinTinyCheckpoint(): string {
  return builtinCheckpoint(BUILTIN_TINY);
}
