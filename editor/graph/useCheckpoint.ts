// "Use this checkpoint" from the samples view, as plain data: the edits that load the LoRA a Train node saved at a
// step into a Load LoRA node and sample it with a Sampler of its own — reusing the Load LoRA and Sampler from an
// earlier pick, else adding them beside the graph's Sampler (same prompts and settings) where nothing else is.
// Pure over the workflow; the canvas applies the edits (CanvasController.edit).
import { WIDGET_NAMES_PROPERTY, type ObjectInfo, type Workflow } from '../../server/protocol';
import type { GraphEdit } from '../canvas/controller';

type WfNode = Workflow['nodes'][number];
interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

const TITLE = 30;
const SPACE = 40;
const LORA_WIDTH = 340;

const pair = (v: unknown, fallback: [number, number]): [number, number] =>
  Array.isArray(v) && v.length >= 2 && typeof v[0] === 'number' && typeof v[1] === 'number' ? [v[0], v[1]] : fallback;

/** A node's box with its title bar. */
export function nodeRect(n: WfNode): Rect {
  const [x, y] = pair(n.pos, [0, 0]);
  const [w, h] = pair(n.size, [240, 100]);
  return { x, y: y - TITLE, w, h: h + TITLE };
}

const hits = (a: Rect, b: Rect, m: number) => a.x < b.x + b.w + m && b.x < a.x + a.w + m && a.y < b.y + b.h + m && b.y < a.y + a.h + m;

/** The first place near `anchor` (right of it, then below it, then further right) where a w×h node (title bar
 *  included) touches nothing; returns the node position (below its title bar). */
export function freeSpot(taken: readonly Rect[], anchor: Rect, w: number, h: number): [number, number] {
  const fits = (x: number, y: number) => !taken.some((t) => hits({ x, y, w, h }, t, SPACE - 1));
  const candidates: [number, number][] = [
    [anchor.x + anchor.w + SPACE, anchor.y],
    [anchor.x, anchor.y + anchor.h + SPACE],
  ];
  for (let dx = 0; dx <= 4000; dx += 40) {
    candidates.push([anchor.x + anchor.w + SPACE + dx, anchor.y]);
    candidates.push([anchor.x + dx, anchor.y + anchor.h + SPACE]);
  }
  for (const [x, y] of candidates) if (fits(x, y)) return [x, y + TITLE];
  const right = Math.max(...taken.map((t) => t.x + t.w), anchor.x + anchor.w);
  return [right + SPACE, anchor.y + TITLE];
}

/** The node and output that feed `input` of `node`, if linked. */
export function originOf(wf: Workflow, node: WfNode, input: string): { node: WfNode; output: string } | null {
  const slot = (node.inputs ?? []).find((i) => i.name === input);
  if (slot?.link == null) return null;
  const link = wf.links.find((l) => l[0] === slot.link);
  if (!link) return null;
  const from = wf.nodes.find((n) => String(n.id) === String(link[1]));
  const output = from?.outputs?.[link[2]]?.name;
  return from && output ? { node: from, output } : null;
}

/** A node's widget values by name (from the names the workflow recorded, else the node library's order). */
export function widgetValues(node: WfNode, info: ObjectInfo): Record<string, unknown> {
  const values = node.widgets_values;
  if (values && !Array.isArray(values)) return { ...values };
  const names = (node.properties?.[WIDGET_NAMES_PROPERTY] as string[] | undefined) ?? info[node.type]?.widgets.map((w) => w.name) ?? [];
  const out: Record<string, unknown> = {};
  names.forEach((name, i) => {
    if (values && i < values.length) out[name] = values[i];
  });
  return out;
}

export interface CheckpointPlan {
  edits: GraphEdit[];
  /** Nodes to select and bring into view (ids or refs of added nodes). */
  reveal: string[];
  /** The Sampler that will sample the checkpoint (id, or the ref of the one added). */
  sampler: string;
  message: string;
}

/**
 * The edits that sample the LoRA file `lora` (a Load LoRA path, "output/…") that Train node `trainId` saved at `step`.
 * `sizeOf` gives a new node's size by type.
 */
