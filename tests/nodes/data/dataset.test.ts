// Building a dataset from a generated folder: kohya repeats and class tokens, captions, bad files,
// buckets, and the batch sampler (one bucket per batch, repeats per epoch, weights, determinism).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochBatches, loadBatchPixels, sampleBatches } from '../../../nodes/data/batches';
import { type DatasetSettings, buildDataset, defaultDatasetSettings } from '../../../nodes/data/dataset';
import { Rng } from '../../../kernels/random';
import { tempFolder, writeCounterClip, writeImage, writeText } from './fixtures/folders';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(() => cleanup());

const settings = (folder: string, over: Partial<DatasetSettings> = {}): DatasetSettings => ({ ...defaultDatasetSettings, folder, ...over });

/** root: 2 images (one captioned); 3_sks dog: 2 images (one captioned); notes/: ignored. */
async function kohyaFolder(name: string) {
  const root = path.join(dir, name);
  await writeImage(path.join(root, 'a.png'), 512, 512);
  await writeText(path.join(root, 'a.txt'), 'a red square');
  await writeImage(path.join(root, 'b.jpg'), 768, 512);
  await writeImage(path.join(root, '3_sks dog', 'c.webp'), 512, 768);
  await writeText(path.join(root, '3_sks dog', 'c.txt'), '\uFEFFsks dog on grass,\r\nsunny');
  await writeImage(path.join(root, '3_sks dog', 'd.png'), 600, 600);
  await writeImage(path.join(root, 'notes', 'e.png'), 512, 512);
  await writeText(path.join(root, 'readme.md'), 'not media');
  return root;
}

describe('folder convention', () => {
  it('reads repeats and class tokens from N_name folders and multiplies by the repeats setting', async () => {
    const root = await kohyaFolder('kohya');
    const ds = await buildDataset(settings(root, { repeats: 2, defaultCaption: 'a photo' }));
    const byName = Object.fromEntries(ds.items.map((i) => [path.basename(i.file), i]));
    expect(Object.keys(byName).sort()).toEqual(['a.png', 'b.jpg', 'c.webp', 'd.png']);
    expect(byName['a.png']).toMatchObject({ repeats: 2, caption: 'a red square', captionSource: 'file' });
    expect(byName['b.jpg']).toMatchObject({ repeats: 2, caption: 'a photo', captionSource: 'default' });
    expect(byName['c.webp']).toMatchObject({ repeats: 6, caption: 'sks dog on grass, sunny', captionSource: 'file' });
    expect(byName['d.png']).toMatchObject({ repeats: 6, caption: 'sks dog', captionSource: 'folder' });
    expect(ds.ignoredFolders).toEqual([path.join(root, 'notes')]);
    expect(ds.epochLength).toBe(2 + 2 + 6 + 6);
  });

  it('assigns buckets and counts them for the node', async () => {
    const root = path.join(dir, 'kohya');
    const ds = await buildDataset(settings(root));
    const buckets = Object.fromEntries(ds.items.map((i) => [path.basename(i.file), `${i.bucket.width}x${i.bucket.height}`]));
    expect(buckets).toEqual({ 'a.png': '512x512', 'b.jpg': '640x384', 'c.webp': '384x640', 'd.png': '512x512' });
    expect(ds.bucketCounts()).toEqual([
      { bucket: '512x512', files: 2, repeated: 4 },
      { bucket: '384x640', files: 1, repeated: 3 },
      { bucket: '640x384', files: 1, repeated: 1 },
    ]);
  });

  it('uses a configured caption extension', async () => {
    const root = path.join(dir, 'ext');
    await writeImage(path.join(root, 'x.png'), 64, 64);
    await writeText(path.join(root, 'x.caption'), 'from caption file');
    await writeText(path.join(root, 'x.txt'), 'from txt');
    const ds = await buildDataset(settings(root, { captionExtension: 'caption', resolutions: [64] }));
    expect(ds.items[0].caption).toBe('from caption file');
  });

  it('fails clearly on an empty or missing folder', async () => {
    const empty = path.join(dir, 'empty');
    await writeText(path.join(empty, 'only.txt'), 'caption without image');
    await expect(buildDataset(settings(empty))).rejects.toThrow(`${empty}: no images or videos found`);
    await expect(buildDataset(settings(path.join(dir, 'nope')))).rejects.toThrow(/nope: dataset folder does not exist/);
  });
});

