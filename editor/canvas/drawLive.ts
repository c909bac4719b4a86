// Draws a job's live state onto nodes (part of the canvas wrapper): the executing outline, a progress bar with
// it/s and ETA, a "cached" badge, red outlines with the error at the node, fields the server refused, and image
// grids of samples. Pure drawing from a node's geometry and its NodeRun; no state of its own but an image cache.
import { LiteGraph, type LGraphNode } from '@comfyorg/litegraph';
import type { NodeErrors } from '../../server/protocol';
import { imageSrc } from '../net/api';
import type { NodeRun } from '../state/run';

export const LOSS_CHART_HEIGHT = 150;
const PAD = 8;
/** Message boxes under a node: at least this wide, lines of this height, at most this many lines per message. */
const BOX_MIN_WIDTH = 260;
const BOX_LINE = 15;
const BOX_MAX_LINES = 8;
/** The progress bar sits this far above the title bar. */
const PROGRESS_ABOVE = 24;

export interface LiveView {
  run: NodeRun | undefined;
  validation: NodeErrors[string] | undefined;
}

const images = new Map<string, HTMLImageElement>();
export function cachedImage(url: string, onLoad: () => void): HTMLImageElement {
  let img = images.get(url);
  if (!img) {
    img = new Image();
    img.onload = onLoad;
    img.src = imageSrc(url);
    images.set(url, img);
    if (images.size > 500) images.delete(images.keys().next().value!);
  }
  return img;
}

/** Where a node's own content (widgets, slots) ends, in node coordinates. */
export function contentBottom(node: LGraphNode): number {
  let bottom = Math.max(node.inputs?.length ?? 0, node.outputs?.length ?? 0) * LiteGraph.NODE_SLOT_HEIGHT + 6;
  for (const w of node.widgets ?? []) {
    const y = w.last_y ?? w.y;
    if (typeof y === 'number') bottom = Math.max(bottom, y + (w.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT));
  }
  return bottom + 6;
}

export function shownImages(run: NodeRun | undefined): string[] {
  if (!run) return [];
  return run.previews.length ? run.previews : run.images;
}

export interface PreviewLayout {
  chart: { x: number; y: number; w: number; h: number } | null;
  grid: { x: number; y: number; cell: number; cols: number; urls: string[] } | null;
  /** The height the node needs to show all of it. */
  height: number;
}

export function previewLayout(node: LGraphNode, run: NodeRun | undefined): PreviewLayout {
  let y = contentBottom(node);
  const w = node.size[0] - PAD * 2;
  let chart: PreviewLayout['chart'] = null;
  if (run && run.loss.length > 0) {
    chart = { x: PAD, y, w, h: LOSS_CHART_HEIGHT };
    y += LOSS_CHART_HEIGHT + PAD;
  }
  const urls = shownImages(run);
  let grid: PreviewLayout['grid'] = null;
  if (urls.length) {
    const cols = Math.ceil(Math.sqrt(urls.length));
    // Thumbnails, not posters: click one to see it large.
    const cell = Math.min(Math.floor(w / cols), 128);
    grid = { x: PAD, y, cell, cols, urls };
    y += Math.ceil(urls.length / cols) * cell + PAD;
  }
  return { chart, grid, height: y };
}

/** The image under a point in node coordinates, for click-to-enlarge. */
export function imageAt(node: LGraphNode, run: NodeRun | undefined, x: number, y: number): string | null {
  const { grid } = previewLayout(node, run);
  if (!grid) return null;
  const col = Math.floor((x - grid.x) / grid.cell);
  const row = Math.floor((y - grid.y) / grid.cell);
  if (col < 0 || col >= grid.cols || row < 0) return null;
  return grid.urls[row * grid.cols + col] ?? null;
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

export function drawLive(ctx: CanvasRenderingContext2D, node: LGraphNode, view: LiveView, redraw: () => void): void {
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
  if (layout.grid) {
    const { x, y, cell, cols, urls } = layout.grid;
    urls.forEach((url, i) => {
      const img = cachedImage(url, redraw);
      const cx = x + (i % cols) * cell, cy = y + Math.floor(i / cols) * cell;
      if (img.complete && img.naturalWidth > 0) {
        const s = Math.min((cell - 2) / img.naturalWidth, (cell - 2) / img.naturalHeight);
        const w = img.naturalWidth * s, h = img.naturalHeight * s;
        ctx.imageSmoothingEnabled = img.naturalWidth > w;
        ctx.drawImage(img, cx + (cell - w) / 2, cy + (cell - h) / 2, w, h);
      } else {
        ctx.fillStyle = '#333';
        ctx.fillRect(cx + 1, cy + 1, cell - 2, cell - 2);
      }
    });
  }

  const box = messages(view);
  if (box.lines.length) messageBox(ctx, node, box.lines, box.colour);
  ctx.restore();
}
