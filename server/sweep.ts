// Sweeps: one graph expanded into one job per combination of swept widget values (`--sweep
// "Optimizer.learningRate=1e-4,3e-4,1e-3"`, a Sweep node, or `sweep` in POST /api/prompt). Work the jobs share
// is done once: a shared job runs first and fills the disk caches (latents, text embeddings) that the swept
// Train nodes read, by running their Dataset nodes with the Train node's VAE/CLIP connected and caching on —
// the way a person caches up front in the editor. Upstream nodes that only live in memory (a loaded model) are
// cached per process by the executor as usual.
import { randomUUID } from 'node:crypto';
import type { NodeRegistry } from '../nodes/registry';
import { GraphFormatError } from './graph/errors';
import { applyOverrides, findNodes } from './graph/set';
import { LinkRef, SweepAxis, type ApiGraph, type SweepInfo } from './protocol';
import type { EnqueueInput } from './queue';

/** The most jobs one sweep may make (the product of its axes' lengths). */
export const MAX_SWEEP_JOBS = 256;

export const SWEEP_NODE_TYPE = 'Sweep';

/** `"Optimizer.learningRate=1e-4,3e-4,1e-3"` → one axis (values split on commas). */
export function parseSweepArgument(arg: string): SweepAxis {
  const eq = arg.indexOf('=');
  const lhs = eq < 0 ? '' : arg.slice(0, eq).trim();
  const dot = lhs.lastIndexOf('.');
  const values = eq < 0 ? [] : arg.slice(eq + 1).split(',').map((v) => v.trim()).filter((v) => v !== '');
  if (eq < 0 || dot <= 0 || dot === lhs.length - 1 || values.length === 0) {
    throw new GraphFormatError(`--sweep "${arg}": expected "<node title or id>.<widget>=<value>,<value>,…"`);
  }
  return { widget: lhs, values };
}

/** Takes the Sweep nodes out of a graph and returns their axes. */
export function takeSweepNodes(api: ApiGraph): { api: ApiGraph; axes: SweepAxis[] } {
  const out: ApiGraph = {};
  const axes: SweepAxis[] = [];
  for (const [id, node] of Object.entries(api)) {
    if (node.class_type !== SWEEP_NODE_TYPE) {
      out[id] = node;
      continue;
    }
    const widget = String(node.inputs.widget ?? '').trim();
    const values = String(node.inputs.values ?? '');
    if (!widget) throw new GraphFormatError(`Sweep node ${id}: widget is empty (write "<node title>.<widget>", e.g. "Optimizer.learningRate")`);
    axes.push(parseSweepArgument(`${widget}=${values}`));
  }
  return { api: out, axes };
}

export interface SweepPlan {
  id: string;
  /** Fills the caches every variant reads; null when the variants share no cacheable work. */
  shared: ApiGraph | null;
  variants: { api: ApiGraph; settings: Record<string, unknown> }[];
}

/** Expands a graph over the axes; throws GraphFormatError naming the axis that does not fit the graph. */
export function expandSweep(api: ApiGraph, registry: NodeRegistry, axes: SweepAxis[]): SweepPlan {
  if (axes.length === 0) throw new GraphFormatError('a sweep needs at least one swept widget');
  const count = axes.reduce((n, a) => n * a.values.length, 1);
  if (count > MAX_SWEEP_JOBS) throw new GraphFormatError(`the sweep makes ${count} jobs; at most ${MAX_SWEEP_JOBS}`);
  const sweptNodes = new Set<string>();
  const parsed = axes.map((axis) => {
    const dot = axis.widget.lastIndexOf('.');
    if (dot <= 0) throw new GraphFormatError(`sweep "${axis.widget}": expected "<node title or id>.<widget>"`);
    const node = axis.widget.slice(0, dot);
    const ids = findNodes(api, registry, node);
    if (ids.length !== 1) throw new GraphFormatError(`sweep "${axis.widget}": ${ids.length ? `"${node}" names several nodes (ids ${ids.join(', ')}); use an id` : `no node titled or with id "${node}"`}`);
    sweptNodes.add(ids[0]!);
    return { node, widget: axis.widget.slice(dot + 1), values: axis.values };
  });
  let combos: { node: string; widget: string; value: string | number | boolean; label: string }[][] = [[]];
  for (const a of parsed) {
    combos = combos.flatMap((c) => a.values.map((value) => [...c, { node: a.node, widget: a.widget, value, label: `${a.node}.${a.widget}` }]));
  }
  const variants = combos.map((combo) => {
    const variant = applyOverrides(api, registry, combo.map((c) => ({ node: c.node, widget: c.widget, value: String(c.value) })));
    const settings: Record<string, unknown> = {};
    for (const c of combo) settings[c.label] = variant[findNodes(variant, registry, c.node)[0]!]!.inputs[c.widget];
    return { api: variant, settings };
  });
  return { id: randomUUID(), shared: sharedCacheGraph(api, registry, sweptNodes), variants };
}

