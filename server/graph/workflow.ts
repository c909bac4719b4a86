// Converts between the editor's workflow file (LiteGraph serialisation) and the compact API form that runs.
// workflow → API keeps everything that affects execution (types, links, widget values, titles); layout
// (positions, sizes, groups, colours) stays in the workflow. API → workflow lays nodes out in columns by depth.
import type { NodeRegistry } from '../../nodes/registry';
import { ApiGraph, WIDGET_NAMES_PROPERTY, Workflow, type ApiNode, type LinkRef, type WorkflowNode } from '../protocol';
import { GraphFormatError } from './errors';

/** Editor-only node types that never run. */
const EDITOR_ONLY = new Set(['Note', 'MarkdownNote', 'Reroute', 'PrimitiveNode', 'Group']);
const MODE_MUTED = 2;
const MODE_BYPASS = 4;

type RawLink = { origin: string; originSlot: number; target: string; targetSlot: number; type: unknown };

export function workflowToApi(raw: unknown, registry: NodeRegistry): ApiGraph {
  const parsed = Workflow.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GraphFormatError(`workflow: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const wf = parsed.data;
  const nodes = new Map<string, WorkflowNode>();
  for (const n of wf.nodes) {
    const id = String(n.id);
    if (nodes.has(id)) throw new GraphFormatError(`workflow: two nodes have the id ${id}`);
    nodes.set(id, n);
  }
  const links = new Map<number, RawLink>();
  for (const [lid, origin, originSlot, target, targetSlot, type] of wf.links) {
    links.set(lid, { origin: String(origin), originSlot, target: String(target), targetSlot, type });
  }

  // Follows a link back through reroutes and bypassed nodes to the node that really produces the value.
  const resolveSource = (linkId: number, seen = new Set<number>()): LinkRef | null => {
    const link = links.get(linkId);
    if (!link || seen.has(linkId)) return null;
    seen.add(linkId);
    const src = nodes.get(link.origin);
    if (!src || src.mode === MODE_MUTED) return null;
    if (src.type === 'Reroute') {
      const up = src.inputs?.[0]?.link;
      return up == null ? null : resolveSource(up, seen);
    }
    if (src.mode === MODE_BYPASS) {
      // A bypassed node passes through its first linked input of the same type as the requested output.
      const outType = src.outputs?.[link.originSlot]?.type ?? link.type;
      const through = src.inputs?.find((i) => i.link != null && i.type === outType);
      return through?.link == null ? null : resolveSource(through.link, seen);
    }
    return [link.origin, link.originSlot];
  };

  const api: ApiGraph = {};
  for (const [id, n] of nodes) {
    if (EDITOR_ONLY.has(n.type) || n.mode === MODE_MUTED || n.mode === MODE_BYPASS) continue;
    const def = registry.get(n.type);
    const inputs: Record<string, unknown> = {};
    for (const slot of n.inputs ?? []) {
      if (slot.link == null) continue;
      const ref = resolveSource(slot.link);
      if (!ref) continue;
      // List sockets appear in the editor as several slots: "datasets", "datasets.1", "datasets.2", …
      const base = slot.name.replace(/\.\d+$/, '');
      const spec = def?.inputs[base];
      if (spec?.list) {
        const prev = inputs[base];
        inputs[base] = Array.isArray(prev) ? [...(prev as LinkRef[]), ref] : [ref];
      } else {
        inputs[slot.name] = ref;
      }
    }
    const values = n.widgets_values;
    if (def && values !== undefined) {
      const written = n.properties?.[WIDGET_NAMES_PROPERTY];
      if (Array.isArray(values) && Array.isArray(written) && written.length === values.length) {
        // Saved with its widget names: match by name, so widgets added or reordered since keep their defaults.
        written.forEach((name, i) => {
          if (typeof name === 'string' && def.widgetNames.includes(name) && !(name in inputs)) inputs[name] = values[i];
        });
      } else if (Array.isArray(values)) {
        // Ordered as the schema's widgets; extra trailing values (editor-side controls) do not run.
        def.widgetNames.forEach((name, i) => {
          if (i < values.length && !(name in inputs)) inputs[name] = values[i];
        });
      } else {
        for (const name of def.widgetNames) if (name in values && !(name in inputs)) inputs[name] = values[name];
      }
    }
    const node: ApiNode = { class_type: n.type, inputs };
    if (typeof n.title === 'string' && n.title !== (def?.title ?? n.type)) node._meta = { title: n.title };
    api[id] = node;
  }
  return api;
}

/** A workflow for an API graph, nodes placed in columns by their depth from the sources. */
export function apiToWorkflow(api: ApiGraph, registry: NodeRegistry): Workflow {
  const ids = Object.keys(api);
  const depth = new Map<string, number>();
  const depthOf = (id: string, stack = new Set<string>()): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (stack.has(id) || !api[id]) return 0;
    stack.add(id);
    let d = 0;
    for (const ref of linkRefs(api[id]!, registry)) d = Math.max(d, depthOf(String(ref[0]), stack) + 1);
    stack.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const links: Workflow['links'] = [];
  const wfNodes: WorkflowNode[] = [];
  const numericId = new Map<string, number>();
  ids.forEach((id, i) => numericId.set(id, /^\d+$/.test(id) ? Number(id) : 100_000 + i));
  const outLinks = new Map<string, number[][]>();
  for (const id of ids) {
    const n = api[id]!;
    const def = registry.get(n.class_type);
    const col = depthOf(id);
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    const slots: { name: string; type: string; link: number | null }[] = [];
    for (const [name, spec] of Object.entries(def?.inputs ?? {})) {
      const v = n.inputs[name];
      const refs = spec.list ? (Array.isArray(v) && Array.isArray(v[0]) ? (v as LinkRef[]) : v ? [v as LinkRef] : []) : v ? [v as LinkRef] : [];
      if (refs.length === 0) slots.push({ name, type: spec.type, link: null });
      refs.forEach((ref, k) => {
        const lid = links.length + 1;
        const src = String(ref[0]);
        links.push([lid, numericId.get(src) ?? src, ref[1], numericId.get(id)!, slots.length, spec.type]);
        const list = outLinks.get(src) ?? [];
        (list[ref[1]] ??= []).push(lid);
        outLinks.set(src, list);
        slots.push({ name: k === 0 ? name : `${name}.${k}`, type: spec.type, link: lid });
      });
    }
    wfNodes.push({
      id: numericId.get(id)!,
      type: n.class_type,
      title: n._meta?.title ?? def?.title ?? n.class_type,
      pos: [40 + col * 340, 40 + row * 220],
      size: [300, 160],
      mode: 0,
      inputs: slots,
      outputs: [],
      widgets_values: (def?.widgetNames ?? []).map((w) => n.inputs[w] ?? def?.info().widgets.find((x) => x.name === w)?.default ?? null),
      properties: { [WIDGET_NAMES_PROPERTY]: [...(def?.widgetNames ?? [])] },
    });
  }
  for (const node of wfNodes) {
    const def = registry.get(node.type);
    const src = [...numericId].find(([, num]) => num === node.id)![0];
    node.outputs = (def?.outputNames ?? []).map((name, i) => ({ name, type: def!.outputs[name], links: outLinks.get(src)?.[i] ?? [] }));
  }
  return {
    nodes: wfNodes,
    links,
    groups: [],
    last_node_id: Math.max(0, ...wfNodes.map((n) => Number(n.id))),
    last_link_id: links.length,
    version: 0.4,
  };
}

/** The links a node's inputs carry, by the registry's notion of which fields are sockets. */
export function linkRefs(node: ApiNode, registry: NodeRegistry): LinkRef[] {
  const def = registry.get(node.class_type);
  if (!def) return [];
  const out: LinkRef[] = [];
  for (const [name, spec] of Object.entries(def.inputs)) {
    const v = node.inputs[name];
    if (v === undefined || v === null) continue;
    if (spec.list && Array.isArray(v) && v.every(Array.isArray)) out.push(...(v as LinkRef[]));
    else if (isLinkRef(v)) out.push(v);
  }
  return out;
}

export function isLinkRef(v: unknown): v is LinkRef {
  return Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number') && Number.isInteger(v[1]) && (v[1] as number) >= 0;
}

export { ApiGraph };