export function planUseCheckpoint(wf: Workflow, info: ObjectInfo, trainId: string, lora: string, step: number, sizeOf: (type: string) => [number, number] | null): CheckpointPlan {
  const train = wf.nodes.find((n) => String(n.id) === trainId);
  if (!train) throw new Error(`node ${trainId} is not in the graph any more`);
  if (!info.LoadLora || !info.Sampler) throw new Error('this server has no Load LoRA or Sampler node');
  const model = originOf(wf, train, 'model'), clip = originOf(wf, train, 'clip'), vae = originOf(wf, train, 'vae');
  if (!model || !clip || !vae) throw new Error(`${train.title ?? 'Train'} has no model, clip or vae connected`);
  const edits: GraphEdit[] = [];
  const taken = wf.nodes.map(nodeRect);
  const template = wf.nodes.find((n) => n.type === 'Sampler' && String(originOf(wf, n, 'training')?.node.id) === trainId);
  const anchor = nodeRect(template ?? train);

  // The Load LoRA: one on the same model from an earlier pick, else a new one.
  let loraId: string;
  let loraAt: Rect;
  const existing = wf.nodes.find((n) => n.type === 'LoadLora' && String(originOf(wf, n, 'model')?.node.id) === String(model.node.id));
  if (existing) {
    loraId = String(existing.id);
    loraAt = nodeRect(existing);
    edits.push({ op: 'set', node: loraId, widget: 'loraFile', value: lora });
  } else {
    const [w0, h] = sizeOf('LoadLora') ?? [240, 80];
    const w = Math.max(w0, LORA_WIDTH); // room for the file name
    const at = freeSpot(taken, anchor, w, h + TITLE);
    loraId = 'lora';
    loraAt = { x: at[0], y: at[1] - TITLE, w, h: h + TITLE };
    taken.push(loraAt);
    edits.push({ op: 'add', ref: loraId, type: 'LoadLora', title: 'Load LoRA: picked step', at, width: w, widgets: { loraFile: lora } });
    edits.push({ op: 'link', from: String(model.node.id), output: model.output, to: loraId, input: 'model' });
  }

  // Its Sampler: one it already feeds, else a new one with the prompts and settings of the graph's Sampler (or of the
  // Train node's sampler settings).
  let samplerId = existing ? wf.nodes.find((n) => n.type === 'Sampler' && String(originOf(wf, n, 'training')?.node.id) === loraId)?.id : undefined;
  if (samplerId === undefined) {
    const settingsNode = originOf(wf, train, 'samplerSettings')?.node;
    const source = template ?? settingsNode;
    const names = new Set(info.Sampler.widgets.map((w) => w.name));
    const widgets = Object.fromEntries(Object.entries(source ? widgetValues(source, info) : {}).filter(([k]) => names.has(k)));
    if (!template && names.has('compare')) widgets.compare = true;
    const [w0, h0] = sizeOf('Sampler') ?? [300, 400];
    // As big as the graph's Sampler (room for its samples), where that is known.
    const [w, h] = template ? pair(template.size, [w0, h0]).map((v, i) => Math.max(v, [w0, h0][i]!)) as [number, number] : [w0, h0];
    const at = freeSpot(taken, loraAt, w, h + TITLE);
    samplerId = 'sampler';
    edits.push({ op: 'add', ref: 'sampler', type: 'Sampler', title: 'Sampler: picked step', at, width: w, height: h, widgets });
    for (const [input, from] of [['model', model], ['clip', clip], ['vae', vae]] as const) {
      edits.push({ op: 'link', from: String(from.node.id), output: from.output, to: 'sampler', input });
    }
    edits.push({ op: 'link', from: loraId, output: 'training', to: 'sampler', input: 'training' });
  }
  const file = lora.split('/').pop();
  return {
    edits,
    reveal: [loraId, String(samplerId)],
    sampler: String(samplerId),
    message: `Load LoRA now reads ${file} (step ${step}); press Run to sample it`,
  };
}