describe('bad files', () => {
  async function badFolder() {
    const root = path.join(dir, 'bad');
    await writeImage(path.join(root, 'good.png'), 64, 64);
    await writeFile(path.join(root, 'zero.png'), '');
    const jpg = await writeImage(path.join(root, 'cut.jpg'), 128, 128);
    const { readFile } = await import('node:fs/promises');
    await writeFile(jpg, (await readFile(jpg)).subarray(0, 300));
    await writeImage(path.join(root, 'latin1.png'), 64, 64);
    await writeText(path.join(root, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9])); // "café" in Latin-1
    return root;
  }

  it('fails at build time with every bad file named', async () => {
    const root = await badFolder();
    const err = await buildDataset(settings(root, { resolutions: [64] })).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/^3 bad files in .*skipBadFiles/);
    expect(err?.message).toContain(`${path.join(root, 'zero.png')}: cannot read image: image file is empty (0 bytes)`);
    expect(err?.message).toContain(path.join(root, 'cut.jpg'));
    expect(err?.message).toContain(`${path.join(root, 'latin1.txt')}: caption file is not valid UTF-8`);
  });

  it('skips and lists bad files when skipBadFiles is on', async () => {
    const root = path.join(dir, 'bad');
    const ds = await buildDataset(settings(root, { resolutions: [64], skipBadFiles: true }));
    expect(ds.items.map((i) => path.basename(i.file))).toEqual(['good.png']);
    expect(ds.skipped.map((s) => path.basename(s.file)).sort()).toEqual(['cut.jpg', 'latin1.png', 'zero.png']);
  });
});

