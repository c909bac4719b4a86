// The embedded default model: `builtin:tiny` names the tiny SD 1.x checkpoint and tokenizer shipped in
// assets/tiny, so the quickstart runs without the user owning any model file.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUILTIN_TINY = 'builtin:tiny';

const assets = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets', 'tiny');

export const builtinTiny = {
  checkpoint: join(assets, 'sd-tiny.safetensors'),
  tokenizer: join(assets, 'tokenizer'),
  label: 'sd-tiny (built in)',
};

/** The tiny checkpoint's path; a clear error when the asset has not been built yet. */
export function builtinTinyCheckpoint(): string {
  if (!existsSync(builtinTiny.checkpoint)) {
    throw new Error(`${BUILTIN_TINY}: ${builtinTiny.checkpoint} is missing (build it with \`npm run pretrain:tiny\`, or point checkpoint at a model file under the models folder)`);
  }
  return builtinTiny.checkpoint;
}
