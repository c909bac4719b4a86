// Checks an API graph against the node declarations before anything runs, and reports each problem against
// the node and field it belongs to so the editor can mark it. A valid graph comes back normalised for the executor.
import type { z } from 'zod';
import type { NodeDefinition } from '../nodes/define';
import { socketAccepts } from '../nodes/define';
import type { NodeRegistry } from '../nodes/registry';
import { isLinkRef } from './graph/workflow';
import { PathConfinementError, resolveProjectPath, type ProjectPaths } from './paths';
import type { ApiGraph, LinkRef, NodeErrors } from './protocol';

export interface ValidNode {
  id: string;
  def: NodeDefinition;
  title: string;
  /** Parsed widget values, defaults applied. */
  widgets: Readonly<Record<string, unknown>>;
  /** Socket name → one link, or a list of links for list sockets; absent optional sockets are left out. */
  links: Readonly<Record<string, { node: string; output: number } | { node: string; output: number }[]>>;
  /** The ids this node reads from, one per link (repeats kept), computed once for the executor's walks. */
  sources: readonly string[];
}

export interface ValidGraph {
  nodes: ReadonlyMap<string, ValidNode>;
}

export type Validation =
  | { ok: true; graph: ValidGraph }
  | { ok: false; error: { type: 'invalid_prompt'; message: string }; nodeErrors: NodeErrors };

const ref = (r: LinkRef) => ({ node: String(r[0]), output: r[1] });

/** With `paths`, path widgets are also checked to stay inside their project folder. */
export function validateGraph(api: ApiGraph, registry: NodeRegistry, opts: { paths?: ProjectPaths } = {}): Validation {
  const nodeErrors: NodeErrors = {};
  const fail = (id: string, field: string, message: string) => {
    const n = api[id]!;
    const entry = (nodeErrors[id] ??= {
      type: n.class_type,
      ...(n._meta?.title ? { title: n._meta.title } : {}),
      errors: [],
    });
    entry.errors.push({ field, message });
  };
  const nodes = new Map<string, ValidNode>();

  for (const [id, node] of Object.entries(api)) {
    const def = registry.get(node.class_type);
    if (!def) {
      fail(id, '', `unknown node type "${node.class_type}"`);
      continue;
    }
    const links: Record<string, { node: string; output: number } | { node: string; output: number }[]> = {};
    for (const [name, spec] of Object.entries(def.inputs)) {
      const v = node.inputs[name];
      if (v === undefined || v === null || (spec.list && Array.isArray(v) && v.length === 0)) {
        if (!spec.optional) fail(id, name, `required input "${name}" (${spec.type}) is not connected`);
        continue;
      }
      const refs: LinkRef[] | null = spec.list
        ? isLinkRef(v) ? [v] : Array.isArray(v) && v.every(isLinkRef) ? (v as LinkRef[]) : null
        : isLinkRef(v) ? [v] : null;
      if (!refs) {
        fail(id, name, spec.list ? `input "${name}" must be a list of links [nodeId, outputIndex]` : `input "${name}" must be a link [nodeId, outputIndex]`);
        continue;
      }
      let good = true;
      for (const r of refs) {
        const src = api[String(r[0])];
        if (!src) {
          fail(id, name, `input "${name}" is linked to node ${r[0]}, which is not in the graph`);
          good = false;
          continue;
        }
        const srcDef = registry.get(src.class_type);
        if (!srcDef) continue; // reported on that node
        const outName = srcDef.outputNames[r[1]];
        if (outName === undefined) {
          fail(id, name, `input "${name}" is linked to output #${r[1]} of node ${r[0]} (${srcDef.type}), which has ${srcDef.outputNames.length} output(s)`);
          good = false;
          continue;
        }
        const outType = srcDef.outputs[outName]!;
        if (!socketAccepts(spec.type, outType)) {
          fail(id, name, `input "${name}" expects ${spec.type} but node ${r[0]} (${srcDef.type}) output "${outName}" gives ${outType}`);
          good = false;
        }
      }
      if (good) links[name] = spec.list ? refs.map(ref) : ref(refs[0]!);
    }

    const widgetValues: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(node.inputs)) {
      if (name in def.inputs) continue;
      if (!def.widgetNames.includes(name)) {
        fail(id, name, `${def.type} has no input or widget "${name}"`);
        continue;
      }
      if (isLinkRef(value)) {
        fail(id, name, `widget "${name}" takes a value, not a link`);
        continue;
      }
      widgetValues[name] = value;
    }
    const parsed = def.widgets.safeParse(widgetValues);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) fail(id, String(issue.path[0] ?? ''), widgetMessage(issue, widgetValues));
    } else if (opts.paths) {
      for (const w of def.info().widgets) {
        const value = (parsed.data as Record<string, unknown>)[w.name];
        if (w.kind !== 'path' || !w.pathKind || typeof value !== 'string' || value === '') continue;
        try {
          resolveProjectPath(opts.paths, w.pathKind, value, `widget "${w.name}"`);
        } catch (err) {
          if (err instanceof PathConfinementError && !err.message.startsWith('unknown project folder')) fail(id, w.name, err.message);
        }
      }
    }
    if (!nodeErrors[id]) {
      nodes.set(id, {
        id,
        def,
        title: node._meta?.title ?? def.title,
        widgets: parsed.success ? (parsed.data as Record<string, unknown>) : {},
        links,
        sources: Object.values(links).flatMap((l) => (Array.isArray(l) ? l.map((x) => x.node) : [l.node])),
      });
    }
  }

  for (const cycle of findCycles(api, registry)) {
    const path = [...cycle, cycle[0]].join(' → ');
    for (const id of cycle) fail(id, '', `part of a cycle: ${path}`);
  }

  const hasOutput = Object.values(api).some((n) => registry.get(n.class_type)?.isOutput);
  const errorCount = Object.values(nodeErrors).reduce((s, e) => s + e.errors.length, 0);
  if (!hasOutput || errorCount > 0) {
    const parts: string[] = [];
    if (!hasOutput) parts.push('the graph has no output node (Save, Preview, Sampler…), so nothing would run');
    if (errorCount) parts.push(`${errorCount} error(s) in ${Object.keys(nodeErrors).length} node(s)`);
    return { ok: false, error: { type: 'invalid_prompt', message: parts.join('; ') }, nodeErrors };
  }
  for (const id of Object.keys(nodeErrors)) nodes.delete(id);
  return { ok: true, graph: { nodes } };
}

