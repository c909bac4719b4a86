// What a node shows of its results and where (pure: no litegraph, no DOM): the live loss chart, then its images at
// a size a person can judge — sample sheets with every tile at least 128 px, small images enlarged by whole pixels,
// charts and contact sheets fitted to the node — and, on a node with several sampled steps, the line that opens
// the samples view. The node grows to this (canvas/GraphCanvas), so what is laid out here is what is drawn.
import type { SampleSheet, SampleTile } from '../../nodes/sampling/sheet';
import type { NodeRun } from '../state/run';

export const LOSS_CHART_HEIGHT = 150;
export const PAD = 8;
export const GAP = 6;
/** Small images are enlarged by whole pixels until their longer side reaches this; sample tiles never show smaller. */
export const MIN_TILE = 128;
/** Charts and contact sheets are fitted to the node, but the node is at least this wide inside to show them. */
export const MIN_FIT_WIDTH = 256;
/** A sample sheet wider than this is shown smaller, as long as its tiles stay MIN_TILE wide. */
export const MAX_SHEET_WIDTH = 768;
/** The line under a Train node's latest samples that opens all of them. */
export const LINK_HEIGHT = 22;

export interface Size {
  width: number;
  height: number;
}

export interface ShownImage {
  url: string;
  /** The sample sheet this image is, when the node said (tiles with prompt, seed, step, strength). */
  sheet?: SampleSheet;
}

export interface PlacedImage extends ShownImage {
  x: number;
  y: number;
  w: number;
  h: number;
  /** Display pixels per image pixel. */
  scale: number;
}

export interface NodeImageLayout {
  chart: { x: number; y: number; w: number; h: number } | null;
  images: PlacedImage[];
  /** "All samples (N steps)": opens the samples view. */
  link: { x: number; y: number; w: number; h: number; text: string } | null;
  /** The size the node needs to show all of it (it grows to this, never shrinks by it). */
  width: number;
  height: number;
}

/** The sheet's PNG size as far as its tiles tell (before it loads): the tiles' extent. */
export function sheetExtent(sheet: SampleSheet): Size {
  let width = 0, height = 0;
  for (const t of sheet.tiles) {
    width = Math.max(width, t.x + t.w);
    height = Math.max(height, t.y + t.h);
  }
  return { width, height };
}

/** The images a node shows: the live preview frames while it runs, then its outputs. A node that reported sample
 *  sheets shows its latest one (the rest are in the samples view); its other images (the static loss chart) only
 *  when the live loss chart is not there. A stream of preview sheets (wide frames) shows the latest only. */
export function shownImages(run: NodeRun | undefined, sizeOf: (url: string) => Size | null = () => null): ShownImage[] {
  if (!run) return [];
  if (run.previews.length) {
    // Wide frames (a Train node's sheet of samples every N steps; a chart or contact sheet before its file) replace
    // each other: show the newest that has loaded, fitted to the node like a chart (the node keeps its width; a sheet
    // gets its full size once the node says it is one). Single images (a Sampler's, one by one) add up.
    const wide = run.previews.filter((url) => (sizeOf(url)?.width ?? 0) > 2 * MIN_TILE);
    if (wide.length) return [{ url: wide[wide.length - 1]! }];
    return run.previews.map((url) => ({ url }));
  }
  const sheets = run.sheets;
  if (!sheets.length) return run.images.map((url) => ({ url }));
  const sheetUrls = new Set(sheets.map((s) => s.url));
  const latest = sheets[sheets.length - 1]!;
  const others = run.images.filter((u) => !sheetUrls.has(u));
  return [{ url: latest.url, sheet: latest.sheet }, ...(run.loss.length ? [] : others.map((url) => ({ url })))];
}

/** Size an image is shown at: tiles of a sheet ≥ MIN_TILE (a very wide sheet narrowed to MAX_SHEET_WIDTH only as far
 *  as that allows), small images enlarged by whole pixels to MIN_TILE, other images fitted to `inner` (≥ MIN_FIT_WIDTH). */