describe('batches', () => {
  let mixed: string;
  beforeAll(async () => {
    mixed = path.join(dir, 'mixed');
    for (let i = 0; i < 5; i++) await writeImage(path.join(mixed, `sq${i}.png`), 64, 64, [i * 40, 0, 0]);
    for (let i = 0; i < 3; i++) await writeImage(path.join(mixed, '2_wide', `w${i}.png`), 128, 64, [0, i * 40, 0]);
  });

  it('draws every batch from one bucket and sees each item repeats times per epoch', async () => {
    const ds = await buildDataset(settings(mixed, { resolutions: [64], step: 32 }));
    expect(ds.bucketCounts()).toEqual([
      { bucket: '96x32', files: 3, repeated: 6 },
      { bucket: '64x64', files: 5, repeated: 5 },
    ]);
    const batches = epochBatches(ds, new Rng(1), 2);
    const seen = new Map<string, number>();
    for (const b of batches) {
      expect(new Set(b.map((i) => `${i.bucket.width}x${i.bucket.height}`)).size).toBe(1);
      for (const i of b) seen.set(path.basename(i.file), (seen.get(path.basename(i.file)) ?? 0) + 1);
    }
    expect(Object.fromEntries(seen)).toEqual({ 'sq0.png': 1, 'sq1.png': 1, 'sq2.png': 1, 'sq3.png': 1, 'sq4.png': 1, 'w0.png': 2, 'w1.png': 2, 'w2.png': 2 });
    expect(batches.length).toBe(3 + 3);
  });

  it('is deterministic for the same rng and resumes by skipping', async () => {
    const ds = await buildDataset(settings(mixed, { resolutions: [64], step: 32, flipX: true, shuffleTags: true }));
    const take = (seed: number, n: number) => {
      const it = sampleBatches(ds, new Rng(seed), 3);
      return Array.from({ length: n }, () => it.next().value).map((b) => b.entries.map((e) => `${path.basename(e.item.file)}:${e.flipX}`).join());
    };
    expect(take(4, 12)).toEqual(take(4, 12));
    expect(take(4, 12)).not.toEqual(take(5, 12));
  });

  it('mixes datasets by weight and keeps each batch within one dataset', async () => {
    const a = await buildDataset(settings(mixed, { resolutions: [64], step: 32, weight: 3 }));
    const b = await buildDataset(settings(path.join(dir, 'mixed', '2_wide'), { resolutions: [64], step: 32, weight: 1, isRegularization: true }));
    const it = sampleBatches([a, b], new Rng(8), 2);
    let fromA = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const batch = it.next().value;
      expect(new Set(batch.entries.map((e) => e.dataset)).size).toBe(1);
      if (batch.entries[0].dataset === a) fromA++;
    }
    expect(Math.abs(fromA / n - 0.75)).toBeLessThan(0.03);
  });

  it('applies the drawn caption and flips to the batch', async () => {
    const ds = await buildDataset(settings(mixed, { resolutions: [64], step: 32, triggerWord: 'ohwx', defaultCaption: 'square', flipX: true }));
    const it = sampleBatches(ds, new Rng(2), 4);
    const flips = new Set<boolean>();
    for (let i = 0; i < 30; i++) {
      for (const e of it.next().value.entries) {
        expect(e.caption).toBe(e.item.caption === 'wide' ? 'ohwx, wide' : 'ohwx, square');
        flips.add(e.flipX);
        expect(e.flipY).toBe(false);
      }
    }
    expect(flips).toEqual(new Set([true, false]));
  });

  it('loads a batch as [B,3,H,W] floats in [-1,1] at the bucket size', async () => {
    const ds = await buildDataset(settings(mixed, { resolutions: [64], step: 32 }));
    const batch = sampleBatches(ds, new Rng(3), 2).next().value;
    const { dims, data } = await loadBatchPixels(batch);
    expect(dims).toEqual([batch.entries.length, 3, batch.bucket.height, batch.bucket.width]);
    expect(data.length).toBe(dims.reduce((a, b) => a * b));
    expect(Math.min(...data)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...data)).toBeLessThanOrEqual(1);
  });
});

