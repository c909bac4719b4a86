// Draws a job's live state onto nodes (part of the canvas wrapper): the executing outline, a progress bar with
// it/s and ETA, a "cached" badge, red outlines with the error at the node, fields the server refused, and the
// node's images at a readable size (laid out by canvas/nodeImages). Pure drawing from a node's geometry and its
// NodeRun; no state of its own but an image cache.
import { LiteGraph, type LGraphNode } from '@comfyorg/litegraph';
import type { NodeErrors } from '../../server/protocol';
import { imageSrc } from '../net/api';
import { clipFrame } from './animatedImages';
import type { NodeRun } from '../state/run';
import { hitNodeImages, layoutNodeImages, type NodeImageLayout, type Size } from './nodeImages';

const PAD = 8;
/** Message boxes under a node: at least this wide, lines of this height, at most this many lines per message. */
const BOX_MIN_WIDTH = 260;
const BOX_LINE = 15;
const BOX_MAX_LINES = 8;
/** The progress bar sits this far above the title bar. */
const PROGRESS_ABOVE = 24;
/** Free room below a node's widgets (reserved for its results) that shows where they will appear. */
const PLACEHOLDER_MIN = 120;

export interface LiveView {
  run: NodeRun | undefined;
  validation: NodeErrors[string] | undefined;
}

// ---- images: one cache for every node, and a listener told when one loads (the node may need to grow) ----
const images = new Map<string, HTMLImageElement>();
const loadListeners = new Set<(url: string) => void>();

export function onImageLoaded(listener: (url: string) => void): () => void {
  loadListeners.add(listener);
  return () => loadListeners.delete(listener);
}

export function cachedImage(url: string): HTMLImageElement {
  let img = images.get(url);
  if (!img) {
    const created = new Image();
    img = created;
    created.onload = () => loadListeners.forEach((l) => l(url));
    created.onerror = () => loadListeners.forEach((l) => l(url));
    created.src = imageSrc(url);
    images.set(url, created);
    if (images.size > 500) images.delete(images.keys().next().value!);
  }
  return img;
}

/** An image's natural size once it has loaded (null before, or when it failed to load). */
export function loadedSize(url: string): Size | null {
  const img = images.get(url);
  return img && img.complete && img.naturalWidth > 0 ? { width: img.naturalWidth, height: img.naturalHeight } : null;
}

/** What the editor knows about an image it shows (for tests: did it really load?). */
export function imageState(url: string): { requested: boolean; complete: boolean; naturalWidth: number; naturalHeight: number } {
  const img = images.get(url);
  return { requested: !!img, complete: !!img?.complete, naturalWidth: img?.naturalWidth ?? 0, naturalHeight: img?.naturalHeight ?? 0 };
}

/** Where a node's own content (widgets, slots) ends, in node coordinates. */
export function contentBottom(node: LGraphNode): number {
  // litegraph places widgets while drawing a node, after its foreground: before a node's first frame, place them.
  // (A widget's y is 0 until then; last_y is set once it has been drawn.)
  if (node.graph && node.widgets?.some((w) => w.last_y === undefined)) {
    node._setConcreteSlots(); // what litegraph measures the slots by, as it does before arranging
    node.arrange();
  }
  let bottom = Math.max(node.inputs?.length ?? 0, node.outputs?.length ?? 0) * LiteGraph.NODE_SLOT_HEIGHT + 6;
  for (const w of node.widgets ?? []) {
    const y = w.y;
    if (typeof y === 'number') bottom = Math.max(bottom, y + (w.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT));
  }
  return bottom + 6;
}

/** Where a node shows its loss chart, images and samples link (see canvas/nodeImages). */
export function previewLayout(node: LGraphNode, run: NodeRun | undefined): NodeImageLayout {
  // Most nodes show nothing: no need to measure them (many are off screen and were never drawn).
  if (!run || (!run.loss.length && !run.images.length && !run.previews.length)) return layoutNodeImages(undefined, 0, node.size[0]);
  return layoutNodeImages(run, contentBottom(node), node.size[0], loadedSize);
}

/** What is under a point in node coordinates: an image (and which tile of its sample sheet), or the samples link. */
export function imageAt(node: LGraphNode, run: NodeRun | undefined, x: number, y: number) {
  return hitNodeImages(previewLayout(node, run), x, y);
}

