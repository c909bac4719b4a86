// The editor's whole UI state in one store: the node library, the connection, queue and history, the live job
// (state/run.ts), and transient UI (hints, the enlarged image). The graph itself lives in the canvas and is saved
// as plain workflow data (graph/workflowFile.ts).
import type { SampleSheet } from '../../nodes/sampling/sheet';
import type { HistoryEntry, ObjectInfo, QueueSnapshot } from '../../server/protocol';
import { emptyRun, type RunState } from './run';
import { createStore } from './store';

export type Connection = 'connecting' | 'open' | 'reconnecting';

export interface EditorState {
  objectInfo: ObjectInfo | null;
  /** Files and folders a path widget may pick, by path kind (models, datasets, …). */
  pathChoices: Readonly<Record<string, readonly string[]>>;
  examples: readonly string[];
  connection: Connection;
  queue: QueueSnapshot;
  history: readonly HistoryEntry[];
  run: RunState;
  /** A short message near the canvas (refused link, file that would not open, server error). */
  hint: { message: string; kind: 'info' | 'error'; id: number } | null;
  /** The image shown large: its URL and, for a sample sheet, its tiles (the one clicked picked out). */
  lightbox: Lightbox | null;
  /** The samples view: every sampled step × every prompt of a node (a Train node's samples). */
  samplesView: { node: string } | null;
  graphName: string;
  panel: 'queue' | 'history' | null;
  search: { x: number; y: number; query: string } | null;
}

export const editorStore = createStore<EditorState>({
  objectInfo: null,
  pathChoices: {},
  examples: [],
  connection: 'connecting',
  queue: { running: [], pending: [] },
  history: [],
  run: emptyRun,
  hint: null,
  lightbox: null,
  samplesView: null,
  graphName: 'untitled',
  panel: null,
  search: null,
});

let hintId = 0;
export function showHint(message: string, kind: 'info' | 'error' = 'info'): void {
  const id = ++hintId;
  editorStore.set((s) => ({ ...s, hint: { message, kind, id } }));
  setTimeout(() => editorStore.set((s) => (s.hint?.id === id ? { ...s, hint: null } : s)), kind === 'error' ? 8000 : 4000);
}

export interface Lightbox {
  url: string;
  sheet?: SampleSheet;
  /** The tile that was clicked (index into sheet.tiles). */
  tile?: number | null;
  /** The node the image belongs to. */
  node?: string;
}

export function openLightbox(box: Lightbox): void {
  editorStore.set((s) => ({ ...s, lightbox: box }));
}

export function openSamplesView(node: string): void {
  editorStore.set((s) => ({ ...s, samplesView: { node } }));
}
