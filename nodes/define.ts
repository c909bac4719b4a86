// The one place a node type is declared: sockets, zod widgets (defaults, ranges, options, tooltips), outputs and
// execute. /api/object_info, validation, the editor's widgets and the CLI's --set all read this declaration.
import { z } from 'zod';
import type { NodeInfo, PreviewMime, UiOutput, WidgetInfo, WidgetKind } from '../server/protocol';

/** Socket type names shown on the canvas; any other upper-case name works too, `*` accepts anything. */
export type SocketType =
  | 'MODEL'
  | 'CLIP'
  | 'VAE'
  | 'DATASET'
  | 'ADAPTER'
  | 'OPTIMIZER'
  | 'SCHEDULE'
  | 'REGULARIZER'
  | 'TRAINING'
  | 'IMAGES'
  | 'LORA_FILE'
  | 'SAMPLER_SETTINGS'
  | 'LOSS_HISTORY'
  | '*'
  | (string & {});

export type NodeCategory = 'loaders' | 'data' | 'training' | 'sampling' | 'output' | 'utils' | (string & {});

export interface InputSpec<T = any, O extends boolean = boolean, L extends boolean = boolean> {
  type: SocketType;
  optional: O;
  /** Accepts several links (e.g. Train's datasets); execute receives an array in link order. */
  list: L;
  tooltip?: string;
  /** Phantom: the value type execute receives. */
  readonly __value?: T;
}

interface InputOptions {
  tooltip?: string;
}
/**
 * A typed socket. `input<Vae>('VAE', { optional: true })` types the value execute receives (undefined when not
 * connected); `{ list: true }` accepts several links and execute receives an array (empty when none).
 */
export function input<T = any>(type: SocketType, opts?: InputOptions & { optional?: false; list?: false }): InputSpec<T, false, false>;
export function input<T = any>(type: SocketType, opts: InputOptions & { optional: true; list?: false }): InputSpec<T, true, false>;
export function input<T = any>(type: SocketType, opts: InputOptions & { optional?: boolean; list: true }): InputSpec<T, boolean, true>;
export function input(type: SocketType, opts: InputOptions & { optional?: boolean; list?: boolean } = {}): InputSpec {
  return { type, optional: opts.optional ?? false, list: opts.list ?? false, ...(opts.tooltip ? { tooltip: opts.tooltip } : {}) };
}

type InputValue<S> = S extends InputSpec<infer T, infer O, infer L>
  ? L extends true
    ? readonly T[]
    : O extends true
      ? T | undefined
      : T
  : never;
export type InputValues<I extends Record<string, InputSpec>> = { [K in keyof I]: InputValue<I[K]> };

// ---- widgets -------------------------------------------------------------------------------------------
// Each builder returns a plain zod schema whose metadata (kind, step, tooltip as description, …) rides in zod's
// global registry, so z.toJSONSchema and describeWidget see it, and chaining (.describe, .refine) keeps it.

interface Common {
  tooltip?: string;
  /**
   * The model families (ids: 'sd1', 'sdxl', 'flux2', 'flux1', 'wan') this widget means anything for; absent:
   * every family. The editor disables it, saying why, on a node whose model is of another family; the value
   * is kept in the graph.
   */
  families?: readonly string[];
  /** This widget names the node's model family (Load Model's `family`): a value other than 'auto' is the family's id. */
  choosesFamily?: boolean;
}
const meta = (kind: WidgetKind, extra: Record<string, unknown> & Common) => {
  const { tooltip, families, choosesFamily, ...rest } = extra;
  return { widget: kind, ...(tooltip ? { description: tooltip } : {}), ...(families ? { families: [...families] } : {}), ...(choosesFamily ? { choosesFamily } : {}), ...rest };
};

const common = (o: Common): Common => ({ tooltip: o.tooltip, families: o.families, choosesFamily: o.choosesFamily });

function int(opts: { default?: number; min?: number; max?: number; step?: number } & Common = {}) {
  let s = z.number().int();
  if (opts.min !== undefined) s = s.min(opts.min);
  if (opts.max !== undefined) s = s.max(opts.max);
  return s.default(opts.default ?? opts.min ?? 0).meta(meta('int', { ...common(opts), step: opts.step ?? 1 }));
}

function float(opts: { default?: number; min?: number; max?: number; step?: number } & Common = {}) {
  let s = z.number();
  if (opts.min !== undefined) s = s.min(opts.min);
  if (opts.max !== undefined) s = s.max(opts.max);
  return s.default(opts.default ?? opts.min ?? 0).meta(meta('float', { ...common(opts), step: opts.step ?? 0.01 }));
}

function toggle(opts: { default?: boolean } & Common = {}) {
  return z.boolean().default(opts.default ?? false).meta(meta('toggle', { ...common(opts) }));
}

