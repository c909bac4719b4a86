// The Dataset node's contact sheet: a PNG grid of bucket crops with captions drawn as text.
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../kernels/random';
import { escapeXml, previewIndices, renderContactSheet, wrapText } from '../../../nodes/data/contact-sheet';
import { buildDataset, defaultDatasetSettings } from '../../../nodes/data/dataset';
import { tempFolder, writeImage, writeText } from './fixtures/folders';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(() => cleanup());

describe('contact sheet', () => {
  it('renders a grid with the pictures and dark caption text under them', async () => {
    const folder = path.join(dir, 'sheet');
    for (let i = 0; i < 4; i++) {
      await writeImage(path.join(folder, `i${i}.png`), 64, 64, [0, 0, 255]);
      await writeText(path.join(folder, `i${i}.txt`), `caption <${i}> & more words to wrap around the cell`);
    }
    const ds = await buildDataset({ ...defaultDatasetSettings, folder, resolutions: [64], step: 32, triggerWord: 'sks' });
    const png = await renderContactSheet(ds, new Rng(1), { count: 4, columns: 2, cellSize: 96 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([2 * (96 + 8) + 8, 2 * (96 + 64 + 8) + 8]);
    const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
    expect(px(8 + 48, 8 + 48)).toEqual([0, 0, 255]); // first picture
    let dark = 0;
    for (let y = 8 + 96; y < 8 + 96 + 64; y++) for (let x = 8; x < 8 + 96; x++) if (px(x, y)[0] < 128) dark++;
    expect(dark).toBeGreaterThan(100); // text was drawn (needs a system font, as on Debian)
  });

  it('wraps, escapes and spreads previews evenly', () => {
    expect(wrapText('one two three four', 9, 2)).toEqual(['one two', 'three…']);
    expect(escapeXml('a<b & "c"')).toBe('a&lt;b &amp; &quot;c&quot;');
    expect(previewIndices(10, 4)).toEqual([0, 3, 6, 9]);
    expect(previewIndices(2, 6)).toEqual([0, 1]);
  });
});
