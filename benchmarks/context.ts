// A NodeContext over a temp project folder for benchmarks that call node declarations directly.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NodeContext } from '../nodes/define';
import { folderFor, projectPaths, resolveInside } from '../server/paths';

export function nodeContextFor(root = mkdtempSync(path.join(tmpdir(), 'lg-bench-'))): NodeContext {
  const paths = projectPaths(root);
  return {
    nodeId: '1', promptId: 'bench', cacheKey: 'bench', workDir: path.join(paths.cache, 'bench'), paths,
    signal: new AbortController().signal,
    resolvePath: (kind, p) => resolveInside(folderFor(paths, kind), p, `${kind} path`),
    progress: () => {}, throwIfInterrupted: () => {}, warn: () => {}, preview: () => {},
  };
}
