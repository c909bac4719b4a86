// Which nodes a run executes and in what order: only what output nodes need, skipping any node whose key is cached
// (and everything only it needed); among ready nodes, output nodes and the nodes closest to them go first so
// previews appear early.
import type { ValidGraph } from '../validate';

/** Every node after all the nodes it links from; ties broken by id (numerically where ids are numbers). */
export function topologicalOrder(graph: ValidGraph): string[] {
  const indeg = new Map<string, number>();
  const consumers = new Map<string, string[]>();
  for (const [id, n] of graph.nodes) {
    const srcs = n.sources;
    indeg.set(id, srcs.length);
    for (const s of srcs) (consumers.get(s) ?? consumers.set(s, []).get(s)!).push(id);
  }
  const ready = [...graph.nodes.keys()].filter((id) => indeg.get(id) === 0).sort(compareIds);
  const out: string[] = [];
  while (ready.length) {
    const id = ready.shift()!;
    out.push(id);
    for (const c of consumers.get(id) ?? []) {
      const d = indeg.get(c)! - 1;
      indeg.set(c, d);
      if (d === 0) insertSorted(ready, c);
    }
  }
  return out;
}

export interface RunPlan {
  /** Nodes to execute, in execution order. */
  execute: string[];
  /** Nodes the outputs depend on that will not execute (their own or a downstream key is cached). */
  cached: string[];
  /** Cached nodes whose values executing nodes read. */
  feedsExecution: Set<string>;
  /** Output nodes among `cached`. */
  cachedOutputs: string[];
}

export function planRun(graph: ValidGraph, isCached: (id: string) => boolean): RunPlan {
  const outputs = [...graph.nodes.values()].filter((n) => n.def.isOutput).map((n) => n.id);
  const execute = new Set<string>();
  const reached = new Set<string>();
  const feedsExecution = new Set<string>();
  const stack = [...outputs];
  while (stack.length) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    if (isCached(id)) continue;
    execute.add(id);
    for (const s of graph.nodes.get(id)!.sources) stack.push(s);
  }
  // Everything upstream of an output that will not execute counts as cached.
  const upstream = new Set<string>();
  const walk = [...outputs];
  while (walk.length) {
    const id = walk.pop()!;
    if (upstream.has(id)) continue;
    upstream.add(id);
    walk.push(...graph.nodes.get(id)!.sources);
  }
  for (const id of execute) for (const s of graph.nodes.get(id)!.sources) if (!execute.has(s)) feedsExecution.add(s);
  const cached = [...upstream].filter((id) => !execute.has(id)).sort(compareIds);
  return {
    execute: executionOrder(graph, execute),
    cached,
    feedsExecution,
    cachedOutputs: cached.filter((id) => graph.nodes.get(id)!.def.isOutput),
  };
}

/** Kahn's algorithm over the executed nodes; the ready node nearest an output runs first. */
function executionOrder(graph: ValidGraph, execute: Set<string>): string[] {
  const consumers = new Map<string, string[]>();
  const indeg = new Map<string, number>();
  for (const id of execute) {
    const srcs = graph.nodes.get(id)!.sources.filter((s) => execute.has(s));
    indeg.set(id, srcs.length);
    for (const s of srcs) (consumers.get(s) ?? consumers.set(s, []).get(s)!).push(id);
  }
  // Distance to the nearest output node, computed over the executed subgraph in reverse topological order.
  const dist = new Map<string, number>();
  const distOf = (id: string): number => {
    const known = dist.get(id);
    if (known !== undefined) return known;
    let d = graph.nodes.get(id)!.def.isOutput ? 0 : Infinity;
    dist.set(id, d); // guards re-entry; the graph is acyclic
    for (const c of consumers.get(id) ?? []) d = Math.min(d, distOf(c) + 1);
    dist.set(id, d);
    return d;
  };
  const ready = [...execute].filter((id) => indeg.get(id) === 0);
  const out: string[] = [];
  while (ready.length) {
    let best = 0;
    for (let i = 1; i < ready.length; i++) {
      const a = ready[i]!, b = ready[best]!;
      const da = distOf(a), db = distOf(b);
      if (da < db || (da === db && compareIds(a, b) < 0)) best = i;
    }
    const id = ready.splice(best, 1)[0]!;
    out.push(id);
    for (const c of consumers.get(id) ?? []) {
      const d = indeg.get(c)! - 1;
      indeg.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  return out;
}

export function compareIds(a: string, b: string): number {
  const na = Number(a), nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

function insertSorted(arr: string[], id: string): void {
  let i = arr.length;
  while (i > 0 && compareIds(arr[i - 1]!, id) > 0) i--;
  arr.splice(i, 0, id);
}
