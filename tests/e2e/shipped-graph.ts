// What the end-to-end runs of the shipped quickstart graphs share: the graph as committed in graphs/,
// its nodes found by type, shortened by --set overrides, validated and run by the executor.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { loadRegistry } from '../../nodes/registry';
import { Executor } from '../../server/executor/executor';
import { applyOverrides, parseSetArgument } from '../../server/graph/set';
import { workflowToApi } from '../../server/graph/workflow';
import { projectPaths, repoRoot, type ProjectPaths } from '../../server/paths';
import { validateGraph } from '../../server/validate';

/** A shipped graph (API form) and the ids of its nodes of a type. */
export async function shippedGraph(file: string) {
  const registry = await loadRegistry();
  const api = workflowToApi(JSON.parse(readFileSync(join(repoRoot, 'graphs', file), 'utf8')), registry);
  const idOf = (type: string) => Object.entries(api).filter(([, n]) => n.class_type === type).map(([id]) => id);
  return { registry, api, idOf };
}

/** Runs the graph with `sets` (`<id>.<widget>=<value>`) in a project folder; fails the test on a validation or run error. */
export async function runShipped(g: Awaited<ReturnType<typeof shippedGraph>>, sets: string[], dataDir: string, promptId: string) {
  const paths: ProjectPaths = projectPaths(dataDir);
  const v = validateGraph(applyOverrides(g.api, g.registry, sets.map(parseSetArgument)), g.registry);
  expect(v.ok, JSON.stringify(!v.ok && v.nodeErrors)).toBe(true);
  if (!v.ok) throw new Error('invalid graph');
  const t0 = performance.now();
  const r = await new Executor({ paths }).run(v.graph, { promptId, signal: new AbortController().signal, emit: () => {} });
  expect(r.status, JSON.stringify(r.error)).toBe('success');
  return { r, paths, seconds: (performance.now() - t0) / 1000 };
}
