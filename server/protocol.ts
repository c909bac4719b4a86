// The wire protocol between the loragraph server and its clients (the browser editor, the CLI, scripts).
// Imports zod only, so the editor bundles this same file and both sides validate the same shapes.
//
// HTTP (JSON unless noted; every error is `{ error: { type, message }, nodeErrors? }` with a 4xx/5xx status):
//   GET  /api/object_info            → ObjectInfo: every node type, generated from its defineNode declaration
//   POST /api/prompt  PromptRequest  → PromptResponse | 400 InvalidPrompt (per-node, per-field errors)
//   GET  /api/prompt                 → PromptStatus
//   GET  /api/queue                  → QueueSnapshot;  POST /api/queue QueueCommand ({delete:[ids]} | {clear:true})
//   GET  /api/history[?maxItems=N]   → { [promptId]: HistoryEntry };  GET /api/history/:id;  POST /api/history QueueCommand
//   POST /api/interrupt [{promptId}] → { interrupted: boolean }
//   GET  /api/view?filename=&subfolder=&type=output|input|temp   → the file's bytes (confined to the project folders)
//   POST /api/upload  multipart: image (file), subfolder?, type? (input|temp), overwrite? → UploadResponse
//   GET  /api/system_stats           → SystemStats
//   GET  /api/graphs                 → { graphs: [name] };  GET /api/graphs/:name → the graph file's JSON
// Beyond 127.0.0.1 every request needs the access token: `Authorization: Bearer T`, `?token=T` or the cookie
// that a `?token=` page load sets.
//
// WebSocket /ws?clientId=ID. The server sends JSON text frames `{ type, data }` (ServerMessage) and binary
// preview frames (encodePreviewFrame). On connect it sends `status` with the live state, so a client that joins
// mid-job sees the queue, the node executing, its progress and the outputs so far. During a job:
//   execution_start → execution_cached (nodes skipped because their cache key is unchanged)
//   → for each executed node: executing, progress*, warning*, executed (when it has ui output)
//   → execution_success | execution_error | execution_interrupted;  then executing {node: null} and status.
// Clients may send ClientMessage frames (`ping`); a malformed frame is answered with an `error` message.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

// ---- graphs ----------------------------------------------------------------------------------------------

/** A link in the API form: [source node id, output index]. */
export const LinkRef = z.tuple([z.union([z.string(), z.number()]), z.number().int().min(0)]);
export type LinkRef = z.infer<typeof LinkRef>;

/** The compact API form: `{ "id": { class_type, inputs: { name: value | [nodeId, outputIndex] } } }`. */
export const ApiNode = z.object({
  class_type: z.string().min(1),
  inputs: z.record(z.string(), z.unknown()).default({}),
  _meta: z.object({ title: z.string().optional() }).loose().optional(),
});
export type ApiNode = z.infer<typeof ApiNode>;
export const ApiGraph = z.record(z.string(), ApiNode);
export type ApiGraph = z.infer<typeof ApiGraph>;

/** The editor's workflow file (LiteGraph serialisation). Only what running needs is checked strictly. */
export const WorkflowNode = z
  .object({
    id: z.union([z.number(), z.string()]),
    type: z.string(),
    title: z.string().optional(),
    pos: z.unknown().optional(),
    size: z.unknown().optional(),
    mode: z.number().optional(), // 0 always, 2 muted (never runs), 4 bypassed (inputs pass through)
    inputs: z
      .array(z.object({ name: z.string(), type: z.unknown().optional(), link: z.number().nullable().optional(), widget: z.unknown().optional() }).loose())
      .optional(),
    outputs: z.array(z.object({ name: z.string(), type: z.unknown().optional(), links: z.array(z.number()).nullable().optional() }).loose()).optional(),
    widgets_values: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]).optional(),
    /** `loragraph.widgets`: the widget names widgets_values were written for, so a saved graph survives a node gaining a widget. */
    properties: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
/** The node property naming the widgets a positional widgets_values array was written for. */
export const WIDGET_NAMES_PROPERTY = 'loragraph.widgets';
export type WorkflowNode = z.infer<typeof WorkflowNode>;

