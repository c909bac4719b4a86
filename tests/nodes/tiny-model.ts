// A random-weight tiny SD 1.x checkpoint (the built-in model's sizes and tokenizer vocabulary) written
// into a temp project's models folder, for node tests that must not depend on the pretrained asset.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tinyConfig } from '../../kernels/sd/config';
import { saveSingleFile, type TensorFill } from '../../kernels/sd/save';

/** Deterministic values per tensor name: smooth, small, norms at 1, so the model gives finite, varied images. */
export const tinyFill: TensorFill = (_c, name, shape) => {
  let h = 2166136261;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  const n = shape.reduce((a, b) => a * b, 1);
  const base = /norm/.test(name) && name.endsWith('.weight') ? 1 : 0;
  const amp = 0.6 / Math.sqrt(shape.length > 1 ? n / shape[0] : 64);
  return Float32Array.from({ length: n }, (_, i) => base + amp * Math.sin(i * 0.7371 + (h >>> 8) * 1e-3) * Math.cos(i * 0.0131 + (h & 255)));
};

/** Writes `<root>/models/<name>` and returns the file name relative to the models folder. */
export async function writeTinyCheckpoint(modelsDir: string, name = 'tiny-random.safetensors', dtype: 'F32' | 'F16' = 'F32'): Promise<string> {
  mkdirSync(modelsDir, { recursive: true });
  await saveSingleFile(join(modelsDir, name), tinyConfig(), tinyFill, { dtype });
  return name;
}