describe('video clips in a dataset', () => {
  it('samples numFrames per clip, records fps, buckets per frame, loads [B,3,F,H,W]', async () => {
    const root = path.join(dir, 'clips');
    await writeCounterClip(path.join(root, 'a.mp4'), 30, 15, 96, 64);
    await writeText(path.join(root, 'a.txt'), 'a counter');
    const ds = await buildDataset(settings(root, { resolutions: [64], step: 32, numFrames: 5, videoModel: true }));
    const item = ds.items[0];
    expect(item).toMatchObject({ kind: 'video', frames: 5, bucket: { width: 64, height: 64 }, caption: 'a counter' });
    expect(item.video).toMatchObject({ fps: 15, frameCount: 30, frameIndices: [0, 7, 15, 22, 29] });
    expect(ds.bucketCounts()).toEqual([{ bucket: '64x64x5', files: 1, repeated: 1 }]);
    const { dims, data } = await loadBatchPixels(sampleBatches(ds, new Rng(1), 1).next().value);
    expect(dims).toEqual([1, 3, 5, 64, 64]);
    // 96x64 is as far from 96x32 as from 64x64 in aspect; the larger wins. Channel 0, frame f is flat grey 8·index → (8·index)/127.5 − 1.
    const plane = 64 * 64;
    const levels = [0, 1, 2, 3, 4].map((f) => Math.round(((data[f * plane + 100] + 1) * 127.5) / 8));
    expect(levels).toEqual([0, 7, 15, 22, 29]);
  });

  it('resamples clips to the fps widget: the head window, or a random window per draw (replayable)', async () => {
    const root = path.join(dir, 'clips-fps');
    // 40 frames at 30 fps; 5 frames at 15 fps take every second source frame.
    await writeCounterClip(path.join(root, 'a.mp4'), 40, 30, 64, 64);
    const head = await buildDataset(settings(root, { resolutions: [64], step: 32, numFrames: 5, videoModel: true, fps: 15 }));
    expect(head.items[0].video).toMatchObject({ frameIndices: [0, 2, 4, 6, 8], windowStarts: 1 });
    expect(head.framesVaryPerDraw).toBe(false);
    expect(sampleBatches(head, new Rng(1), 1).next().value.entries[0].frameIndices).toBeUndefined();

    const random = await buildDataset(settings(root, { resolutions: [64], step: 32, numFrames: 5, videoModel: true, fps: 15, clipWindow: 'random' }));
    expect(random.items[0].video!.windowStarts).toBe(40 - 8);
    expect(random.framesVaryPerDraw).toBe(true);
    const draws = (seed: number) => { const it = sampleBatches(random, new Rng(seed), 1); return Array.from({ length: 12 }, () => it.next().value.entries[0].frameIndices!); };
    const a = draws(3);
    expect(draws(3)).toEqual(a);
    for (const w of a) {
      expect(w.map((f) => f - w[0])).toEqual([0, 2, 4, 6, 8]);
      expect(w[0]).toBeGreaterThanOrEqual(0);
      expect(w[4]).toBeLessThanOrEqual(39);
    }
    expect(new Set(a.map((w) => w[0])).size).toBeGreaterThan(3);
    // The drawn window is what gets decoded.
    const batch = sampleBatches(random, new Rng(3), 1).next().value;
    const { data } = await loadBatchPixels(batch);
    const plane = 64 * 64;
    expect([0, 1, 2, 3, 4].map((f) => Math.round(((data[f * plane + 100] + 1) * 127.5) / 8))).toEqual(batch.entries[0].frameIndices);
  });

  it('names a clip too short for numFrames at the fps', async () => {
    const root = path.join(dir, 'clips-short-fps');
    await writeCounterClip(path.join(root, 'b.mp4'), 12, 10, 64, 64);
    const err = await buildDataset(settings(root, { resolutions: [64], step: 32, numFrames: 9, videoModel: true, fps: 5 })).then(() => null, (e: Error) => e);
    expect(err?.message).toContain(`${path.join(root, 'b.mp4')}: clip lasts 1.10 s; 9 frames at 5 fps need 1.60 s`);
  });

  it('buckets a 16:9 clip by pixel area at 512 and 768, keeping its aspect', async () => {
    const root = path.join(dir, 'clips-wide');
    await writeCounterClip(path.join(root, 'w.mp4'), 5, 10, 1280, 720);
    for (const [res, expected] of [[512, { width: 640, height: 384 }], [768, { width: 1024, height: 576 }]] as const) {
      const ds = await buildDataset(settings(root, { resolutions: [res], step: 64, numFrames: 5, videoModel: true }));
      const b = ds.items[0].bucket;
      expect(b).toEqual(expected);
      expect(b.width * b.height).toBeLessThanOrEqual(res * res);
      expect(Math.abs(Math.log((b.width / b.height) / (16 / 9)))).toBeLessThan(0.08);
    }
  });

  it('names a clip shorter than numFrames, and an unreadable clip', async () => {
    const root = path.join(dir, 'short');
    await writeCounterClip(path.join(root, 'short.mp4'), 4, 10);
    await writeText(path.join(root, 'broken.webm'), 'garbage');
    const err = await buildDataset(settings(root, { resolutions: [64], step: 32, numFrames: 5 })).then(() => null, (e: Error) => e);
    expect(err?.message).toContain(`${path.join(root, 'short.mp4')}: clip has 4 frames, fewer than numFrames (5)`);
    expect(err?.message).toContain(`${path.join(root, 'broken.webm')}: cannot read video`);
  });
});