function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return ` · ETA ${m}:${String(s % 60).padStart(2, '0')}`;
}

export function progressText(run: NodeRun): string {
  const p = run.progress!;
  const rate = p.itPerSec === null ? '' : p.itPerSec >= 1 ? ` · ${p.itPerSec.toFixed(1)} it/s` : ` · ${(1 / p.itPerSec).toFixed(1)} s/it`;
  const loss = typeof p.data?.loss === 'number' ? ` · loss ${(p.data.loss as number).toPrecision(4)}` : '';
  return `${p.step}/${p.total}${rate}${formatEta(p.etaSeconds)}${loss}`;
}

function wrap(ctx: CanvasRenderingContext2D, text: string, width: number): string[] {
  const lines: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      const next = line ? `${line} ${word}` : word;
      if (ctx.measureText(next).width > width && line) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines.slice(0, BOX_MAX_LINES);
}

function messageBox(ctx: CanvasRenderingContext2D, node: LGraphNode, lines: string[], colour: string): void {
  ctx.font = '12px sans-serif';
  const width = Math.max(node.size[0], BOX_MIN_WIDTH);
  const wrapped = lines.flatMap((l) => wrap(ctx, l, width - 12));
  const h = wrapped.length * BOX_LINE + 8;
  const y = node.size[1] + 6;
  ctx.fillStyle = colour;
  ctx.beginPath();
  ctx.roundRect(0, y, width, h, 4);
  ctx.fill();
  ctx.fillStyle = '#fff';
  ctx.textAlign = 'left';
  wrapped.forEach((l, i) => ctx.fillText(l, 6, y + 16 + i * BOX_LINE));
}

function outline(ctx: CanvasRenderingContext2D, node: LGraphNode, colour: string, width: number): void {
  const t = LiteGraph.NODE_TITLE_HEIGHT;
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.roundRect(-4, -t - 4, node.size[0] + 8, node.size[1] + t + 8, 10);
  ctx.stroke();
}

/** The box under a node: errors (red) when there are any, else warnings (amber). */
function messages(view: LiveView): { lines: string[]; colour: string } {
  const { run, validation } = view;
  const errors: string[] = [];
  if (run?.status === 'error' && run.error) errors.push(run.error);
  if (validation) for (const e of validation.errors) errors.push(e.field ? `${e.field}: ${e.message}` : e.message);
  return errors.length ? { lines: errors, colour: '#a8071a' } : { lines: run?.warnings ?? [], colour: '#8a6d1f' };
}

/** How far beyond its box (title bar included) drawLive may draw on a node: the canvas culls nodes by this too, so a
 *  node scrolled just out of view still draws its progress bar or error box where they show. */
export function liveMargin(node: LGraphNode, view: LiveView): { top: number; right: number; bottom: number; left: number } {
  const { run, validation } = view;
  const outlined = run?.status === 'executing' || run?.status === 'error' || validation !== undefined;
  const edge = outlined ? 6 : 0;
  const top = Math.max(edge, run?.progress ? PROGRESS_ABOVE + 2 : 0);
  const shown = messages(view).lines;
  // A bound on the wrapped lines without measuring text: wrap() puts at least one space- or newline-separated word
  // on each line.
  const lines = shown.reduce((n, m) => n + Math.min(BOX_MAX_LINES, m.split(/[ \n]/).length), 0);
  const bottom = Math.max(edge, lines ? 6 + lines * BOX_LINE + 8 : 0);
  const right = Math.max(edge, lines ? BOX_MIN_WIDTH - node.size[0] : 0);
  return { top, right, bottom, left: edge };
}