/** The plan as queue entries: the shared job first, then the variants in order. */
export function sweepJobs(plan: SweepPlan, base: Omit<EnqueueInput, 'prompt' | 'sweep'>): EnqueueInput[] {
  const count = plan.variants.length;
  const jobs: EnqueueInput[] = [];
  if (plan.shared) jobs.push({ ...base, prompt: plan.shared, workflow: undefined, sweep: { id: plan.id, index: 0, count, settings: {}, shared: true } });
  plan.variants.forEach((v, i) => jobs.push({ ...base, prompt: v.api, sweep: { id: plan.id, index: i + 1, count, settings: v.settings } }));
  return jobs;
}

type Link = { node: string; output: number };

function linksOf(value: unknown): Link[] {
  const one = LinkRef.safeParse(value);
  if (one.success) return [{ node: String(one.data[0]), output: one.data[1] }];
  if (Array.isArray(value)) return value.flatMap((v) => (LinkRef.safeParse(v).success ? linksOf(v) : []));
  return [];
}

/** Nodes downstream of (or equal to) any of `from`. */
function downstreamOf(api: ApiGraph, from: Set<string>): Set<string> {
  const down = new Set(from);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [id, node] of Object.entries(api)) {
      if (down.has(id)) continue;
      if (Object.values(node.inputs).some((v) => linksOf(v).some((l) => down.has(l.node)))) {
        down.add(id);
        grew = true;
      }
    }
  }
  return down;
}

/** Nodes `ids` read from, transitively, with them. */
function withAncestors(api: ApiGraph, ids: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const visit = (id: string) => {
    if (out.has(id) || !api[id]) return;
    out.add(id);
    for (const v of Object.values(api[id]!.inputs)) for (const l of linksOf(v)) visit(l.node);
  };
  for (const id of ids) visit(id);
  return out;
}

/**
 * The shared job: for each swept Train node, each of its datasets that no swept widget changes is run with the
 * Train node's VAE and CLIP connected and caching turned on as the Train node has it, ending in a Preview Image
 * of the dataset (an output, so the executor runs it). Null when there is no such dataset.
 */
function sharedCacheGraph(api: ApiGraph, registry: NodeRegistry, swept: Set<string>): ApiGraph | null {
  const down = downstreamOf(api, swept);
  const previewType = registry.get('PreviewImage') ? 'PreviewImage' : undefined;
  if (!previewType) return null;
  const plans = new Map<string, { vae?: Link; clip?: Link; latents: boolean; text: boolean }>();
  for (const [id, node] of Object.entries(api)) {
    if (node.class_type !== 'Train' || !down.has(id)) continue;
    const vae = linksOf(node.inputs.vae)[0];
    const clip = linksOf(node.inputs.clip)[0];
    const latents = node.inputs.cacheLatents !== false && vae !== undefined && !down.has(vae.node);
    const text = node.inputs.cacheTextEmbeddings !== false && clip !== undefined && !down.has(clip.node);
    if (!latents && !text) continue;
    for (const d of linksOf(node.inputs.datasets)) {
      const ds = api[d.node];
      if (!ds || ds.class_type !== 'Dataset' || down.has(d.node) || plans.has(d.node)) continue;
      // Captions that change on every draw cannot be cached; the Dataset node would refuse.
      const varying = ds.inputs.shuffleTags === true || Number(ds.inputs.tokenDropoutRate ?? 0) > 0;
      plans.set(d.node, { ...(latents ? { vae } : {}), ...(text && !varying ? { clip } : {}), latents, text: text && !varying });
    }
  }
  if (plans.size === 0) return null;
  const keep = withAncestors(api, [...plans.keys(), ...[...plans.values()].flatMap((p) => [p.vae?.node, p.clip?.node].filter((n): n is string => !!n))]);
  const out: ApiGraph = {};
  for (const id of keep) out[id] = structuredClone(api[id]!);
  let next = 1;
  const freshId = () => {
    while (out[`sweep-preview-${next}`]) next++;
    return `sweep-preview-${next}`;
  };
  for (const [id, p] of plans) {
    const ds = out[id]!;
    if (p.latents && p.vae) Object.assign(ds.inputs, { vae: [p.vae.node, p.vae.output], cacheLatents: true });
    if (p.text && p.clip) Object.assign(ds.inputs, { clip: [p.clip.node, p.clip.output], cacheTextEmbeddings: true });
    out[freshId()] = { class_type: previewType, inputs: { images: [id, 1] }, _meta: { title: 'Sweep: shared caches' } };
  }
  return out;
}
