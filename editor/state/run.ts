// What the canvas shows about jobs, folded from server messages by pure functions: per node, whether it is
// executing, cached, done or failed, its progress (it/s, ETA), its loss curve, and the images it produced.
import { sampleSheetsOf, type SampleSheet } from '../../nodes/sampling/sheet';
import type { LiveState, NodeErrors, ProgressInfo, ServerMessage, UiOutput } from '../../server/protocol';

export type NodeStatus = 'queued' | 'executing' | 'cached' | 'done' | 'error' | 'interrupted';

export interface LossPoint {
  step: number;
  loss: number;
}

export interface NodeRun {
  status: NodeStatus;
  progress: ProgressInfo | null;
  /** Loss reported with each progress step of the current execution (Train-like nodes). */
  loss: LossPoint[];
  /** Images to show on the node: output files (as /api/view paths) or live preview frames (blob URLs). */
  images: string[];
  /** Live preview frames of the current execution, replaced by the output files when the node finishes. */
  previews: string[];
  /** Sample sheets the node reported (ui.samples): per image of samples, its tiles' prompt, seed, step, strength. */
  sheets: { url: string; sheet: SampleSheet }[];
  text: string[];
  error: string | null;
  warnings: string[];
  /** The model family the node reported after it last ran (Load Model's ui.family): which widgets apply downstream. */
  family?: { id: string; label: string };
}

export interface RunState {
  /** The job being shown (running, or the last one that ran). */
  promptId: string | null;
  running: boolean;
  executing: string | null;
  nodes: Readonly<Record<string, NodeRun>>;
  /** Per node: why the server refused the last Run (missing inputs, values out of range…). */
  validation: NodeErrors;
  lastError: string | null;
}

export const emptyRun: RunState = { promptId: null, running: false, executing: null, nodes: {}, validation: {}, lastError: null };

const blankNode = (): NodeRun => ({ status: 'queued', progress: null, loss: [], images: [], previews: [], sheets: [], text: [], error: null, warnings: [] });

/** Turns a file reference into the URL the server serves it at. */
export function viewUrl(ref: { filename: string; subfolder?: string; type: string }): string {
  const q = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder ?? '', type: ref.type });
  return `api/view?${q}`;
}

const MAX_PREVIEWS = 16;
const MAX_LOSS_POINTS = 20_000;

function withNode(run: RunState, id: string, update: (n: NodeRun) => NodeRun): RunState {
  const prev = run.nodes[id] ?? blankNode();
  return { ...run, nodes: { ...run.nodes, [id]: update(prev) } };
}

function outputImages(output: UiOutput): string[] {
  return (output.images ?? []).map(viewUrl);
}

function applyOutput(n: NodeRun, output: UiOutput): NodeRun {
  const images = outputImages(output);
  const sheets = sampleSheetsOf(output).map((sheet) => ({ url: viewUrl(sheet.image), sheet }));
  return {
    ...n,
    images: images.length ? images : n.images,
    previews: images.length ? [] : n.previews,
    sheets: images.length ? sheets : n.sheets,
    text: output.text ?? n.text,
    ...(typeof output.family === 'string' ? { family: { id: output.family, label: typeof output.familyLabel === 'string' ? output.familyLabel : output.family } } : {}),
  };
}

function withLoss(n: NodeRun, p: ProgressInfo): LossPoint[] {
  const loss = p.data?.loss;
  if (typeof loss !== 'number' || !Number.isFinite(loss)) return n.loss;
  const last = n.loss[n.loss.length - 1];
  if (last && last.step >= p.step) return n.loss;
  const next = n.loss.length >= MAX_LOSS_POINTS ? n.loss.slice(1) : n.loss.slice();
  next.push({ step: p.step, loss });
  return next;
}

