// Content-addressed cache keys: a node's key hashes its type, implementation version, widget values and the keys
// of the outputs feeding it, so a key changes exactly when the node or anything upstream of it changes.
import { createHash } from 'node:crypto';
import type { ValidGraph } from '../validate';

/** JSON with object keys sorted, so equal values always hash equally. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/**
 * Keys for every node; `order` must list each node after the nodes it links from. `fingerprints` holds
 * what file-reading nodes saw on disk (see NodeSpec.fingerprint).
 */
export function computeCacheKeys(graph: ValidGraph, order: readonly string[], fingerprints: ReadonlyMap<string, string> = new Map()): Map<string, string> {
  const keys = new Map<string, string>();
  for (const id of order) {
    const node = graph.nodes.get(id)!;
    const inputs: Record<string, string | string[]> = {};
    for (const [name, link] of Object.entries(node.links)) {
      const keyOf = (l: { node: string; output: number }) => `${keys.get(l.node)}:${l.output}`;
      inputs[name] = Array.isArray(link) ? link.map(keyOf) : keyOf(link);
    }
    const fingerprint = fingerprints.get(id);
    const material = canonicalJson({ type: node.def.type, version: node.def.version, widgets: node.widgets, inputs, ...(fingerprint ? { fingerprint } : {}) });
    keys.set(id, createHash('sha256').update(material).digest('hex'));
  }
  return keys;
}

/** Runs the fingerprint hooks of the graph's file-reading nodes; a failing hook leaves its node to fail when run. */
export async function computeFingerprints(graph: ValidGraph, resolvePath: (kind: string, p: string) => string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [id, node] of graph.nodes) {
    if (!node.def.fingerprint) continue;
    try {
      out.set(id, await node.def.fingerprint({ widgets: node.widgets, resolvePath }));
    } catch (e) {
      out.set(id, `unreadable:${(e as Error).message}`);
    }
  }
  return out;
}
