// A real NodeContext over a temp project folder, for running node declarations outside the server,
// recording what the node reported.
import type { ProgressReport } from '../../nodes/define';
import { standaloneNodeContext } from '../../server/executor/standalone';

export function nodeContext(root?: string, nodeId = '1', cacheKey = 'k'.repeat(16)) {
  const warnings: string[] = [];
  const previews: Uint8Array[] = [];
  const progress: ProgressReport[] = [];
  const ctx = standaloneNodeContext({
    root, nodeId, cacheKey,
    onProgress: (r) => { progress.push(r); },
    onWarn: (m) => { warnings.push(m); },
    onPreview: (img) => { previews.push(img.data); },
  });
  return { ctx, root: ctx.paths.dataDir, warnings, previews, progress };
}
