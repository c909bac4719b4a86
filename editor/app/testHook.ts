// window.__loragraph: read-only access for end-to-end tests and the benchmark — the store's state, the graph as
// workflow data, and where nodes, sockets and widgets are on screen — so tests assert on state and drive the real
// UI with real pointer events instead of scraping canvas pixels.
import type { CanvasController } from '../canvas/controller';
import type { LiveConnection } from '../net/socket';
import { editorStore, type EditorState } from '../state/editor';
import { attachedCanvas, setGraph } from './actions';

export interface TestHook {
  ready(): boolean;
  state(): EditorState;
  workflow(): ReturnType<CanvasController['workflow']> | null;
  geometry(): CanvasController['geometry'] | null;
  /** Simulates a dropped network connection (the editor must reconnect by itself). */
  dropConnection(): void;
  /** Loads a workflow as opening a file would (the benchmark's 300-node graph): the previous graph's results go with it. */
  load(workflow: unknown, name?: string): void;
  /** How the canvas drew its frames: full redraws, drag frames that moved the picture (canvas/panBlit), and redraws
   *  of only the nodes whose live state changed (canvas/areaRedraw). */
  frames(): { full: number; moved: number; partial: number };
  panByMovingPixels(on: boolean): void;
}

declare global {
  interface Window {
    __loragraph?: TestHook;
  }
}

export function installTestHook(live: LiveConnection): void {
  window.__loragraph = {
    ready: () => attachedCanvas() !== null && editorStore.get().objectInfo !== null,
    state: () => structuredClone(editorStore.get()),
    workflow: () => attachedCanvas()?.workflow() ?? null,
    geometry: () => attachedCanvas()?.geometry ?? null,
    dropConnection: () => live.drop(),
    load: (wf, name = 'untitled') => setGraph(name, wf as never),
    frames: () => attachedCanvas()?.frames() ?? { full: 0, moved: 0, partial: 0 },
    panByMovingPixels: (on) => attachedCanvas()?.panByMovingPixels(on),
  };
}