function widgetMessage(issue: z.core.$ZodIssue, values: Record<string, unknown>): string {
  const field = String(issue.path[0] ?? '');
  if (issue.code === 'invalid_type' && values[field] === undefined) return `widget "${field}" needs a value`;
  return `widget "${field}": ${issue.message}`;
}

/** Each strongly connected group of two or more nodes (or a node linked to itself), in link order. */
function findCycles(api: ApiGraph, registry: NodeRegistry): string[][] {
  const deps = new Map<string, string[]>();
  for (const [id, node] of Object.entries(api)) {
    const def = registry.get(node.class_type);
    const out: string[] = [];
    for (const name of Object.keys(def?.inputs ?? {})) {
      const v = node.inputs[name];
      const refs = isLinkRef(v) ? [v] : Array.isArray(v) && v.every(isLinkRef) ? (v as LinkRef[]) : [];
      for (const r of refs) if (api[String(r[0])]) out.push(String(r[0]));
    }
    deps.set(id, out);
  }
  // Tarjan's algorithm, iterative so a long chain cannot overflow the stack.
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  for (const start of deps.keys()) {
    if (idx.has(start)) continue;
    const work: { id: string; i: number }[] = [{ id: start, i: 0 }];
    idx.set(start, index);
    low.set(start, index++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      const next = deps.get(top.id)![top.i++];
      if (next !== undefined) {
        if (!idx.has(next)) {
          idx.set(next, index);
          low.set(next, index++);
          stack.push(next);
          onStack.add(next);
          work.push({ id: next, i: 0 });
        } else if (onStack.has(next)) {
          low.set(top.id, Math.min(low.get(top.id)!, idx.get(next)!));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1]!.id;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.id)!));
      }
      if (low.get(top.id) === idx.get(top.id)) {
        const group: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          group.push(w);
        } while (w !== top.id);
        if (group.length > 1 || deps.get(top.id)!.includes(top.id)) cycles.push(group.reverse());
      }
    }
  }
  return cycles;
}