function combo<const T extends readonly [string, ...string[]]>(options: T, opts: { default?: T[number] } & Common = {}) {
  return z
    .enum(options)
    .default((opts.default ?? options[0]) as never)
    .meta(meta('combo', { ...common(opts) }));
}

function text(opts: { default?: string; multiline?: boolean; maxLength?: number } & Common = {}) {
  return z
    .string()
    .max(opts.maxLength ?? 100_000)
    .default(opts.default ?? '')
    .meta(meta('text', { ...common(opts), multiline: opts.multiline ?? false }));
}

/** Project folder a path widget points into; the executor confines the value to it (ctx.resolvePath). */
export type PathKind = 'models' | 'model' | 'datasets' | 'dataset' | 'input' | 'output' | 'temp' | 'runs' | 'lora' | (string & {});

/** A file or folder path. Without a default it is required. */
function path(opts: { kind: PathKind; default?: string } & Common) {
  const s = z.string().min(1, 'a path is required').max(4096);
  const m = meta('path', { ...common(opts), pathKind: opts.kind });
  return opts.default !== undefined ? s.default(opts.default).meta(m) : s.meta(m);
}

/** A random seed (an int over the JS-safe range). */
function seed(opts: { default?: number } & Common = {}) {
  return z
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .default(opts.default ?? 0)
    .meta(meta('seed', { ...common(opts), step: 1 }));
}

export const widget = { int, float, toggle, combo, text, path, seed };

/** What the editor shows for one widget, read from the zod schema (ranges, default, options) and its metadata. */
export function describeWidget(name: string, schema: z.ZodType): WidgetInfo {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const num = (k: string) => (typeof js[k] === 'number' && Number.isFinite(js[k]) ? (js[k] as number) : undefined);
  const declared = typeof js.widget === 'string' ? (js.widget as WidgetKind) : undefined;
  const kind: WidgetKind =
    declared ??
    (js.enum ? 'combo' : js.type === 'integer' ? 'int' : js.type === 'number' ? 'float' : js.type === 'boolean' ? 'toggle' : 'text');
  const info: WidgetInfo = { name, kind };
  if (js.default !== undefined) info.default = js.default;
  const min = num('minimum'), max = num('maximum'), step = num('step');
  // Integers get ±2^53 bounds from toJSONSchema when none were set; those are not ranges a user chose.
  if (min !== undefined && min > -Number.MAX_SAFE_INTEGER) info.min = min;
  if (max !== undefined && max < Number.MAX_SAFE_INTEGER) info.max = max;
  if (step !== undefined) info.step = step;
  if (Array.isArray(js.enum)) info.options = js.enum.map(String);
  if (js.multiline === true) info.multiline = true;
  if (typeof js.pathKind === 'string') info.pathKind = js.pathKind;
  if (typeof js.description === 'string') info.tooltip = js.description;
  if (Array.isArray(js.families)) info.families = js.families.map(String);
  if (js.choosesFamily === true) info.choosesFamily = true;
  if (schema.safeParse(undefined).success && js.default === undefined) info.optional = true;
  return info;
}

// ---- execution context ----------------------------------------------------------------------------------

export interface ProgressReport {
  step: number;
  total: number;
  /** Node-specific numbers shown live (loss, lr, …). */
  data?: Record<string, unknown>;
}

export type ProjectFolder = 'models' | 'datasets' | 'input' | 'output' | 'temp' | 'runs';

export interface NodeContext {
  readonly nodeId: string;
  readonly promptId: string;
  /** This node's content-addressed cache key (hex). */
  readonly cacheKey: string;
  /** A folder for this node key (checkpoints, latent caches); created on first access and kept across restarts. */
  readonly workDir: string;
  /** Absolute project folders. */
  readonly paths: Readonly<Record<ProjectFolder, string>>;
  /** Aborted when the job is interrupted; hand it to long awaits. */
  readonly signal: AbortSignal;
  /** Resolves a user-given path inside a project folder; throws a clear error when it would leave it. */
  resolvePath(kind: PathKind, p: string): string;
  /** Reports progress (it/s and ETA are computed); throws InterruptedError if the job was interrupted. */
  progress(report: ProgressReport): void;
  throwIfInterrupted(): void;
  /** A message shown on the node and in the job's log (skipped files, fallbacks). */
  warn(message: string): void;
  /** Sends an image to every client as a binary preview frame. */
  preview(image: { mime: PreviewMime; data: Uint8Array }): void;
  /** The graph being run (API or workflow form), when the executor provides it: Save LoRA stores it in the file. */
  readonly workflow?: unknown;
}

export class InterruptedError extends Error {
  constructor(message = 'interrupted') {
    super(message);
    this.name = 'InterruptedError';
  }
}

// ---- the declaration ------------------------------------------------------------------------------------

export interface ExecuteArgs<I extends Record<string, InputSpec>, W extends z.ZodObject> {
  inputs: InputValues<I>;
  widgets: Readonly<z.output<W>>;
  ctx: NodeContext;
}

