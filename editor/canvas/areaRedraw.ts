// Redrawing part of the canvas (part of the canvas wrapper): when only some nodes' live state changed (a training
// step, a status, an image that arrived), the front canvas is redrawn inside their rectangles only — litegraph
// culls nodes to that area and clips to it — instead of every node in view. A training run reports every step, and
// a full redraw of a large graph costs 15–25 ms of CPU, taken from the training on the same machine.
//
// Whatever else marks the canvas dirty (litegraph itself on hover, selection, edits; the editor's redraw) still
// redraws the whole view: writes to litegraph's dirty_canvas flag are watched for that.
import type { LGraphCanvas } from '@comfyorg/litegraph';

type Rect = [x: number, y: number, w: number, h: number];

/** Past this share of the view, a part costs about as much as the whole. */
const MOSTLY_WHOLE = 0.5;

export interface AreaRedraw {
  /** Redraws this rectangle of the graph (graph coordinates) at the next frame. */
  add(area: Rect): void;
  /** Frames that redrew part of the view. */
  readonly frames: { partial: number };
  uninstall(): void;
}

export function installAreaRedraw(canvas: LGraphCanvas): AreaRedraw {
  const draw = canvas.draw;
  const internals = canvas as unknown as { viewport: Rect | undefined };
  const frames = { partial: 0 };
  let areas: Rect[] = [];
  let dirty = canvas.dirty_canvas;
  // Something other than add() asked for a redraw since the last frame.
  let whole = dirty;
  let adding = false;

  Object.defineProperty(canvas, 'dirty_canvas', {
    configurable: true,
    enumerable: true,
    get: () => dirty,
    set(value: boolean) {
      dirty = value;
      if (value && !adding) whole = true;
      // litegraph clears the flag as it starts drawing the front canvas: what was due is being drawn.
      if (!value) {
        whole = false;
        areas = [];
      }
    },
  });

  /** The areas on screen (CSS pixels), or null when they are most of the view anyway. */
  const screenArea = (): Rect | null => {
    const { scale, offset } = canvas.ds;
    const dpr = window.devicePixelRatio || 1;
    const viewW = canvas.canvas.width / dpr, viewH = canvas.canvas.height / dpr;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y, w, h] of areas) {
      x0 = Math.min(x0, (x + offset[0]) * scale);
      y0 = Math.min(y0, (y + offset[1]) * scale);
      x1 = Math.max(x1, (x + w + offset[0]) * scale);
      y1 = Math.max(y1, (y + h + offset[1]) * scale);
    }
    // Whole pixels and a pixel more on each side: antialiased edges of what is drawn stay inside.
    x0 = Math.max(0, Math.floor(x0) - 1);
    y0 = Math.max(0, Math.floor(y0) - 1);
    x1 = Math.min(viewW, Math.ceil(x1) + 1);
    y1 = Math.min(viewH, Math.ceil(y1) + 1);
    if (x1 <= x0 || y1 <= y0) return [0, 0, 0, 0];
    return (x1 - x0) * (y1 - y0) > MOSTLY_WHOLE * viewW * viewH ? null : [x0, y0, x1 - x0, y1 - y0];
  };

  canvas.draw = function (forceFront?: boolean, forceBack?: boolean) {
    const partial = dirty && !whole && areas.length > 0 && !forceFront && !forceBack && !canvas.dirty_bgcanvas && !canvas.dragging_canvas && !internals.viewport;
    const area = partial ? screenArea() : null;
    if (!area) return draw.call(canvas, forceFront, forceBack);
    if (area[2] === 0) {
      // Nothing of it is in view.
      canvas.dirty_canvas = false;
      return;
    }
    internals.viewport = area;
    try {
      draw.call(canvas, true, false);
    } finally {
      internals.viewport = undefined;
    }
    // Hit testing between frames reads the visible node list; give it the whole view, not the part.
    canvas.ds.computeVisibleArea(undefined);
    canvas.computeVisibleNodes(undefined, canvas.visible_nodes);
    frames.partial++;
  };

  return {
    add(area) {
      areas.push(area);
      adding = true;
      canvas.dirty_canvas = true;
      adding = false;
    },
    frames,
    uninstall() {
      canvas.draw = draw;
      delete (canvas as unknown as Record<string, unknown>).dirty_canvas;
      canvas.dirty_canvas = dirty;
    },
  };
}
