// Sample sheets: where each image sits in a grid PNG of samples (composeGrid lays them out with gridLayout) and
// what it was rendered with, as nodes report them in `ui.samples` so the editor can label, enlarge and compare
// tiles (which prompt, seed, step and LoRA strength). Imports zod only: the editor bundles this file too.
import { z } from 'zod';

export interface GridSize {
  width: number;
  height: number;
}

export interface GridLayout {
  width: number;
  height: number;
  /** Whole-pixel enlargement of every image (small images reach `minCell`). */
  zoom: number;
  /** Each image's place in the grid, in pixels of the grid PNG. */
  cells: { x: number; y: number; w: number; h: number }[];
}

/** The title band above a grid with a title. */
export const GRID_TITLE_HEIGHT = 18;

/**
 * The grid composeGrid draws: row-major, `columns` wide, every cell the size of the largest image, small images
 * enlarged by whole pixels until the largest side reaches `minCell` (default 128), `gap` pixels between cells.
 */
export function gridLayout(sizes: readonly GridSize[], columns: number, o: { gap?: number; title?: string; minCell?: number } = {}): GridLayout {
  const gap = o.gap ?? 2;
  const top = o.title ? GRID_TITLE_HEIGHT : 0;
  if (sizes.length === 0) throw new Error('grid: no images');
  const cols = Math.max(1, Math.min(columns, sizes.length));
  const rows = Math.ceil(sizes.length / cols);
  const largest = Math.max(...sizes.map((m) => Math.max(m.width, m.height)));
  const zoom = Math.max(1, Math.floor((o.minCell ?? 128) / largest));
  const cw = Math.max(...sizes.map((m) => m.width)) * zoom, ch = Math.max(...sizes.map((m) => m.height)) * zoom;
  const width = Math.max(cols * cw + (cols - 1) * gap, o.title ? 8 * o.title.length : 0);
  const height = top + rows * ch + (rows - 1) * gap;
  const cells = sizes.map((m, i) => ({ x: (i % cols) * (cw + gap), y: top + Math.floor(i / cols) * (ch + gap), w: m.width * zoom, h: m.height * zoom }));
  return { width, height, zoom, cells };
}

export const SampleTile = z.object({
  /** The image's rectangle in the sheet's PNG. */
  x: z.number(),
  y: z.number(),
  w: z.number(),
  h: z.number(),
  prompt: z.string(),
  negativePrompt: z.string().optional(),
  seed: z.number(),
  /** LoRA strength the tile was rendered with; 0 = the base model alone. */
  strength: z.number(),
  steps: z.number().optional(),
  cfg: z.number().optional(),
  /** Natural size of the rendered image (before the grid's enlargement). */
  width: z.number().optional(),
  height: z.number().optional(),
});
export type SampleTile = z.infer<typeof SampleTile>;

export const SampleSheet = z.object({
  image: z.object({ filename: z.string(), subfolder: z.string().default(''), type: z.enum(['output', 'input', 'temp']) }),
  /** The training step the adapter had (null: no adapter from training). */
  step: z.number().nullable(),
  /** The LoRA file saved at that step, as a Load LoRA path ("output/<name>/<name>_<step>.safetensors"), if one was. */
  lora: z.string().nullable().default(null),
  tiles: z.array(SampleTile),
  /** Video samples: the image is an animated WebP of this many frames, playing at `fps`. */
  frames: z.number().int().positive().optional(),
  fps: z.number().positive().optional(),
});
export type SampleSheet = z.infer<typeof SampleSheet>;

/** `ui.samples` of a node, or [] when it has none or they do not parse. */
export function sampleSheetsOf(ui: unknown): SampleSheet[] {
  const raw = (ui as { samples?: unknown } | null | undefined)?.samples;
  if (!Array.isArray(raw)) return [];
  const out: SampleSheet[] = [];
  for (const s of raw) {
    const r = SampleSheet.safeParse(s);
    if (r.success) out.push(r.data);
  }
  return out;
}

/** What a tile says about itself in one line (lightbox, tooltips). */
export function tileLabel(t: SampleTile, step: number | null): string {
  const lora = t.strength === 0 ? 'without LoRA' : `LoRA ${t.strength}`;
  return `${t.prompt} · seed ${t.seed}${step !== null ? ` · step ${step}` : ''} · ${lora}`;
}