export function drawLive(ctx: CanvasRenderingContext2D, node: LGraphNode, view: LiveView): void {
  const { run, validation } = view;
  const t = LiteGraph.NODE_TITLE_HEIGHT;
  ctx.save();
  if (run?.status === 'executing') outline(ctx, node, '#3ddc84', 3);
  if (run?.status === 'error' || validation) outline(ctx, node, '#ff4d4f', 3);

  if (run?.status === 'cached' || run?.status === 'done' || run?.status === 'interrupted') {
    const label = run.status;
    ctx.font = '11px sans-serif';
    const w = ctx.measureText(label).width + 10;
    ctx.fillStyle = run.status === 'cached' ? '#3a5f8f' : run.status === 'done' ? '#2e6b3f' : '#8a6d1f';
    ctx.beginPath();
    ctx.roundRect(node.size[0] - w - 6, -t + 7, w, 16, 8);
    ctx.fill();
    ctx.fillStyle = '#fff';
    ctx.textAlign = 'left';
    ctx.fillText(label, node.size[0] - w - 1, -t + 19);
  }

  if (run?.progress && (run.status === 'executing' || run.progress.step < run.progress.total)) {
    const p = run.progress;
    const y = -t - PROGRESS_ABOVE;
    const frac = p.total > 0 ? Math.min(1, p.step / p.total) : 0;
    ctx.fillStyle = '#1b1b1b';
    ctx.fillRect(0, y, node.size[0], 18);
    ctx.fillStyle = '#2f8f5b';
    ctx.fillRect(0, y, node.size[0] * frac, 18);
    ctx.fillStyle = '#fff';
    ctx.font = '11px monospace';
    ctx.textAlign = 'left';
    ctx.fillText(progressText(run), 4, y + 13, node.size[0] - 8);
  }

  // Fields the server refused: the widget row or the input socket, outlined where the user will fix it.
  if (validation) {
    ctx.strokeStyle = '#ff4d4f';
    ctx.lineWidth = 2;
    for (const e of validation.errors) {
      const widget = node.widgets?.find((w) => w.name === e.field);
      if (widget && (widget.last_y ?? widget.y) !== undefined) {
        ctx.strokeRect(4, widget.last_y ?? widget.y, node.size[0] - 8, LiteGraph.NODE_WIDGET_HEIGHT);
        continue;
      }
      const slot = node.inputs?.findIndex((s) => s.name === e.field) ?? -1;
      if (slot >= 0) {
        const [px, py] = node.getInputPos(slot);
        ctx.beginPath();
        ctx.arc(px - node.pos[0], py - node.pos[1], 8, 0, Math.PI * 2);
        ctx.stroke();
      }
    }
  }

  const layout = previewLayout(node, run);
  for (const placed of layout.images) {
    const img = cachedImage(placed.url);
    if (img.complete && img.naturalWidth > 0) {
      // Enlarged samples stay crisp pixels; a chart or sheet made smaller is smoothed. A video sample draws the
      // frame due now (canvas/animatedImages); the canvas redraws it when the next one is due.
      ctx.imageSmoothingEnabled = placed.scale < 1;
      ctx.drawImage(clipFrame(placed.url, performance.now()) ?? img, placed.x, placed.y, placed.w, placed.h);
      ctx.imageSmoothingEnabled = true;
    } else {
      ctx.fillStyle = '#333';
      ctx.fillRect(placed.x, placed.y, placed.w, placed.h);
      if (img.complete) {
        ctx.fillStyle = '#ff7875';
        ctx.font = '11px sans-serif';
        ctx.textAlign = 'left';
        ctx.fillText('image did not load', placed.x + 6, placed.y + 16, placed.w - 12);
      }
    }
  }
  if (layout.link) {
    const l = layout.link;
    ctx.fillStyle = '#8ab4f8';
    ctx.font = '12px sans-serif';
    ctx.textAlign = 'left';
    ctx.fillText(l.text, l.x + 2, l.y + 15, l.w - 4);
  }
  const top = contentBottom(node);
  if (!layout.chart && !layout.images.length && node.size[1] - top >= PLACEHOLDER_MIN) {
    // Room kept for results (the example graphs leave it): say what will appear there.
    ctx.strokeStyle = '#4a4a4a';
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1;
    ctx.strokeRect(PAD + 0.5, top + 0.5, node.size[0] - PAD * 2 - 1, node.size[1] - top - PAD - 1);
    ctx.setLineDash([]);
    ctx.fillStyle = '#777';
    ctx.font = '12px sans-serif';
    ctx.textAlign = 'center';
    ctx.fillText('results appear here after Run', node.size[0] / 2, top + (node.size[1] - top) / 2 + 4, node.size[0] - PAD * 4);
  }

  const box = messages(view);
  if (box.lines.length) messageBox(ctx, node, box.lines, box.colour);
  ctx.restore();
}
