// Panning without redrawing the whole graph (part of the canvas wrapper). While the user drags the canvas, the
// frames come from a picture of the scene a margin larger than the view: each frame copies the visible window out
// of it, and litegraph draws only a band of the margin when the window is about to reach parts not drawn yet.
// A full redraw of 300 nodes and 560 links costs ~30 ms of CPU on a software-rendered canvas; a copy costs ~1 ms,
// and a band is drawn once per MARGIN pixels of movement.
//
// What a user sees is unchanged: during a canvas drag litegraph changes nothing but the view offset; the picture is
// drawn at the drag's scale and moved by whole device pixels, so its pixels are those a full redraw would produce
// (the view shows the offset rounded to a device pixel; a long link drawn in a band is antialiased a shade apart on a
// few pixels). The first frame of every drag and the frame after it ends are full redraws at the exact offset.
// Anything else that changes the scene calls invalidate() and gets a full redraw.
import type { LGraphCanvas } from '@comfyorg/litegraph';

type Rect = [x: number, y: number, w: number, h: number];

/** How far beyond the view the picture reaches on each side, in CSS pixels: larger means fewer, bigger bands. */
const MARGIN = 256;

/** The scene drawn at one scale, larger than the view by `margin` device pixels on each side. */
interface Picture {
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D;
  /** The view offset at which picture pixel (margin, margin) is the view's top-left pixel. */
  originX: number;
  originY: number;
  scale: number;
  dpr: number;
  /** The view's size in device pixels. */
  width: number;
  height: number;
  margin: number;
  /** The part of the picture drawn so far (device pixels; always one rectangle). */
  drawn: Rect;
}

export interface PanBlit {
  /** The scene changed (live state, an image arrived, a graph was loaded): the next frame is a full redraw. */
  invalidate(): void;
  /** Frames drawn since install: full redraws, and drag frames copied out of the picture. */
  readonly frames: { full: number; moved: number };
  /** Off: every frame is a full redraw, as without this module (the benchmark compares the two). */
  enabled: boolean;
  uninstall(): void;
}

export interface PanBlitOptions {
  /** Called after a moved frame, for things litegraph positions while drawing (DOM overlays on nodes). */
  afterMove?(): void;
}

const contains = (outer: Rect, inner: Rect) =>
  inner[0] >= outer[0] && inner[1] >= outer[1] && inner[0] + inner[2] <= outer[0] + outer[2] && inner[1] + inner[3] <= outer[1] + outer[3];

function intersect(a: Rect, b: Rect): Rect {
  const x = Math.max(a[0], b[0]), y = Math.max(a[1], b[1]);
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - x, h = Math.min(a[1] + a[3], b[1] + b[3]) - y;
  return w > 0 && h > 0 ? [x, y, w, h] : [x, y, 0, 0];
}

