// Lays sample images out as one PNG grid (row-major, `columns` wide), each cell the size of the largest
// image, for the Sampler's inline preview and saved sample sheets. Small images (the tiny model's 64×64)
// are enlarged by whole pixels so a node shows them at a readable size.
import sharp, { type OverlayOptions } from 'sharp';
import type { ImageItem } from '../sockets';
import { GRID_TITLE_HEIGHT, gridLayout, type GridSize } from './sheet';

const esc = (t: string) => t.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export async function composeGrid(images: readonly ImageItem[], columns: number, o: { gap?: number; title?: string; minCell?: number } = {}): Promise<Uint8Array> {
  if (images.length === 0) throw new Error('grid: no images');
  const metas = await imageSizes(images);
  const { width, height, zoom, cells } = gridLayout(metas, columns, o);
  const top = o.title ? GRID_TITLE_HEIGHT : 0;
  const inputs = await Promise.all(images.map((im, i) => (zoom === 1 ? Buffer.from(im.data)
    : sharp(im.data).resize(metas[i].width * zoom, metas[i].height * zoom, { kernel: 'nearest' }).png().toBuffer())));
  const layers: OverlayOptions[] = inputs.map((input, i) => ({ input, left: cells[i].x, top: cells[i].y }));
  if (o.title) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top}"><text x="3" y="13" font-family="DejaVu Sans, sans-serif" font-size="12" fill="#ddd">${esc(o.title)}</text></svg>`;
    layers.push({ input: Buffer.from(svg), left: 0, top: 0 });
  }
  const png = await sharp({ create: { width, height, channels: 3, background: { r: 24, g: 24, b: 24 } } })
    .composite(layers)
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

/** Each image's width and height (from the item when it says, else from its header). */
export function imageSizes(images: readonly ImageItem[]): Promise<GridSize[]> {
  return Promise.all(images.map(async (im) => {
    if (im.width && im.height) return { width: im.width, height: im.height };
    const m = await sharp(im.data).metadata();
    return { width: m.width!, height: m.height! };
  }));
}