export function displaySize(img: ShownImage, natural: Size | null, inner: number): { w: number; h: number; scale: number } {
  const size = natural ?? (img.sheet ? sheetExtent(img.sheet) : null) ?? { width: MIN_TILE, height: MIN_TILE };
  const longest = Math.max(size.width, size.height, 1);
  let scale: number;
  if (img.sheet && img.sheet.tiles.length) {
    const smallest = Math.min(...img.sheet.tiles.map((t: SampleTile) => Math.min(t.w, t.h)));
    const floor = MIN_TILE / Math.max(1, smallest); // scale at which the smallest tile is MIN_TILE
    scale = Math.max(floor >= 1 ? Math.ceil(floor) : 1, 1);
    if (size.width * scale > MAX_SHEET_WIDTH) scale = Math.max(floor, MAX_SHEET_WIDTH / size.width);
  } else if (longest < MIN_TILE) {
    scale = Math.ceil(MIN_TILE / longest);
  } else {
    scale = Math.min(1, Math.max(inner, MIN_FIT_WIDTH) / size.width);
  }
  return { w: Math.round(size.width * scale), h: Math.round(size.height * scale), scale };
}

/**
 * Lays out what a node shows below its own content (`top`, in node coordinates), for a node `width` wide.
 * `sizeOf` gives an image's natural size once it has loaded (until then a sheet's tiles tell its size, and other
 * images hold a MIN_TILE square).
 */
export function layoutNodeImages(run: NodeRun | undefined, top: number, width: number, sizeOf: (url: string) => Size | null = () => null): NodeImageLayout {
  let y = top;
  const inner = width - PAD * 2;
  let needWidth = width;
  let chart: NodeImageLayout['chart'] = null;
  if (run && run.loss.length > 0) {
    chart = { x: PAD, y, w: inner, h: LOSS_CHART_HEIGHT };
    y += LOSS_CHART_HEIGHT + PAD;
  }
  const shown = shownImages(run, sizeOf);
  const images: PlacedImage[] = [];
  if (shown.length) {
    const sizes = shown.map((img) => displaySize(img, sizeOf(img.url), inner));
    const cellW = Math.max(...sizes.map((s) => s.w));
    const cellH = Math.max(...sizes.map((s) => s.h));
    // As many columns as the node is wide for; wider (a square grid) only when that would make a tall column.
    let cols = Math.max(1, Math.min(shown.length, Math.floor((inner + GAP) / (cellW + GAP))));
    if (Math.ceil(shown.length / cols) > cols + 1) cols = Math.ceil(Math.sqrt(shown.length));
    const gridW = cols * cellW + (cols - 1) * GAP;
    needWidth = Math.max(needWidth, gridW + PAD * 2);
    shown.forEach((img, i) => {
      const s = sizes[i]!;
      const cx = PAD + (i % cols) * (cellW + GAP), cy = y + Math.floor(i / cols) * (cellH + GAP);
      images.push({ ...img, x: cx + Math.floor((cellW - s.w) / 2), y: cy + Math.floor((cellH - s.h) / 2), w: s.w, h: s.h, scale: s.scale });
    });
    y += Math.ceil(shown.length / cols) * (cellH + GAP) - GAP + PAD;
  }
  let link: NodeImageLayout['link'] = null;
  const steps = run && !run.previews.length ? run.sheets.length : 0;
  if (steps > 1) {
    link = { x: PAD, y, w: needWidth - PAD * 2, h: LINK_HEIGHT, text: `▦ All samples: ${steps} steps × ${run!.sheets[0]!.sheet.tiles.length} images — pick a checkpoint` };
    y += LINK_HEIGHT + PAD;
  }
  // A node that shows nothing asks for nothing (its own widgets decide its size).
  if (!chart && !images.length && !link) return { chart, images, link, width: 0, height: 0 };
  return { chart, images, link, width: needWidth, height: y };
}

/** A tile's rectangle on the node (node coordinates). */
export function tileRect(img: PlacedImage, t: SampleTile): { x: number; y: number; w: number; h: number } {
  return { x: img.x + t.x * img.scale, y: img.y + t.y * img.scale, w: t.w * img.scale, h: t.h * img.scale };
}

/** What is under a point of the node: an image (and the tile of its sheet), or the samples link. */
export function hitNodeImages(layout: NodeImageLayout, x: number, y: number): { image: PlacedImage; tile: number | null } | { link: true } | null {
  const l = layout.link;
  if (l && x >= l.x && x < l.x + l.w && y >= l.y && y < l.y + l.h) return { link: true };
  for (const image of layout.images) {
    if (x < image.x || x >= image.x + image.w || y < image.y || y >= image.y + image.h) continue;
    const tiles = image.sheet?.tiles ?? [];
    const tile = tiles.findIndex((t) => {
      const r = tileRect(image, t);
      return x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h;
    });
    return { image, tile: tile >= 0 ? tile : null };
  }
  return null;
}
