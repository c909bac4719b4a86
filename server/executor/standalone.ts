// A NodeContext outside a running job: for benchmarks, evaluations and tests that call a node's
// execute directly over a project folder (a temp one by default).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NodeContext, ProgressReport } from '../../nodes/define';
import { projectPaths, resolveProjectPath, type ProjectPaths } from '../paths';

export interface StandaloneOptions {
  root?: string;
  nodeId?: string;
  cacheKey?: string;
  onProgress?(r: ProgressReport): void;
  onWarn?(message: string): void;
  onPreview?(image: { mime: string; data: Uint8Array }): void;
}

export function standaloneNodeContext(o: StandaloneOptions = {}): NodeContext & { paths: ProjectPaths } {
  const paths = projectPaths(o.root ?? mkdtempSync(path.join(tmpdir(), 'lg-node-')));
  const cacheKey = o.cacheKey ?? 'standalone';
  return {
    nodeId: o.nodeId ?? '1',
    promptId: 'standalone',
    cacheKey,
    workDir: path.join(paths.cache, cacheKey),
    paths,
    signal: new AbortController().signal,
    resolvePath: (kind, p) => resolveProjectPath(paths, kind, p),
    progress: (r) => o.onProgress?.(r),
    throwIfInterrupted: () => {},
    warn: (m) => o.onWarn?.(m),
    preview: (img) => o.onPreview?.(img),
  };
}
