// What the rest of the editor may ask of the canvas: plain-data operations on the graph and, for tests and
// overlays, where things are on screen. The litegraph objects behind it stay inside editor/canvas.
import type { Workflow } from '../../server/protocol';

export interface ScreenPoint {
  x: number;
  y: number;
}

export interface CanvasController {
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
    /** The middle of a widget's row, and where the row starts and ends (its ◀ ▶ arrows sit at the ends). */
    widget(nodeId: string, name: string): (ScreenPoint & { left: number; right: number }) | null;
    image(nodeId: string, index: number): ScreenPoint | null;
    /** A point on empty canvas (the one nearest `near`, when given): where a drag pans the view. */
    emptySpot(near?: ScreenPoint): ScreenPoint;
    /** Pans the view by screen pixels. */
    pan(dx: number, dy: number): void;
    /** Sets the zoom (1 = 100 %) around the middle of the view. */
    zoom(scale: number): void;
  };
}
