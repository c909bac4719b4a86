// Latent and text-embedding caches with a real (sharp downscale) stand-in encoder: the second run
// reads from disk, one changed image is re-encoded alone, and keys follow content, encoder and flips.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleBatches } from '../../../nodes/data/batches';
import { type LatentEncoder, LatentCache, type StoredTensor, TextEmbeddingCache, cachingProblems } from '../../../nodes/data/cache';
import { defaultCaptionSettings } from '../../../nodes/data/captions';
import { buildDataset, defaultDatasetSettings } from '../../../nodes/data/dataset';
import { Rng } from '../../../kernels/random';
import { tempFolder, writeImage } from './fixtures/folders';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(() => cleanup());

/** A stand-in VAE: an 8× area downscale of the pixels (3 channels + their mean = 4 latent channels). */
function downscaleEncoder(id = 'fake-vae-v1'): LatentEncoder & { calls: number; items: number } {
  const encoder = {
    id,
    calls: 0,
    items: 0,
    async encode(pixels: StoredTensor): Promise<StoredTensor[]> {
      encoder.calls++;
      const [b, , h, w] = pixels.dims;
      encoder.items += b;
      const out: StoredTensor[] = [];
      for (let i = 0; i < b; i++) {
        const rgb = Buffer.alloc(h * w * 3);
        for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.round((pixels.data[i * 3 * h * w + c * h * w + p] + 1) * 127.5);
        const small = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).resize(w / 8, h / 8, { kernel: 'linear' }).raw().toBuffer();
        const n = (h / 8) * (w / 8);
        const data = new Float32Array(4 * n);
        for (let p = 0; p < n; p++) {
          for (let c = 0; c < 3; c++) data[c * n + p] = small[p * 3 + c] / 255;
          data[3 * n + p] = (data[p] + data[n + p] + data[2 * n + p]) / 3;
        }
        out.push({ dims: [4, h / 8, w / 8], data });
      }
      return out;
    },
  };
  return encoder;
}

describe('latent cache', () => {
  let folder: string;
  const settings = () => ({ ...defaultDatasetSettings, folder, resolutions: [64], step: 32, flipX: true });
  beforeAll(async () => {
    folder = path.join(dir, 'images');
    for (let i = 0; i < 4; i++) await writeImage(path.join(folder, `img${i}.png`), 64, 64, [i * 60, 100, 200 - i * 40]);
    await writeImage(path.join(folder, 'wide.png'), 128, 64, [10, 20, 30]);
  });

  it('encodes each item and flip once, then reads everything from disk', async () => {
    const cacheDir = path.join(dir, 'cache-a');
    const encoder = downscaleEncoder();
    const first = await new LatentCache(cacheDir, encoder).prepare(await buildDataset(settings()), { batchSize: 3 });
    expect(first).toEqual({ encoded: 10, reused: 0 }); // 5 images × (flipX off, on)
    expect(encoder.items).toBe(10);
    // Batches hold one bucket: 8 square entries in batches of 3 → 3 calls, 2 wide entries → 1 call.
    expect(encoder.calls).toBe(4);

    const again = downscaleEncoder();
    const cache = new LatentCache(cacheDir, again);
    const second = await cache.prepare(await buildDataset(settings()));
    expect(second).toEqual({ encoded: 0, reused: 10 });
    expect(again.items).toBe(0);

    const ds = await buildDataset(settings());
    const batch = sampleBatches(ds, new Rng(1), 2).next().value;
    const latents = await cache.getBatch(batch);
    expect(latents.dims).toEqual([batch.entries.length, 4, batch.bucket.height / 8, batch.bucket.width / 8]);
    // The cached latent equals a fresh encode of the same pixels.
    const fresh = await downscaleEncoder().encode({ dims: [1, 3, batch.bucket.height, batch.bucket.width], data: await ds.loadPixels(batch.entries[0].item, batch.entries[0]) });
    expect(Array.from(latents.data.subarray(0, fresh[0].data.length))).toEqual(Array.from(fresh[0].data));
  });

  it('re-encodes only the image whose content changed', async () => {
    const cacheDir = path.join(dir, 'cache-b');
    await new LatentCache(cacheDir, downscaleEncoder()).prepare(await buildDataset(settings()));
    await writeImage(path.join(folder, 'img2.png'), 64, 64, [255, 255, 0]);
    const encoder = downscaleEncoder();
    const report = await new LatentCache(cacheDir, encoder).prepare(await buildDataset(settings()));
    expect(report).toEqual({ encoded: 2, reused: 8 }); // img2 in both flips
    expect(encoder.items).toBe(2);
  });

  it('keys on the encoder and the flips, not the file name', async () => {
    const cacheDir = path.join(dir, 'cache-c');
    await new LatentCache(cacheDir, downscaleEncoder()).prepare(await buildDataset(settings()));
    const other = downscaleEncoder('another-vae');
    expect(await new LatentCache(cacheDir, other).prepare(await buildDataset(settings()))).toEqual({ encoded: 10, reused: 0 });

    const renamed = path.join(dir, 'renamed');
    await writeImage(path.join(renamed, 'zzz.png'), 64, 64, [0, 100, 200]); // same pixels as img0.png
    const enc = downscaleEncoder();
    const report = await new LatentCache(cacheDir, enc).prepare(await buildDataset({ ...settings(), folder: renamed, flipX: false }));
    expect(report).toEqual({ encoded: 0, reused: 1 });
  });

  it('re-encodes an entry whose file was truncated, and refuses a missing one clearly', async () => {
    const cacheDir = path.join(dir, 'cache-d');
    const ds = await buildDataset({ ...settings(), flipX: false });
    const cache = new LatentCache(cacheDir, downscaleEncoder());
    await cache.prepare(ds);
    const item = ds.items[0];
    const key = await cache.keyFor(item, { flipX: false, flipY: false });
    await writeFile(path.join(cacheDir, key.slice(0, 2), `${key}.latent.safetensors`), Buffer.alloc(20));
    await expect(cache.get(item, { flipX: false, flipY: false })).rejects.toThrow(`${item.file}: no cached latent`);
    expect(await cache.prepare(ds)).toEqual({ encoded: 1, reused: 4 });
    await expect(cache.get(item, { flipX: true, flipY: false })).rejects.toThrow(/no cached latent/);
  });
});