export interface ExecuteResult<O extends Record<string, SocketType>> {
  outputs: { [K in keyof O]: unknown };
  ui?: UiOutput;
}

export interface NodeSpec<I extends Record<string, InputSpec>, W extends z.ZodObject, O extends Record<string, SocketType>> {
  type: string;
  title?: string;
  category: NodeCategory;
  description?: string;
  /** Bump when execute's results change for the same inputs: it invalidates cached results. */
  version?: number;
  inputs?: I;
  widgets?: W;
  outputs?: O;
  /** Output nodes (Save, Preview, Sampler) are what a run executes towards. */
  isOutput?: boolean;
  /**
   * For nodes that read files: a short digest of what they would read (names, sizes, times), joined to
   * the cache key, so editing a dataset folder re-runs the node although no widget changed.
   */
  fingerprint?(args: FingerprintArgs<W>): Promise<string> | string;
  execute(args: ExecuteArgs<I, W>): Promise<ExecuteResult<O>> | ExecuteResult<O>;
}

export interface FingerprintArgs<W extends z.ZodObject> {
  widgets: Readonly<z.output<W>>;
  resolvePath(kind: PathKind, p: string): string;
}

const NODE_BRAND = Symbol.for('loragraph.node');

export interface NodeDefinition {
  readonly [NODE_BRAND]: true;
  readonly type: string;
  readonly title: string;
  readonly category: string;
  readonly description: string;
  readonly version: number;
  readonly isOutput: boolean;
  fingerprint?(args: { widgets: Record<string, unknown>; resolvePath(kind: PathKind, p: string): string }): Promise<string> | string;
  readonly inputs: Readonly<Record<string, InputSpec>>;
  readonly widgets: z.ZodObject;
  readonly outputs: Readonly<Record<string, SocketType>>;
  /** Output slot names in order (index = the output index used by links). */
  readonly outputNames: readonly string[];
  readonly widgetNames: readonly string[];
  execute(args: { inputs: Record<string, unknown>; widgets: Record<string, unknown>; ctx: NodeContext }): Promise<ExecuteResult<Record<string, SocketType>>>;
  /** The /api/object_info entry. */
  info(): NodeInfo;
}

const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_ .-]{0,99}$/;

export function defineNode<
  const I extends Record<string, InputSpec> = {},
  W extends z.ZodObject = z.ZodObject<{}>,
  const O extends Record<string, SocketType> = {},
>(spec: NodeSpec<I, W, O>): NodeDefinition {
  if (!TYPE_NAME.test(spec.type)) throw new Error(`defineNode: invalid type name "${spec.type}"`);
  const inputs = Object.freeze({ ...(spec.inputs ?? {}) }) as Record<string, InputSpec>;
  const widgets = (spec.widgets ?? z.object({})) as z.ZodObject;
  const outputs = Object.freeze({ ...(spec.outputs ?? {}) }) as Record<string, SocketType>;
  const widgetNames = Object.keys(widgets.shape);
  for (const name of widgetNames) {
    if (name in inputs) throw new Error(`defineNode ${spec.type}: "${name}" is both an input and a widget`);
  }
  let info: NodeInfo | undefined;
  const def: NodeDefinition = {
    [NODE_BRAND]: true,
    type: spec.type,
    title: spec.title ?? spec.type,
    category: spec.category,
    description: spec.description ?? '',
    version: spec.version ?? 1,
    isOutput: spec.isOutput ?? false,
    ...(spec.fingerprint ? { fingerprint: spec.fingerprint as NodeDefinition['fingerprint'] } : {}),
    inputs,
    widgets,
    outputs,
    outputNames: Object.keys(outputs),
    widgetNames,
    async execute(args) {
      return spec.execute(args as unknown as ExecuteArgs<I, W>) as ExecuteResult<Record<string, SocketType>>;
    },
    info() {
      info ??= {
        type: def.type,
        title: def.title,
        category: def.category,
        description: def.description,
        version: def.version,
        isOutput: def.isOutput,
        inputs: Object.entries(inputs).map(([name, s]) => ({
          name,
          type: s.type,
          optional: s.optional,
          list: s.list,
          ...(s.tooltip ? { tooltip: s.tooltip } : {}),
        })),
        widgets: widgetNames.map((name) => describeWidget(name, widgets.shape[name] as z.ZodType)),
        outputs: Object.entries(outputs).map(([name, type]) => ({ name, type })),
      };
      return info;
    },
  };
  return Object.freeze(def);
}

export function isNodeDefinition(x: unknown): x is NodeDefinition {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[NODE_BRAND] === true;
}

/** Whether a value of socket type `from` may feed an input of type `to`. */
export function socketAccepts(to: SocketType, from: SocketType): boolean {
  return to === '*' || from === '*' || to === from;
}
