// Puts an image a node produced where the editor can fetch it (/api/view), written atomically.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeContext } from '../define';

export interface FileRef { filename: string; subfolder: string; type: 'temp' | 'output' }

export async function publishImage(ctx: NodeContext, name: string, png: Uint8Array, type: 'temp' | 'output' = 'temp', subfolder = ''): Promise<FileRef> {
  const dir = join(type === 'temp' ? ctx.paths.temp : ctx.paths.output, subfolder);
  await mkdir(dir, { recursive: true });
  const filename = name.replace(/[^\w.-]+/g, '_');
  await writeFile(join(dir, `${filename}.tmp`), png);
  await rename(join(dir, `${filename}.tmp`), join(dir, filename));
  return { filename, subfolder, type };
}