export function installPanBlit(canvas: LGraphCanvas, options: PanBlitOptions = {}): PanBlit {
  const draw = canvas.draw;
  const frames = { full: 0, moved: 0 };
  const internals = canvas as unknown as { viewport: Rect | undefined; bgctx: CanvasRenderingContext2D | null };
  // The view offset of the last full frame, when it was drawn during a drag (so the drag may go on from it).
  let fullFrame: { offsetX: number; offsetY: number; scale: number; dpr: number; width: number; height: number } | null = null;
  let picture: Picture | null = null;
  // Two canvases, so re-centring the picture copies from one into the other.
  const spare: HTMLCanvasElement[] = [];
  // Bands leave the background canvas (grid and links) drawn only in places; a full frame redraws all of it.
  let backgroundPartial = false;

  const takeCanvas = (w: number, h: number) => {
    const el = spare.pop() ?? document.createElement('canvas');
    if (el.width !== w || el.height !== h) {
      el.width = w;
      el.height = h;
    }
    return el;
  };

  const fullDraw = (forceFront?: boolean, forceBack?: boolean) => {
    const dirty = canvas.dirty_canvas || canvas.dirty_bgcanvas || forceFront || forceBack;
    if (!dirty) return draw.call(canvas, forceFront, forceBack);
    draw.call(canvas, forceFront, forceBack || backgroundPartial);
    backgroundPartial = false;
    frames.full++;
    if (picture) {
      spare.push(picture.canvas);
      picture = null;
    }
    // Only a frame drawn while the drag is already under way may be moved: the press that started it can change
    // the scene (selection, hover) in ways litegraph draws on the next frame.
    const { ds } = canvas;
    const { width, height } = canvas.canvas;
    // Between drags the pictures' memory goes back (tens of megabytes on a large high-density screen).
    if (!canvas.dragging_canvas) for (const el of spare) el.width = el.height = 0;
    fullFrame = canvas.dragging_canvas ? { offsetX: ds.offset[0], offsetY: ds.offset[1], scale: ds.scale, dpr: window.devicePixelRatio || 1, width, height } : null;
  };

  /** A picture of the last full frame with empty margins around it. */
  const startPicture = (from: NonNullable<typeof fullFrame>): Picture => {
    const { dpr, width, height } = from;
    const margin = Math.round(MARGIN * dpr);
    const el = takeCanvas(width + 2 * margin, height + 2 * margin);
    const ctx = el.getContext('2d')!;
    ctx.clearRect(0, 0, el.width, el.height);
    ctx.drawImage(canvas.canvas, margin, margin);
    return { canvas: el, ctx, originX: from.offsetX, originY: from.offsetY, scale: from.scale, dpr, width, height, margin, drawn: [margin, margin, width, height] };
  };

  /** Has litegraph draw a part of the picture (device pixels, at most the view's size) and copies it in. */
  const drawPart = (p: Picture, [x, y, w, h]: Rect) => {
    const { ds } = canvas;
    const k = p.scale * p.dpr;
    // Put the part at the view's top-left corner and draw only there, a CSS pixel beyond on each side so the
    // antialiased edge of the clip falls outside what is copied.
    ds.offset[0] = p.originX - (x - p.margin) / k;
    ds.offset[1] = p.originY - (y - p.margin) / k;
    const area: Rect = [-1, -1, w / p.dpr + 2, h / p.dpr + 2];
    internals.viewport = area;
    const bg = internals.bgctx!;
    bg.save();
    bg.beginPath();
    bg.rect(...area);
    // litegraph clips the front canvas to its viewport but not the background one; long links cost by their length.
    bg.clip();
    try {
      draw.call(canvas, true, true);
    } finally {
      bg.restore();
    }
    p.ctx.clearRect(x, y, w, h);
    p.ctx.drawImage(canvas.canvas, 0, 0, w, h, x, y, w, h);
  };

  /** Draws `band` (device pixels) into the picture, in parts no larger than the view. */
  const drawBand = (p: Picture, [x, y, w, h]: Rect) => {
    for (let py = y; py < y + h; py += p.height) {
      for (let px = x; px < x + w; px += p.width) drawPart(p, [px, py, Math.min(p.width, x + w - px), Math.min(p.height, y + h - py)]);
    }
    backgroundPartial = true;
  };

  /** The picture re-centred on the view's top-left (shift: where that is now, relative to the picture's margin). */
  const recentre = (p: Picture, dx: number, dy: number): Picture => {
    const el = takeCanvas(p.canvas.width, p.canvas.height);
    const ctx = el.getContext('2d')!;
    ctx.clearRect(0, 0, el.width, el.height);
    ctx.drawImage(p.canvas, dx, dy);
    spare.push(p.canvas);
    const k = p.scale * p.dpr;
    const moved: Rect = [p.drawn[0] + dx, p.drawn[1] + dy, p.drawn[2], p.drawn[3]];
    return { ...p, canvas: el, ctx, originX: p.originX + dx / k, originY: p.originY + dy / k, drawn: intersect(moved, [0, 0, el.width, el.height]) };
  };

  /** Makes sure the picture holds `view` (device pixels), drawing the band of margin on the side it moves to. */
  const cover = (p: Picture, view: Rect) => {
    const [dx0, dy0, dw, dh] = p.drawn;
    const full: Rect = [0, 0, p.canvas.width, p.canvas.height];
    // Widen across first (over the rows drawn so far), then down or up over the new width.
    if (view[0] < dx0) drawBand(p, [0, dy0, dx0, dh]), (p.drawn = [0, dy0, dx0 + dw, dh]);
    else if (view[0] + view[2] > dx0 + dw) drawBand(p, [dx0 + dw, dy0, full[2] - dx0 - dw, dh]), (p.drawn = [dx0, dy0, full[2] - dx0, dh]);
    const [x, y, w, h] = p.drawn;
    if (view[1] < y) drawBand(p, [x, 0, w, y]), (p.drawn = [x, 0, w, y + h]);
    else if (view[1] + view[3] > y + h) drawBand(p, [x, y + h, w, full[3] - y - h]), (p.drawn = [x, y, w, full[3] - y]);
  };

  const movedDraw = (): boolean => {
    const { ds } = canvas;
    const dpr = window.devicePixelRatio || 1;
    const same = (v: { scale: number; dpr: number; width: number; height: number }) =>
      ds.scale === v.scale && dpr === v.dpr && canvas.canvas.width === v.width && canvas.canvas.height === v.height;
    if (!same(picture ?? fullFrame!)) return false;
    let p = picture ?? startPicture(fullFrame!);
    const k = p.scale * p.dpr;
    // How far the view moved from the picture's origin, rounded to device pixels.
    let dx = Math.round((ds.offset[0] - p.originX) * k);
    let dy = Math.round((ds.offset[1] - p.originY) * k);
    if (Math.abs(dx) > p.margin || Math.abs(dy) > p.margin) {
      if (Math.abs(dx) >= p.width + p.margin || Math.abs(dy) >= p.height + p.margin) return false;
      p = recentre(p, dx, dy);
      dx = dy = 0;
    }
    const view: Rect = [p.margin - dx, p.margin - dy, p.width, p.height];
    const [trueX, trueY] = [ds.offset[0], ds.offset[1]];
    const viewport = internals.viewport;
    try {
      if (!contains(p.drawn, view)) cover(p, view);
    } finally {
      internals.viewport = viewport;
      ds.offset[0] = trueX;
      ds.offset[1] = trueY;
    }
    picture = p;

    const ctx = canvas.ctx;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalCompositeOperation = 'copy';
    ctx.drawImage(p.canvas, view[0], view[1], view[2], view[3], 0, 0, view[2], view[3]);
    ctx.restore();

    canvas.dirty_canvas = canvas.dirty_bgcanvas = false;
    // Hit testing between frames reads the visible node list; give it the whole view, not the last band.
    ds.computeVisibleArea(viewport);
    canvas.computeVisibleNodes(undefined, canvas.visible_nodes);
    options.afterMove?.();
    frames.moved++;
    return true;
  };

  const blit: PanBlit = {
    invalidate() {
      fullFrame = null;
      if (picture) spare.push(picture.canvas);
      picture = null;
    },
    frames,
    enabled: true,
    uninstall() {
      canvas.draw = draw;
    },
  };

  canvas.draw = function (forceFront?: boolean, forceBack?: boolean) {
    const moving = blit.enabled && fullFrame && canvas.dragging_canvas && !forceFront && !forceBack && (canvas.dirty_canvas || canvas.dirty_bgcanvas);
    if (moving && movedDraw()) return;
    // The drag ended (litegraph draws on, dirty or not): the view at its exact offset, drawn whole.
    const ended = picture !== null && !canvas.dragging_canvas;
    fullDraw(forceFront || ended, forceBack);
  };

  return blit;
}
