// The graph an import builds, as data: one widget set per node role (Load Model, Quantize, LoRA Target, …) and
// one per Dataset node. Every value is checked against the node's zod widget schema when it is set, so a value
// loragraph cannot take (a rank over 1024) is reported against its key instead of failing later. planToGraph
// wires the roles into the usual training graph and lays it out in readable columns. A two-expert model (Wan 2.2
// A14B) gets a second Load Model (and Quantize) for the low-noise expert, connected to Train's lowNoiseModel.
import type { z } from 'zod';
import type { NodeRegistry } from '../../nodes/registry';
import type { ApiGraph, Workflow } from '../protocol';
import { apiToWorkflow } from '../graph/workflow';

export const ROLE_TYPES = {
  model: 'LoadModel',
  quantize: 'Quantize',
  lowModel: 'LoadModel',
  lowQuantize: 'Quantize',
  target: 'LoraTarget',
  optimizer: 'Optimizer',
  schedule: 'TimestepSchedule',
  dop: 'DOP',
  sampler: 'SamplerSettings',
  train: 'Train',
  save: 'SaveLora',
  loss: 'LossGraph',
  dataset: 'Dataset',
} as const;

export type Role = keyof typeof ROLE_TYPES;
type Widgets = Record<string, unknown>;

/** A widget of a role, as mapping tables name it: `train.steps`, `dataset.repeats`. */
export type WidgetRef = `${Role}.${string}`;

export class WidgetValueError extends Error {}

export class Plan {
  readonly roles = new Map<Exclude<Role, 'dataset'>, Widgets>();
  readonly datasets: Widgets[] = [];

  constructor(readonly registry: NodeRegistry) {}

  /** Adds a role's node (with no widgets set) when it is not there yet. */
  use(role: Exclude<Role, 'dataset'>): Widgets {
    let w = this.roles.get(role);
    if (!w) this.roles.set(role, (w = {}));
    return w;
  }

  has(role: Exclude<Role, 'dataset'>): boolean {
    return this.roles.has(role);
  }

  dataset(i: number): Widgets {
    while (this.datasets.length <= i) this.datasets.push({});
    return this.datasets[i]!;
  }

  /** Sets a widget after checking it against the node's schema; returns the label the report shows. */
  set(ref: WidgetRef, value: unknown, datasetIndex = 0): string {
    const [role, widget] = splitRef(ref);
    const def = this.registry.get(ROLE_TYPES[role]);
    if (!def) throw new Error(`import: node type ${ROLE_TYPES[role]} is not registered`);
    const schema = def.widgets.shape[widget] as z.ZodType | undefined;
    if (!schema) throw new Error(`import: ${def.type} has no widget "${widget}" (mapping table out of date)`);
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new WidgetValueError(`${titleOf(role, datasetIndex)}.${widget} cannot take ${JSON.stringify(value)}: ${parsed.error.issues[0]!.message}`);
    const target = role === 'dataset' ? this.dataset(datasetIndex) : this.use(role);
    target[widget] = value;
    return label(ref, datasetIndex);
  }

  get(ref: WidgetRef, datasetIndex = 0): unknown {
    const [role, widget] = splitRef(ref);
    return role === 'dataset' ? this.datasets[datasetIndex]?.[widget] : this.roles.get(role)?.[widget];
  }
}

export function splitRef(ref: WidgetRef): [Role, string] {
  const dot = ref.indexOf('.');
  return [ref.slice(0, dot) as Role, ref.slice(dot + 1)];
}

const ROLE_TITLES: Record<Exclude<Role, 'dataset'>, string> = {
  model: 'Load Model', quantize: 'Quantize', lowModel: 'Load Model (low noise)', lowQuantize: 'Quantize (low noise)', target: 'LoRA Target', optimizer: 'Optimizer', schedule: 'Timestep Schedule',
  dop: 'DOP', sampler: 'Sampler Settings', train: 'Train', save: 'Save LoRA', loss: 'Loss Graph',
};

/** Node titles: the node's own title, and "Dataset 1", "Dataset 2", … so `--set "Dataset 2.folder=…"` can name them. */
export function titleOf(role: Role, datasetIndex = 0): string {
  return role === 'dataset' ? `Dataset ${datasetIndex + 1}` : ROLE_TITLES[role];
}

export function label(ref: WidgetRef, datasetIndex = 0): string {
  const [role, widget] = splitRef(ref);
  return `${titleOf(role, datasetIndex)}.${widget}`;
}

