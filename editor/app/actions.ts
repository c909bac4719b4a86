// What the toolbar, panels and keyboard do, in one place: run / run next / interrupt / cancel, open and save graph
// files, load examples, and refresh the queue and history. Each works through the CanvasController and the store.
import { ImportFailed, importConfig, isConfigFile } from './importConfig';
import type { SampleSheet } from '../../nodes/sampling/sheet';
import type { Workflow } from '../../server/protocol';
import type { CanvasController } from '../canvas/controller';
import { planUseCheckpoint } from '../graph/useCheckpoint';
import { downloadWorkflow, lastGraph, parseWorkflowText, rememberGraph, toWorkflow, WorkflowFileError } from '../graph/workflowFile';
import { api, ApiError } from '../net/api';
import { clientId } from '../net/socket';
import { editorStore, showHint } from '../state/editor';
import { applyValidation } from '../state/run';

let canvas: CanvasController | null = null;

export function attachCanvas(c: CanvasController): void {
  canvas = c;
}

export function attachedCanvas(): CanvasController | null {
  return canvas;
}

function need(): CanvasController {
  if (!canvas) throw new Error('the canvas is not ready yet');
  return canvas;
}

/** Shows `wf` as the graph named `name`, as opening a file does; what nodes showed of the previous graph goes. */
export function setGraph(name: string, wf: Workflow | null): void {
  need().load(wf);
  // What nodes showed belonged to the previous graph; a running job's state stays (after a reload it is this graph's).
  editorStore.set((s) => ({ ...s, graphName: name, run: { ...s.run, nodes: s.run.running ? s.run.nodes : {}, validation: {} } }));
  rememberGraph(name, need().workflow());
}

export function graphChanged(wf: Workflow): void {
  rememberGraph(editorStore.get().graphName, wf);
}

/**
 * What opens on load: the graph remembered from the last visit; on a first visit the example named in the URL
 * (`?graph=`, as `npm start` prints it), else the quickstart, else an empty canvas.
 */
export async function openInitialGraph(): Promise<void> {
  const last = lastGraph();
  if (last) return setGraph(last.name, last.workflow);
  const named = new URL(window.location.href).searchParams.get('graph');
  const { examples } = editorStore.get();
  for (const name of [named, 'quickstart']) {
    if (name && examples.includes(name) && (await openExample(name))) return;
  }
  setGraph('untitled', null);
}

export async function openExample(name: string): Promise<boolean> {
  try {
    const data = await api.graph(name);
    setGraph(name, toWorkflow(data, `graphs/${name}.json`));
    return true;
  } catch (err) {
    showHint(err instanceof Error ? err.message : String(err), 'error');
    return false;
  }
}

export async function openFile(file: File): Promise<void> {
  try {
    const text = await file.text();
    // A training config people bring (ai-toolkit, kohya_ss, sd-scripts) becomes a graph on the server, with a report.
    if (isConfigFile(file.name, text)) {
      const answer = await importConfig(file.name, text);
      setGraph(file.name.replace(/\.(ya?ml|toml|json)$/i, ''), answer.workflow);
      showHint(`imported ${file.name} (${answer.report.family.label})`);
      return;
    }
    const wf = parseWorkflowText(text, file.name);
    setGraph(file.name.replace(/\.json$/i, ''), wf);
    showHint(`opened ${file.name}`);
  } catch (err) {
    showHint(err instanceof WorkflowFileError || err instanceof ImportFailed ? err.message : `${file.name}: ${(err as Error).message}`, 'error');
  }
}

export function newGraph(): void {
  setGraph('untitled', null);
}

export function saveGraph(): void {
  downloadWorkflow(editorStore.get().graphName, need().workflow());
}

