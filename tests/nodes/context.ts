// A real NodeContext over a temp project folder, for running node declarations outside the server.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NodeContext, ProgressReport } from '../../nodes/define';
import { resolveInside, folderFor, projectPaths } from '../../server/paths';

export function nodeContext(root = mkdtempSync(path.join(tmpdir(), 'lg-node-')), nodeId = '1', cacheKey = 'k'.repeat(16)) {
  const warnings: string[] = [];
  const previews: Uint8Array[] = [];
  const progress: ProgressReport[] = [];
  const paths = projectPaths(root);
  const ctx: NodeContext = {
    nodeId,
    promptId: 'test',
    cacheKey,
    workDir: path.join(paths.cache, cacheKey),
    paths,
    signal: new AbortController().signal,
    resolvePath: (kind, p) => resolveInside(folderFor(paths, kind), p, `${kind} path`),
    progress: (r) => { progress.push(r); },
    throwIfInterrupted: () => {},
    warn: (m) => { warnings.push(m); },
    preview: (img) => { previews.push(img.data); },
  };
  return { ctx, root, warnings, previews, progress };
}