export function applyServerMessage(run: RunState, msg: ServerMessage): RunState {
  switch (msg.type) {
    case 'status':
      return applyLiveState(run, msg.data);
    case 'execution_start': {
      // A new job keeps what nodes showed before (cached nodes keep their images) but not their status.
      const nodes: Record<string, NodeRun> = {};
      for (const [id, n] of Object.entries(run.nodes)) nodes[id] = { ...n, status: 'queued', progress: null, error: null, warnings: [] };
      return { ...run, promptId: msg.data.promptId, running: true, executing: null, nodes, validation: {}, lastError: null };
    }
    case 'execution_cached': {
      if (msg.data.promptId !== run.promptId) return run;
      let next = run;
      for (const id of msg.data.nodes) next = withNode(next, id, (n) => ({ ...n, status: 'cached' }));
      return next;
    }
    case 'executing': {
      if (msg.data.promptId !== run.promptId) return run;
      if (msg.data.node === null) {
        const next = run.executing ? withNode(run, run.executing, (n) => (n.status === 'executing' ? { ...n, status: 'done' } : n)) : run;
        return { ...next, running: false, executing: null };
      }
      let next = run.executing && run.executing !== msg.data.node
        ? withNode(run, run.executing, (n) => (n.status === 'executing' ? { ...n, status: 'done' } : n))
        : run;
      next = withNode(next, msg.data.node, (n) => ({ ...n, status: 'executing', progress: null, loss: [], previews: [], error: null }));
      return { ...next, executing: msg.data.node };
    }
    case 'progress': {
      if (msg.data.promptId !== run.promptId) return run;
      return withNode(run, msg.data.node, (n) => ({ ...n, status: n.status === 'cached' ? n.status : 'executing', progress: msg.data, loss: withLoss(n, msg.data) }));
    }
    case 'executed': {
      if (msg.data.promptId !== run.promptId) return run;
      return withNode(run, msg.data.node, (n) => ({ ...applyOutput(n, msg.data.output), status: msg.data.cached ? 'cached' : 'done' }));
    }
    case 'warning':
      if (msg.data.promptId !== run.promptId) return run;
      return withNode(run, msg.data.node, (n) => ({ ...n, warnings: [...n.warnings, msg.data.message].slice(-5) }));
    case 'execution_success':
      return msg.data.promptId === run.promptId ? { ...run, running: false } : run;
    case 'execution_error': {
      if (msg.data.promptId !== run.promptId) return { ...run, lastError: msg.data.message };
      const next = msg.data.node ? withNode(run, msg.data.node, (n) => ({ ...n, status: 'error', error: msg.data.message, progress: null })) : run;
      return { ...next, running: false, executing: null, lastError: msg.data.node ? `${msg.data.nodeType ?? 'node'} ${msg.data.node}: ${msg.data.message}` : msg.data.message };
    }
    case 'execution_interrupted': {
      if (msg.data.promptId !== run.promptId) return run;
      const next = msg.data.node ? withNode(run, msg.data.node, (n) => ({ ...n, status: 'interrupted' })) : run;
      return { ...next, running: false, executing: null };
    }
    default:
      return run;
  }
}

/**
 * The server's picture of the running job, sent on every (re)connect: after a reload or a dropped socket the canvas
 * shows the executing node, its progress, and what already ran, was cached and was shown.
 */
export function applyLiveState(run: RunState, live: LiveState): RunState {
  const exec = live.exec;
  if (!exec) return run.running ? { ...run, running: false, executing: null } : run;
  let next: RunState = exec.promptId === run.promptId ? run : { ...run, promptId: exec.promptId, nodes: {}, validation: {} };
  next = { ...next, running: true, executing: exec.node };
  for (const id of exec.cached) next = withNode(next, id, (n) => ({ ...n, status: 'cached' }));
  for (const id of exec.executed) next = withNode(next, id, (n) => ({ ...n, status: 'done' }));
  for (const [id, out] of Object.entries(exec.outputs)) next = withNode(next, id, (n) => applyOutput(n, out));
  if (exec.node) {
    const node = exec.node;
    next = withNode(next, node, (n) => ({ ...n, status: 'executing', progress: exec.progress ?? n.progress, loss: exec.progress ? withLoss(n, exec.progress) : n.loss }));
  }
  // The server's whole loss series replaces a shorter one (a reload mid-training keeps the curve).
  for (const [id, series] of Object.entries(exec.loss ?? {})) {
    next = withNode(next, id, (n) => (series.length > n.loss.length ? { ...n, loss: series.slice(-MAX_LOSS_POINTS).map(([step, loss]) => ({ step, loss })) } : n));
  }
  return next;
}

/** A binary preview frame for a node: shown on it until the node's output images arrive. */
export function applyPreview(run: RunState, node: string, url: string): { run: RunState; dropped: string[] } {
  const prev = run.nodes[node] ?? blankNode();
  const previews = [...prev.previews, url];
  const dropped = previews.length > MAX_PREVIEWS ? previews.splice(0, previews.length - MAX_PREVIEWS) : [];
  return { run: withNode(run, node, (n) => ({ ...n, previews, images: n.images })), dropped };
}

export function applyValidation(run: RunState, nodeErrors: NodeErrors, message: string): RunState {
  return { ...run, validation: nodeErrors, lastError: message };
}

/** Exponential moving average, as TensorBoard's smoothing slider (0 = raw). Debiased so the start is not pulled to 0. */
export function smoothLoss(values: readonly number[], weight: number): number[] {
  const out = new Array<number>(values.length);
  let ema = 0;
  let norm = 0;
  for (let i = 0; i < values.length; i++) {
    ema = ema * weight + (1 - weight) * values[i]!;
    norm = norm * weight + (1 - weight);
    out[i] = norm > 0 ? ema / norm : values[i]!;
  }
  return out;
}