/** [link id, origin node id, origin slot, target node id, target slot, type] */
export const WorkflowLink = z.tuple([
  z.number(),
  z.union([z.number(), z.string()]),
  z.number(),
  z.union([z.number(), z.string()]),
  z.number(),
  z.unknown(),
]);
export const Workflow = z
  .object({
    nodes: z.array(WorkflowNode),
    links: z.array(WorkflowLink).default([]),
    groups: z.array(z.unknown()).optional(),
    last_node_id: z.number().optional(),
    last_link_id: z.number().optional(),
    version: z.unknown().optional(),
  })
  .loose();
export type Workflow = z.infer<typeof Workflow>;

// ---- node library ----------------------------------------------------------------------------------------

export const WidgetKind = z.enum(['int', 'float', 'toggle', 'combo', 'text', 'path', 'seed']);
export type WidgetKind = z.infer<typeof WidgetKind>;

export const WidgetInfo = z.object({
  name: z.string(),
  kind: WidgetKind,
  default: z.unknown().optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  step: z.number().optional(),
  options: z.array(z.string()).optional(),
  multiline: z.boolean().optional(),
  pathKind: z.string().optional(),
  tooltip: z.string().optional(),
  optional: z.boolean().optional(),
  /** Model families (ids) the widget applies to; absent: all. The editor disables it on nodes of another family. */
  families: z.array(z.string()).optional(),
  /** The widget names the node's model family (a value other than 'auto' is the family id). */
  choosesFamily: z.boolean().optional(),
});
export type WidgetInfo = z.infer<typeof WidgetInfo>;

export const InputInfo = z.object({
  name: z.string(),
  type: z.string(),
  optional: z.boolean(),
  list: z.boolean(),
  tooltip: z.string().optional(),
});
export const OutputInfo = z.object({ name: z.string(), type: z.string() });

export const NodeInfo = z.object({
  type: z.string(),
  title: z.string(),
  category: z.string(),
  description: z.string(),
  version: z.number(),
  isOutput: z.boolean(),
  inputs: z.array(InputInfo),
  widgets: z.array(WidgetInfo),
  outputs: z.array(OutputInfo),
});
export type NodeInfo = z.infer<typeof NodeInfo>;
export const ObjectInfo = z.record(z.string(), NodeInfo);
export type ObjectInfo = z.infer<typeof ObjectInfo>;

// ---- results shown on nodes ------------------------------------------------------------------------------

export const FileRef = z.object({ filename: z.string(), subfolder: z.string().default(''), type: z.enum(['output', 'input', 'temp']) });
export type FileRef = z.infer<typeof FileRef>;

/** What a node shows in the editor after it ran (images by reference, text, and anything node-specific). */
export const UiOutput = z
  .object({ images: z.array(FileRef).optional(), text: z.array(z.string()).optional() })
  .catchall(z.unknown());
export type UiOutput = z.infer<typeof UiOutput>;

// ---- validation errors -----------------------------------------------------------------------------------

export const FieldError = z.object({ field: z.string(), message: z.string() });
export const NodeErrors = z.record(z.string(), z.object({ type: z.string(), title: z.string().optional(), errors: z.array(FieldError) }));
export type NodeErrors = z.infer<typeof NodeErrors>;

