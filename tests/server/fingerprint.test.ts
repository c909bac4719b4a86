// A file-reading node's fingerprint joins its cache key: editing the folder it reads re-runs it (and what
// depends on it) although no widget changed; an unchanged folder stays cached.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineNode, widget } from '../../nodes/define';
import { createRegistry } from '../../nodes/registry';
import { folderFingerprint } from '../../nodes/data/scan';
import { Executor } from '../../server/executor/executor';
import { projectPaths } from '../../server/paths';
import { validateGraph } from '../../server/validate';
import { tempDir } from './harness';

const runs: string[] = [];
const FolderCount = defineNode({
  type: 'FolderCount', category: 'test', isOutput: true,
  widgets: z.object({ folder: widget.path({ kind: 'datasets' }) }),
  fingerprint: ({ widgets, resolvePath }) => folderFingerprint(resolvePath('datasets', widgets.folder)),
  execute: ({ widgets }) => { runs.push(widgets.folder); return { outputs: {}, ui: { text: ['ran'] } }; },
});
const dataDir = tempDir();
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('node fingerprints', () => {
  it('re-runs a node whose folder changed, and only then', async () => {
    const paths = projectPaths(dataDir);
    const folder = join(paths.datasets, 'set');
    mkdirSync(join(folder, '2_star'), { recursive: true });
    writeFileSync(join(folder, 'a.txt'), 'one');
    const registry = createRegistry([FolderCount]);
    const v = validateGraph({ '1': { class_type: 'FolderCount', inputs: { folder: 'set' } } }, registry);
    if (!v.ok) throw new Error('invalid');
    const ex = new Executor({ paths });
    const go = () => ex.run(v.graph, { promptId: 'p', signal: new AbortController().signal, emit: () => {} });
    await go();
    await go();
    expect(runs).toHaveLength(1);
    writeFileSync(join(folder, '2_star', 'b.txt'), 'new file in a repeat folder');
    await go();
    expect(runs).toHaveLength(2);
    await go();
    expect(runs).toHaveLength(2);
  });
});
