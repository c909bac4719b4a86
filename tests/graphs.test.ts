// The example graphs in graphs/ are what scripts/build-graphs.ts makes from the current node schemas
// (widget values are positional, so a schema change must regenerate them), and each one validates.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistry } from '../nodes/registry';
import { repoRoot } from '../server/paths';
import { exampleGraphs } from '../scripts/build-graphs';
import { workflowToApi } from '../server/graph/workflow';
import { validateGraph } from '../server/validate';

describe('example graphs', async () => {
  const registry = await loadRegistry();
  const graphs = exampleGraphs(registry);
  for (const [file, wf] of Object.entries(graphs)) {
    it(`${file} is up to date with the node schemas and validates`, () => {
      const onDisk = JSON.parse(readFileSync(join(repoRoot, 'graphs', file), 'utf8'));
      expect(onDisk, 'run `npx tsx scripts/build-graphs.ts`').toEqual(wf);
      const v = validateGraph(workflowToApi(onDisk, registry), registry);
      expect(v.ok ? 'valid' : JSON.stringify(v.nodeErrors)).toBe('valid');
    });
  }
});