export const ErrorBody = z.object({
  error: z.object({ type: z.string(), message: z.string() }),
  nodeErrors: NodeErrors.optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

// ---- HTTP bodies -----------------------------------------------------------------------------------------

/** One swept widget: `{ widget: "Optimizer.learningRate", values: [1e-4, 3e-4] }` (node title or id, then widget). */
export const SweepAxis = z.object({
  widget: z.string().min(3).max(300),
  values: z.array(z.union([z.string().max(10_000), z.number(), z.boolean()])).min(1).max(100),
});
export type SweepAxis = z.infer<typeof SweepAxis>;

export const PromptRequest = z.object({
  /** An API graph or a workflow file. */
  prompt: z.record(z.string(), z.unknown()),
  clientId: z.string().max(200).optional(),
  /** true: run next (front of the queue) instead of appending. */
  front: z.boolean().optional(),
  /** The editor's workflow, kept with the job so history can restore the canvas. */
  workflow: z.unknown().optional(),
  /** Run the graph once per combination of these widget values (see SweepAxis); one job each. */
  sweep: z.array(SweepAxis).max(8).optional(),
});
export type PromptRequest = z.infer<typeof PromptRequest>;

/** Where a job sits in a sweep: its settings, or `shared` for the job that computes what every variant reuses. */
export const SweepInfo = z.object({
  id: z.string(),
  /** 0 for the shared job, 1..count for the variants. */
  index: z.number().int().min(0),
  count: z.number().int().min(1),
  /** The swept widget values of this variant ("Optimizer.learningRate" → 0.0003); empty for the shared job. */
  settings: z.record(z.string(), z.unknown()),
  shared: z.boolean().optional(),
});
export type SweepInfo = z.infer<typeof SweepInfo>;

export const PromptResponse = z.object({
  promptId: z.string(),
  number: z.number(),
  nodeErrors: NodeErrors,
  /** A sweep's jobs, shared job first (the fields above name the first variant). */
  sweep: z.object({ id: z.string(), jobs: z.array(z.object({ promptId: z.string(), number: z.number(), sweep: SweepInfo })) }).optional(),
});
export type PromptResponse = z.infer<typeof PromptResponse>;

export const JobSummary = z.object({
  promptId: z.string(),
  number: z.number(),
  createdAt: z.number(),
  clientId: z.string().optional(),
  nodeCount: z.number(),
  /** The worker running it (Redis queue; absent in the in-process queue). */
  worker: z.string().optional(),
  sweep: SweepInfo.optional(),
});
export type JobSummary = z.infer<typeof JobSummary>;

export const QueueSnapshot = z.object({ running: z.array(JobSummary), pending: z.array(JobSummary) });
export type QueueSnapshot = z.infer<typeof QueueSnapshot>;

export const PromptStatus = z.object({ queueRemaining: z.number(), running: z.string().nullable() });

export const QueueCommand = z.union([
  z.object({ delete: z.array(z.string().max(200)).max(10_000) }).strict(),
  z.object({ clear: z.literal(true) }).strict(),
]);
export type QueueCommand = z.infer<typeof QueueCommand>;

export const InterruptRequest = z.object({ promptId: z.string().optional() }).strict();

export const JobStatus = z.enum(['success', 'error', 'interrupted']);
export type JobStatus = z.infer<typeof JobStatus>;

export const ExecutionErrorInfo = z.object({
  node: z.string().nullable(),
  nodeType: z.string().nullable(),
  message: z.string(),
  /** The node's widget values and a description of each linked input. */
  inputs: z.record(z.string(), z.unknown()),
});
export type ExecutionErrorInfo = z.infer<typeof ExecutionErrorInfo>;

export const HistoryEntry = z.object({
  promptId: z.string(),
  number: z.number(),
  prompt: ApiGraph,
  workflow: z.unknown().optional(),
  status: JobStatus,
  createdAt: z.number(),
  startedAt: z.number().nullable(),
  endedAt: z.number(),
  outputs: z.record(z.string(), UiOutput),
  executed: z.array(z.string()),
  cached: z.array(z.string()),
  error: ExecutionErrorInfo.optional(),
  /** Why a job ended as interrupted: user request, or the server stopped while it ran. */
  reason: z.string().optional(),
  /** The worker that ran it (Redis queue). */
  worker: z.string().optional(),
  sweep: SweepInfo.optional(),
  /** The last training loss any node reported (for comparing a sweep's jobs). */
  finalLoss: z.number().optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

export const UploadResponse = z.object({ name: z.string(), subfolder: z.string(), type: z.enum(['input', 'temp']) });

export const SystemStats = z.object({
  system: z.object({
    os: z.string(),
    node: z.string(),
    loragraph: z.string(),
    protocol: z.number(),
    cpus: z.number(),
    ramTotal: z.number(),
    ramFree: z.number(),
  }),
  cache: z.object({ entries: z.number(), bytes: z.number(), budgetBytes: z.number() }),
});

// ---- WebSocket: server → client ----------------------------------------------------------------------------

export const ProgressInfo = z.object({
  promptId: z.string(),
  node: z.string(),
  step: z.number(),
  total: z.number(),
  itPerSec: z.number().nullable(),
  etaSeconds: z.number().nullable(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type ProgressInfo = z.infer<typeof ProgressInfo>;

/** What a client needs to draw the current moment: the queue, and the running job's node, progress and outputs. */
export const LiveState = z.object({
  queue: QueueSnapshot,
  exec: z
    .object({
      promptId: z.string(),
      node: z.string().nullable(),
      progress: ProgressInfo.nullable(),
      executed: z.array(z.string()),
      cached: z.array(z.string()),
      outputs: z.record(z.string(), UiOutput),
      /** Loss points [step, loss] reported so far per node, so a client that connects late draws the whole curve. */
      loss: z.record(z.string(), z.array(z.tuple([z.number(), z.number()]))).optional(),
    })
    .nullable(),
});
export type LiveState = z.infer<typeof LiveState>;

const msg = <T extends string, D extends z.ZodType>(type: T, data: D) => z.object({ type: z.literal(type), data });

export const StatusMessage = msg('status', LiveState.extend({ sid: z.string().optional() }));
export const ExecutionStartMessage = msg('execution_start', z.object({ promptId: z.string(), timestamp: z.number() }));
export const ExecutionCachedMessage = msg('execution_cached', z.object({ promptId: z.string(), nodes: z.array(z.string()) }));
/** node: null means the job finished. */
export const ExecutingMessage = msg('executing', z.object({ promptId: z.string(), node: z.string().nullable() }));
export const ProgressMessage = msg('progress', ProgressInfo);
export const ExecutedMessage = msg('executed', z.object({ promptId: z.string(), node: z.string(), output: UiOutput, cached: z.boolean() }));
export const WarningMessage = msg('warning', z.object({ promptId: z.string(), node: z.string(), message: z.string() }));
export const ExecutionSuccessMessage = msg('execution_success', z.object({ promptId: z.string(), timestamp: z.number() }));
export const ExecutionErrorMessage = msg('execution_error', ExecutionErrorInfo.extend({ promptId: z.string() }));
export const ExecutionInterruptedMessage = msg(
  'execution_interrupted',
  z.object({ promptId: z.string(), node: z.string().nullable(), nodeType: z.string().nullable(), reason: z.string() }),
);
export const ErrorMessage = msg('error', z.object({ status: z.number(), message: z.string() }));
export const PongMessage = msg('pong', z.object({ timestamp: z.number() }));

export const ServerMessage = z.discriminatedUnion('type', [
  StatusMessage,
  ExecutionStartMessage,
  ExecutionCachedMessage,
  ExecutingMessage,
  ProgressMessage,
  ExecutedMessage,
  WarningMessage,
  ExecutionSuccessMessage,
  ExecutionErrorMessage,
  ExecutionInterruptedMessage,
  ErrorMessage,
  PongMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
/** The events a job produces (everything but status, error and pong). */
export type ExecutionEvent = Exclude<ServerMessage, { type: 'status' | 'error' | 'pong' }>;

// ---- WebSocket: client → server ------------------------------------------------------------------------------

export const ClientMessage = z.discriminatedUnion('type', [z.object({ type: z.literal('ping') }).strict()]);
export type ClientMessage = z.infer<typeof ClientMessage>;

// ---- binary preview frames -------------------------------------------------------------------------------
// Layout (big-endian): u32 event (1 = preview image) | u32 format (1 = JPEG, 2 = PNG) | u16 node id length |
// node id (UTF-8) | image bytes. The first 8 bytes match ComfyUI's preview frames.

export const PREVIEW_IMAGE_EVENT = 1;
export const PreviewMime = z.enum(['image/jpeg', 'image/png']);
export type PreviewMime = z.infer<typeof PreviewMime>;
const formatCode: Record<PreviewMime, number> = { 'image/jpeg': 1, 'image/png': 2 };

export function encodePreviewFrame(node: string, mime: PreviewMime, image: Uint8Array): Uint8Array {
  const id = new TextEncoder().encode(node);
  if (id.length > 0xffff) throw new Error('node id too long for a preview frame');
  const out = new Uint8Array(10 + id.length + image.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, PREVIEW_IMAGE_EVENT);
  view.setUint32(4, formatCode[mime]);
  view.setUint16(8, id.length);
  out.set(id, 10);
  out.set(image, 10 + id.length);
  return out;
}

export function decodePreviewFrame(frame: Uint8Array): { node: string; mime: PreviewMime; image: Uint8Array } {
  if (frame.length < 10) throw new Error('preview frame too short');
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.getUint32(0) !== PREVIEW_IMAGE_EVENT) throw new Error(`unknown binary event ${view.getUint32(0)}`);
  const format = view.getUint32(4);
  const mime = format === 1 ? 'image/jpeg' : format === 2 ? 'image/png' : null;
  if (!mime) throw new Error(`unknown preview format ${format}`);
  const idLength = view.getUint16(8);
  if (frame.length < 10 + idLength) throw new Error('preview frame truncated');
  const node = new TextDecoder().decode(frame.subarray(10, 10 + idLength));
  return { node, mime, image: frame.subarray(10 + idLength) };
}
