// The Dataset node's preview: a grid of a few items as the model will see them (bucket crop) with a
// drawn final caption under each, rendered to PNG with sharp (captions through its SVG input).
import sharp from 'sharp';
import type { Rng } from '../../kernels/random';
import { bucketKey } from './buckets';
import type { Dataset, DatasetItem } from './dataset';
import { loadBucketRgb } from './images';
import { decodeFrames, framesToBucket } from './video';

export interface ContactSheetOptions {
  /** Items shown, spread evenly over the dataset. */
  count?: number;
  columns?: number;
  /** Side of each picture cell in pixels. */
  cellSize?: number;
}

const TEXT_HEIGHT = 64;
const FONT_SIZE = 11;
const LINE_HEIGHT = 13;

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Greedy word wrap to `width` characters, at most `maxLines` lines, the last one ellipsised if cut. */
export function wrapText(text: string, width: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const candidate = line ? `${line} ${word}` : word;
    if (candidate.length <= width) line = candidate;
    else {
      if (line) lines.push(line);
      line = word.length > width ? `${word.slice(0, width - 1)}…` : word;
    }
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    const kept = lines.slice(0, maxLines);
    kept[maxLines - 1] = `${kept[maxLines - 1].slice(0, width - 1)}…`;
    return kept;
  }
  return lines;
}

/** Indices of `count` items spread evenly from the first to the last. */
export function previewIndices(total: number, count: number): number[] {
  const n = Math.min(total, count);
  if (n <= 1) return n === 1 ? [0] : [];
  return Array.from({ length: n }, (_, i) => Math.round((i * (total - 1)) / (n - 1)));
}

async function pictureOf(item: DatasetItem): Promise<Buffer> {
  const flips = { flipX: false, flipY: false };
  if (item.kind === 'image') return loadBucketRgb(item.file, item.bucket, flips);
  const clip = item.video!;
  const middle = clip.frameIndices[Math.floor(clip.frameIndices.length / 2)];
  const [frame] = await framesToBucket(await decodeFrames(item.file, clip, [middle]), clip, item.bucket, flips);
  return frame;
}

export async function renderContactSheet(dataset: Dataset, rng: Rng, options: ContactSheetOptions = {}): Promise<Buffer> {
  const cell = options.cellSize ?? 192;
  const items = previewIndices(dataset.items.length, options.count ?? 6).map((i) => dataset.items[i]);
  const columns = Math.max(1, Math.min(options.columns ?? 3, items.length));
  const rows = Math.ceil(items.length / columns);
  const pad = 8;
  const width = columns * (cell + pad) + pad;
  const height = rows * (cell + TEXT_HEIGHT + pad) + pad;
  const charsPerLine = Math.floor(cell / (FONT_SIZE * 0.6));

  const layers = await Promise.all(
    items.map(async (item, k) => {
      const left = pad + (k % columns) * (cell + pad);
      const top = pad + Math.floor(k / columns) * (cell + TEXT_HEIGHT + pad);
      const picture = await sharp(await pictureOf(item), { raw: { width: item.bucket.width, height: item.bucket.height, channels: 3 } })
        .resize(cell, cell, { fit: 'contain', background: '#f2f2f2' })
        .png()
        .toBuffer();
      const caption = dataset.drawCaption(item, rng);
      const label = `${bucketKey(item.bucket, item.frames)} ×${item.repeats}`;
      const lines = [label, ...wrapText(caption === '' ? '(empty caption)' : caption, charsPerLine, 3)];
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${cell}" height="${TEXT_HEIGHT}"><text font-family="DejaVu Sans, sans-serif" font-size="${FONT_SIZE}" fill="#222">${lines
        .map((l, i) => `<tspan x="2" y="${(i + 1) * LINE_HEIGHT}"${i === 0 ? ' fill="#777"' : ''}>${escapeXml(l)}</tspan>`)
        .join('')}</text></svg>`;
      return [
        { input: picture, left, top },
        { input: Buffer.from(svg), left, top: top + cell },
      ];
    }),
  );
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(layers.flat()).png().toBuffer();
}
