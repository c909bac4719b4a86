// The NodeContext a node's execute receives: its identity and cache key, a lazily created work dir (the disk
// tier), confined project paths, and progress/interrupt/warn/preview that report through the executor.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InterruptedError, type NodeContext, type PathKind, type ProgressReport } from '../../nodes/define';
import type { PreviewMime, ProgressInfo } from '../protocol';
import { resolveProjectPath, type ProjectPaths } from '../paths';

export interface ContextHooks {
  onProgress(p: ProgressInfo): void;
  onWarning(message: string): void;
  onPreview(mime: PreviewMime, data: Uint8Array): void;
}

// Progress messages from a fast loop are thinned to this interval; the first and last step always go out.
const PROGRESS_INTERVAL_MS = 50;

export function createNodeContext(opts: {
  nodeId: string;
  nodeType: string;
  promptId: string;
  cacheKey: string;
  paths: ProjectPaths;
  signal: AbortSignal;
  hooks: ContextHooks;
  /** The graph being run, handed to nodes as ctx.workflow (Save LoRA writes it into the file's metadata). */
  workflow?: unknown;
}): NodeContext {
  const { nodeId, promptId, cacheKey, paths, signal, hooks } = opts;
  let workDir: string | undefined;
  let first: { step: number; at: number } | undefined;
  let lastSent = 0;
  const throwIfInterrupted = () => {
    if (signal.aborted) throw new InterruptedError();
  };
  return {
    nodeId,
    promptId,
    cacheKey,
    paths,
    signal,
    workflow: opts.workflow,
    get workDir() {
      if (!workDir) {
        workDir = join(paths.cache, `${opts.nodeType.replace(/[^A-Za-z0-9_-]/g, '_')}-${cacheKey.slice(0, 24)}`);
        mkdirSync(workDir, { recursive: true });
      }
      return workDir;
    },
    resolvePath: (kind: PathKind, p: string) => resolveProjectPath(paths, kind, p),
    throwIfInterrupted,
    progress(report: ProgressReport) {
      throwIfInterrupted();
      const now = performance.now();
      if (!first || report.step < first.step) first = { step: report.step, at: now };
      const elapsed = (now - first.at) / 1000;
      const done = report.step - first.step;
      const itPerSec = done > 0 && elapsed > 0 ? done / elapsed : null;
      const last = report.step >= report.total;
      if (!last && report.step !== first.step && now - lastSent < PROGRESS_INTERVAL_MS) return;
      lastSent = now;
      hooks.onProgress({
        promptId,
        node: nodeId,
        step: report.step,
        total: report.total,
        itPerSec,
        etaSeconds: itPerSec ? Math.max(0, report.total - report.step) / itPerSec : null,
        ...(report.data ? { data: report.data } : {}),
      });
    },
    warn: (message: string) => hooks.onWarning(String(message)),
    preview: (image) => hooks.onPreview(image.mime, image.data),
  };
}
