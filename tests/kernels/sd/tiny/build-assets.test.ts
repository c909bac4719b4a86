// The committed assets (tiny tokenizer, demo star dataset, regularization set) are exactly what
// the build script makes, and their captions say what the images show.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../../../../kernels/sd/tokenizer';
import { analyzeImage } from '../../../../kernels/sd/tiny/analyze';
import {
  ASSET_PATHS,
  DEMO_IMAGE_COUNT,
  DEMO_OTHER_COUNT,
  DEMO_STAR_COLORS,
  REGULARIZATION_IMAGE_COUNT,
  buildAssets,
} from '../../../../kernels/sd/tiny/build-assets';

const committed = join(import.meta.dirname, '../../../../assets');
let fresh: string;

beforeAll(async () => {
  fresh = mkdtempSync(join(tmpdir(), 'tiny-assets-'));
  await buildAssets(fresh);
});
afterAll(() => rmSync(fresh, { recursive: true, force: true }));

const CAPTION = /^an? (\w+) (\S+) on an? (\w+) background\n$/;

async function readSet(folder: string) {
  const names = readdirSync(folder).filter((n) => n.endsWith('.png')).sort();
  return Promise.all(
    names.map(async (name) => {
      const { data, info } = await sharp(join(folder, name)).raw().toBuffer({ resolveWithObject: true });
      const caption = readFileSync(join(folder, name.replace(/\.png$/, '.txt')), 'utf8');
      return { name, rgb: new Uint8Array(data), info, caption };
    }),
  );
}

describe('build-assets', () => {
  it('rebuilds every committed file byte for byte', () => {
    for (const sub of Object.values(ASSET_PATHS)) {
      const names = readdirSync(join(fresh, sub)).sort();
      expect(readdirSync(join(committed, sub)).sort()).toEqual(names);
      for (const name of names) {
        expect(readFileSync(join(committed, sub, name)).equals(readFileSync(join(fresh, sub, name))), `${sub}/${name}`).toBe(true);
      }
    }
  });

  it('makes 16 stars of the known colours captioned with [trigger], as the analyzer sees them', async () => {
    const set = (await readSet(join(fresh, ASSET_PATHS.demoDataset))).filter((x) => x.name.startsWith('star-'));
    expect(set).toHaveLength(DEMO_IMAGE_COUNT);
    for (const { name, rgb, info, caption } of set) {
      expect([info.width, info.height, info.channels], name).toEqual([64, 64, 3]);
      const [, color, word, background] = CAPTION.exec(caption) ?? [];
      expect(word, caption).toBe('[trigger]');
      expect(DEMO_STAR_COLORS).toContain(color);
      expect(analyzeImage(rgb, 64), name).toMatchObject({ shape: 'star', color, background });
    }
  });

  it('adds a few ordinary shapes captioned by name, without the trigger', async () => {
    const all = await readSet(join(fresh, ASSET_PATHS.demoDataset));
    const others = all.filter((x) => !x.name.startsWith('star-'));
    expect(all).toHaveLength(DEMO_IMAGE_COUNT + DEMO_OTHER_COUNT);
    expect(others.map((x) => x.name)).toEqual(Array.from({ length: DEMO_OTHER_COUNT }, (_, i) => `other-0${i + 1}.png`));
    for (const { name, rgb, caption } of others) {
      const [, color, shape, background] = CAPTION.exec(caption) ?? [];
      expect(['circle', 'square', 'triangle']).toContain(shape);
      expect(analyzeImage(rgb, 64), name).toMatchObject({ shape, color, background });
    }
  });

  it('makes 16 ordinary shapes with plain captions for regularization', async () => {
    const set = await readSet(join(fresh, ASSET_PATHS.regularization));
    expect(set).toHaveLength(REGULARIZATION_IMAGE_COUNT);
    const shapes = new Set<string>();
    for (const { name, rgb, caption } of set) {
      const [, color, shape, background] = CAPTION.exec(caption) ?? [];
      expect(['circle', 'square', 'triangle']).toContain(shape);
      shapes.add(shape);
      expect(analyzeImage(rgb, 64), name).toMatchObject({ shape, color, background });
    }
    expect(shapes.size).toBe(3);
  });

  it('writes a small tokenizer folder that loads as a CLIP tokenizer', () => {
    const folder = join(fresh, ASSET_PATHS.tokenizer);
    for (const name of readdirSync(folder)) expect(statSync(join(folder, name)).size).toBeLessThan(100_000);
    const tok = ClipTokenizer.fromFolder(folder);
    expect(tok.vocabSize).toBeGreaterThanOrEqual(1000);
    expect(tok.vocabSize).toBeLessThanOrEqual(2000);
    expect(tok.maxLength).toBe(77);
    expect(tok.tokenize('a purple [trigger] on a white background').length).toBe(11);
  });
});