describe('text-embedding cache', () => {
  const fakeText = () => {
    const enc = {
      id: 'fake-clip',
      encoded: [] as string[],
      async encode(captions: string[]) {
        enc.encoded.push(...captions);
        return captions.map((c) => ({ dims: [2], data: new Float32Array([c.length, c.charCodeAt(0) || 0]) }));
      },
    };
    return enc;
  };

  it('encodes each caption once, reads the rest from disk, re-encodes a changed one alone', async () => {
    const cacheDir = path.join(dir, 'text');
    const enc = fakeText();
    const first = await new TextEmbeddingCache(cacheDir, enc).getMany(['sks, a dog', 'sks, a cat', '', 'sks, a dog']);
    expect(first.report).toEqual({ encoded: 3, reused: 0 });
    expect(enc.encoded).toEqual(['sks, a dog', 'sks, a cat', '']);
    expect(Array.from(first.embeddings[3].data)).toEqual([10, 's'.charCodeAt(0)]);

    const enc2 = fakeText();
    const second = await new TextEmbeddingCache(cacheDir, enc2).getMany(['sks, a dog', 'sks, a cow', '']);
    expect(second.report).toEqual({ encoded: 1, reused: 2 });
    expect(enc2.encoded).toEqual(['sks, a cow']);
    expect(Array.from(second.embeddings[0].data)).toEqual([10, 's'.charCodeAt(0)]);
  });

  it('says which settings make caching impossible', () => {
    const base = { ...defaultCaptionSettings, numFrames: 1 };
    expect(cachingProblems({ ...base, captionDropoutRate: 0.1 }, { cacheLatents: true, cacheTextEmbeddings: true })).toEqual([]);
    expect(cachingProblems({ ...base, shuffleTags: true }, { cacheLatents: false, cacheTextEmbeddings: true })[0]).toMatch(/^cacheTextEmbeddings: .*shuffleTags/);
    expect(cachingProblems({ ...base, numFrames: 17 }, { cacheLatents: true, cacheTextEmbeddings: false, latentEncoder: { supportsFrames: false } })[0]).toMatch(/^cacheLatents: .*17-frame/);
    // A random clip window takes other frames on each draw: cached latents would not be exact.
    const video = { ...base, numFrames: 17, fps: 16 };
    expect(cachingProblems({ ...video, clipWindow: 'random' }, { cacheLatents: true, cacheTextEmbeddings: false, latentEncoder: { supportsFrames: true } })[0])
      .toMatch(/^cacheLatents \(Dataset node\): .*random 17-frame window.*clipWindow to 'head'/);
    expect(cachingProblems({ ...video, clipWindow: 'head' }, { cacheLatents: true, cacheTextEmbeddings: false, latentEncoder: { supportsFrames: true } })).toEqual([]);
  });
});