const ID: Record<Exclude<Role, 'dataset'>, string> = {
  model: '1', quantize: '2', target: '3', optimizer: '4', schedule: '5', dop: '6', sampler: '7', train: '8', save: '9', loss: '10',
  lowModel: '100', lowQuantize: '101',
};
const datasetId = (i: number) => String(11 + i);

/** The API graph: Load Model (→ Quantize) → Train ← Datasets, LoRA Target, Optimizer, Timestep Schedule, DOP, Sampler Settings; Train → Save LoRA, Loss. */
export function planToApi(plan: Plan): ApiGraph {
  const api: ApiGraph = {};
  const node = (role: Exclude<Role, 'dataset'>, inputs: Record<string, unknown> = {}) => {
    const title = ROLE_TITLES[role];
    // A title equal to the node type's own is not stored (as the editor saves it), so graphs compare equal after a round trip.
    const own = plan.registry.get(ROLE_TYPES[role])?.title === title;
    api[ID[role]] = { class_type: ROLE_TYPES[role], inputs: { ...(plan.roles.get(role) ?? {}), ...inputs }, ...(own ? {} : { _meta: { title } }) };
  };
  node('model');
  const quantized = plan.has('quantize');
  if (quantized) node('quantize', { model: [ID.model, 0], clip: [ID.model, 1] });
  const model = quantized ? [ID.quantize, 0] : [ID.model, 0];
  const clip = quantized ? [ID.quantize, 1] : [ID.model, 1];
  // The low-noise expert goes through the same quantisation as the high-noise one.
  let lowModel: unknown[] | undefined;
  if (plan.has('lowModel')) {
    node('lowModel');
    if (quantized) {
      plan.roles.set('lowQuantize', { ...plan.roles.get('quantize') });
      node('lowQuantize', { model: [ID.lowModel, 0], clip: [ID.lowModel, 1] });
    }
    lowModel = quantized ? [ID.lowQuantize, 0] : [ID.lowModel, 0];
  }
  node('target', { model });
  node('optimizer');
  node('schedule');
  plan.datasets.forEach((w, i) => {
    api[datasetId(i)] = { class_type: 'Dataset', inputs: { ...w }, _meta: { title: titleOf('dataset', i) } };
  });
  if (plan.has('dop')) node('dop');
  if (plan.has('sampler')) node('sampler');
  node('train', {
    model, clip, vae: [ID.model, 2],
    datasets: plan.datasets.map((_, i) => [datasetId(i), 0]),
    adapter: [ID.target, 0], optimizer: [ID.optimizer, 0], schedule: [ID.schedule, 0],
    ...(plan.has('dop') ? { regularizer: [ID.dop, 0] } : {}),
    ...(plan.has('sampler') ? { samplerSettings: [ID.sampler, 0] } : {}),
    ...(lowModel ? { lowNoiseModel: lowModel } : {}),
  });
  node('save', { training: [ID.train, 0] });
  node('loss', { lossHistory: [ID.train, 1] });
  return api;
}

/** A node's height on the canvas: title bar, one row per socket line and per widget (multi-line text taller). */
function heightOf(registry: NodeRegistry, type: string): number {
  const info = registry.get(type)?.info();
  if (!info) return 120;
  const rows = Math.max(info.inputs.length, info.outputs.length) + info.widgets.reduce((n, w) => n + (w.multiline ? 3 : 1), 0);
  return 40 + rows * 24;
}

/** Columns read left to right as the pipeline does: model and data, what to train, how, then the run and its outputs. */
const COLUMNS: Role[][] = [['model', 'quantize', 'lowModel', 'lowQuantize', 'dataset'], ['target', 'optimizer', 'schedule', 'dop'], ['sampler', 'train'], ['save', 'loss']];

export function planToWorkflow(plan: Plan, api: ApiGraph = planToApi(plan)): Workflow {
  const wf = apiToWorkflow(api, plan.registry);
  const byId = new Map(wf.nodes.map((n) => [String(n.id), n]));
  const widths = [320, 320, 360, 320];
  let x = 40;
  COLUMNS.forEach((roles, col) => {
    let y = 40;
    for (const role of roles) {
      const ids = role === 'dataset' ? plan.datasets.map((_, i) => datasetId(i)) : [ID[role]];
      for (const id of ids) {
        const n = byId.get(id);
        if (!n) continue;
        const h = heightOf(plan.registry, n.type);
        n.pos = [x, y];
        n.size = [widths[col]!, h];
        y += h + 40;
      }
    }
    x += widths[col]! + 50;
  });
  return wf;
}
