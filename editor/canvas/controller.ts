// What the rest of the editor may ask of the canvas: plain-data operations on the graph and, for tests and
// overlays, where things are on screen. The litegraph objects behind it stay inside editor/canvas.
import type { Workflow } from '../../server/protocol';

export interface ScreenPoint {
  x: number;
  y: number;
}

export interface ScreenRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ShownImageInfo extends ScreenRect {
  url: string;
  /** Size on the node (graph units: at 100 % zoom, screen pixels). */
  nodeWidth: number;
  nodeHeight: number;
  tiles: ScreenRect[];
  requested: boolean;
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
  /** A video sample's frames once decoded (0: a still image, or not decoded yet), the frame drawn last, and how long
   *  one loop plays. */
  frames: number;
  frameDrawn: number;
  durationMs: number;
}

/** One change to the graph, for actions that build on it (the samples view's "use this checkpoint"). Nodes are named
 *  by id, or by the `ref` an `add` in the same batch gave them. */
export type GraphEdit =
  | { op: 'add'; ref: string; type: string; title?: string; at: [number, number]; width?: number; height?: number; widgets?: Record<string, unknown> }
  | { op: 'set'; node: string; widget: string; value: unknown }
  | { op: 'link'; from: string; output: string; to: string; input: string };

export interface CanvasController {
  /** Applies edits as one undo step; returns the ids of the nodes added, by ref. Selects and shows `reveal`. */
  edit(edits: readonly GraphEdit[], reveal?: readonly string[]): Record<string, string>;
  /** Node sizes as a new node of a type would have them (for placing nodes before adding them). */
  sizeOf(type: string): [number, number] | null;
  /** Replaces the graph (null: an empty canvas). Resets undo. */
  load(workflow: Workflow | null): void;
  /** The graph as a workflow file would hold it. */
  workflow(): Workflow;
  /** Adds a node of `type` with its top-left at a point on screen (default: the middle of the view); returns its id. */
  addNode(type: string, at?: ScreenPoint): string | null;
  undo(): void;
  redo(): void;
  /** Puts a group around the selected nodes. */
  groupSelection(title?: string): boolean;
  fitView(): void;
  /** How frames were drawn since the editor opened: full redraws, frames of a drag that moved the picture, and
   *  redraws of only the nodes whose live state changed. */
  frames(): { full: number; moved: number; partial: number };
  /** Turns the moving-picture path for canvas drags on or off (the benchmark compares the two). */
  panByMovingPixels(on: boolean): void;
  geometry: {
    nodeIds(): string[];
    /** The middle of a node's title bar. */
    title(nodeId: string): ScreenPoint | null;
    slot(nodeId: string, side: 'input' | 'output', index: number): ScreenPoint | null;
    /** The middle of a widget's row, where the row starts and ends (its ◀ ▶ arrows sit at the ends), and whether it
     *  is greyed out (it means nothing for the node's model family). */
    widget(nodeId: string, name: string): (ScreenPoint & { left: number; right: number; disabled: boolean }) | null;
    /** The middle of the index-th image a node shows. */
    image(nodeId: string, index: number): ScreenPoint | null;
    /** The images a node shows: where on screen, their size on the node, their sample tiles on screen, and whether
     *  the browser loaded them (naturalWidth > 0). */
    images(nodeId: string): ShownImageInfo[];
    /** The "All samples" line of a node with several sampled steps. */
    samplesLink(nodeId: string): ScreenPoint | null;
    /** A node's box on screen, title bar included. */
    box(nodeId: string): ScreenRect | null;
    /** The canvas on screen and the zoom. */
    viewport(): ScreenRect & { scale: number };
    /** A point on empty canvas (the one nearest `near`, when given): where a drag pans the view. */
    emptySpot(near?: ScreenPoint): ScreenPoint;
    /** Pans the view by screen pixels. */
    pan(dx: number, dy: number): void;
    /** Sets the zoom (1 = 100 %) around the middle of the view. */
    zoom(scale: number): void;
  };
}
