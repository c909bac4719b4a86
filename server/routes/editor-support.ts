// What the editor's path widgets may pick: GET /api/files?kind=models|datasets|input|output|runs|lora lists files and
// folders (two levels deep) inside that project folder, as paths relative to it — exactly what a node may read.
import { Router } from 'express';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpError } from '../httpErrors';
import { folderFor, LORA_OUTPUT_PREFIX, PathConfinementError, type ProjectPaths } from '../paths';

const MAX_ENTRIES = 2000;
const MAX_DEPTH = 2;

export interface PathEntry {
  path: string;
  dir: boolean;
}

async function list(root: string): Promise<PathEntry[]> {
  const out: PathEntry[] = [];
  const walk = async (rel: string, depth: number) => {
    let entries;
    try {
      entries = await readdir(join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (out.length >= MAX_ENTRIES) return;
      if (e.name.startsWith('.')) continue;
      const path = rel ? `${rel}/${e.name}` : e.name;
      // Symlinked folders are the user's to follow, as the nodes themselves do.
      const dir = e.isDirectory() || (e.isSymbolicLink() && !/\.[A-Za-z0-9]{1,12}$/.test(e.name));
      if (!e.isFile() && !dir) continue;
      out.push({ path, dir });
      if (dir && depth + 1 < MAX_DEPTH) await walk(path, depth + 1);
    }
  };
  await walk('', 0);
  return out;
}

export function editorSupportRoutes(deps: { paths: ProjectPaths }): Router {
  const r = Router();
  r.get('/files', async (req, res) => {
    const kind = req.query.kind;
    if (typeof kind !== 'string' || !kind) throw new HttpError(400, 'kind is required (models, datasets, input, output, temp, runs)');
    if (kind === 'lora') {
      // LoRA widgets read models/ and, prefixed, output/ (what Train and Save LoRA wrote).
      const trained = (await list(deps.paths.output)).map((e) => ({ ...e, path: `${LORA_OUTPUT_PREFIX}${e.path}` }));
      res.json({ kind, entries: [...(await list(deps.paths.models)), ...trained] });
      return;
    }
    let root: string;
    try {
      root = folderFor(deps.paths, kind);
    } catch (err) {
      if (err instanceof PathConfinementError) throw new HttpError(400, err.message);
      throw err;
    }
    res.json({ kind, entries: await list(root) });
  });
  return r;
}
