// Identifies a base model for cache keys and LoRA metadata without reading its weights: the sha256 of
// a safetensors file's header (names, dtypes, shapes, offsets, metadata) and size, or of a diffusers
// folder's listing plus each weight file's header.
import { createHash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';

/** sha256 over the 8-byte length prefix and JSON header of a safetensors file, plus its size. */
export async function safetensorsHeaderHash(file: string, hash = createHash('sha256')): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const prefix = Buffer.alloc(8);
    await handle.read(prefix, 0, 8, 0);
    const headerLength = Math.min(Number(prefix.readBigUInt64LE(0)), Math.max(0, size - 8), 100_000_000);
    const header = Buffer.alloc(headerLength);
    await handle.read(header, 0, headerLength, 8);
    hash.update(`${basename(file)}:${size}\n`).update(prefix).update(header);
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

/** The id of a checkpoint file or diffusers folder. */
export async function modelSourceId(path: string): Promise<string> {
  if (!(await stat(path)).isDirectory()) return safetensorsHeaderHash(path);
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(dir, e.name);
      if (e.isDirectory()) { await walk(full); continue; }
      const info = await stat(full);
      hash.update(`${relative(path, full)}:${info.size}\n`);
      if (e.name.endsWith('.safetensors')) hash.update(await safetensorsHeaderHash(full));
    }
  };
  await walk(path);
  return hash.digest('hex');
}
