// Sample sheets: the tiles a node reports in ui.samples sit exactly where composeGrid drew each image, with what
// it was rendered with (the editor labels, enlarges and compares tiles by these rectangles).
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { gridSheet, type RenderedImage } from '../../nodes/sampling/render';
import { SampleSheet, sampleSheetsOf, tileLabel } from '../../nodes/sampling/sheet';

async function solid(rgb: [number, number, number], size = 64): Promise<RenderedImage> {
  const raw = Buffer.alloc(size * size * 3);
  for (let i = 0; i < size * size; i++) raw.set(rgb, i * 3);
  const data = new Uint8Array(await sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
  return {
    mime: 'image/png', data, width: size, height: size, label: '', rgb: new Uint8Array(raw),
    prompt: { prompt: `p${rgb.join('-')}`, negativePrompt: '', seed: rgb[0], width: size, height: size, steps: 20, cfg: 6 }, strength: 0,
  };
}

describe('sample sheets', () => {
  it('each tile is the rectangle its image was drawn in (compare mode, titled, enlarged 64 → 128)', async () => {
    const colours: [number, number, number][] = [[250, 0, 0], [0, 250, 0], [0, 0, 250], [250, 250, 0], [0, 250, 250], [250, 0, 250]];
    const images = await Promise.all(colours.map((c) => solid(c)));
    images.forEach((im, i) => (im.strength = i % 2 ? 0.8 : 0)); // without | with, per prompt row
    const { png, tiles } = await gridSheet(images, { title: 'step 100' });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(tiles).toHaveLength(6);
    tiles.forEach((t, i) => {
      expect([t.w, t.h]).toEqual([128, 128]);
      expect(t.strength).toBe(i % 2 ? 0.8 : 0);
      for (const [px, py] of [[t.x + 1, t.y + 1], [t.x + t.w - 2, t.y + t.h - 2], [t.x + t.w / 2, t.y + t.h / 2]]) {
        const at = (py! * info.width + px!) * info.channels;
        expect([data[at], data[at + 1], data[at + 2]], `tile ${i} at ${px},${py}`).toEqual(colours[i]);
      }
    });
    expect(tiles[1]!.x).toBeGreaterThan(tiles[0]!.x); // two columns: without | with
    expect(tiles[2]!.y).toBeGreaterThan(tiles[0]!.y);
    expect(tiles[0]!.y).toBe(18); // below the title
    const sheet = SampleSheet.parse({ image: { filename: 'a.png', type: 'temp' }, step: 100, tiles });
    expect(sampleSheetsOf({ samples: [sheet, { nonsense: true }] })).toEqual([{ ...sheet, lora: null }]);
    expect(tileLabel(tiles[1]!, 100)).toBe('p0-250-0 · seed 0 · step 100 · LoRA 0.8');
    expect(tileLabel(tiles[0]!, null)).toBe('p250-0-0 · seed 250 · without LoRA');
  });
});