export async function queueRun(front = false): Promise<void> {
  const wf = need().workflow();
  try {
    const res = await api.queuePrompt(wf, { clientId, front });
    editorStore.set((s) => ({ ...s, run: { ...s.run, validation: {}, lastError: null } }));
    showHint(`queued #${res.number}${front ? ' (next)' : ''}`);
  } catch (err) {
    if (err instanceof ApiError) {
      editorStore.set((s) => ({ ...s, run: applyValidation(s.run, err.nodeErrors, err.message) }));
      const first = Object.entries(err.nodeErrors)[0];
      const detail = first ? ` — node ${first[0]} (${first[1].title ?? first[1].type}): ${first[1].errors[0]?.message ?? ''}` : '';
      showHint(`${err.message}${detail}`, 'error');
    } else showHint(`cannot reach the server: ${(err as Error).message}`, 'error');
  }
  void refreshQueue();
}

export async function interrupt(promptId?: string): Promise<void> {
  await api.interrupt(promptId).catch((err) => showHint(String(err.message ?? err), 'error'));
}

export async function cancel(promptId: string): Promise<void> {
  await api.cancel([promptId]).catch((err) => showHint(String(err.message ?? err), 'error'));
  void refreshQueue();
}

export async function refreshQueue(): Promise<void> {
  const queue = await api.queue().catch(() => null);
  if (queue) editorStore.set((s) => ({ ...s, queue }));
}

export async function refreshHistory(): Promise<void> {
  const h = await api.history(50).catch(() => null);
  if (!h) return;
  const list = Object.values(h).sort((a, b) => b.number - a.number);
  editorStore.set((s) => ({ ...s, history: list }));
}

export async function deleteHistory(promptId: string): Promise<void> {
  await api.deleteHistory([promptId]).catch(() => {});
  void refreshHistory();
}

/** Puts a past job's graph back on the canvas. */
export function restoreFromHistory(workflow: unknown, number: number): void {
  try {
    setGraph(`run-${number}`, toWorkflow(workflow, `job #${number}`));
  } catch (err) {
    showHint((err as Error).message, 'error');
  }
}

export async function loadLibrary(): Promise<void> {
  const [objectInfo, graphs] = await Promise.all([api.objectInfo(), api.graphs().catch(() => ({ graphs: [] as string[] }))]);
  editorStore.set((s) => ({ ...s, objectInfo, examples: graphs.graphs }));
  await refreshPathChoices();
}

/** Lists what path widgets may pick, for every path kind the node library uses. */
export async function refreshPathChoices(): Promise<void> {
  const info = editorStore.get().objectInfo ?? {};
  const kinds = new Set(Object.values(info).flatMap((n) => n.widgets.filter((w) => w.kind === 'path').map((w) => w.pathKind ?? 'input')));
  const entries = await Promise.all(
    [...kinds].map(async (kind) => {
      const listing = await api.files(kind).catch(() => null);
      return [kind, listing ? listing.entries.map((e) => e.path) : []] as const;
    }),
  );
  editorStore.set((s) => ({ ...s, pathChoices: Object.fromEntries(entries) }));
}

/** The samples view's "Use this LoRA": samples the LoRA a Train node saved at that sheet's step (graph/useCheckpoint). */
export function pickCheckpoint(trainNode: string, sheet: SampleSheet): void {
  const c = need();
  const info = editorStore.get().objectInfo;
  if (!info || !sheet.lora || sheet.step === null) return;
  try {
    const plan = planUseCheckpoint(c.workflow(), info, trainNode, sheet.lora, sheet.step, (type) => c.sizeOf(type));
    c.edit(plan.edits, plan.reveal);
    showHint(plan.message);
  } catch (err) {
    showHint((err as Error).message, 'error');
  }
}

/** Opens the samples view on the node with the most sampled steps. */
export function openSamples(): void {
  const nodes = Object.entries(editorStore.get().run.nodes).filter(([, n]) => n.sheets.length > 0);
  nodes.sort((a, b) => b[1].sheets.length - a[1].sheets.length);
  if (nodes[0]) editorStore.set((s) => ({ ...s, samplesView: { node: nodes[0]![0] } }));
}
