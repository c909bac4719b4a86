// `npm run bench:data`: throughput of the data pipeline on a generated folder of 200 images —
// dataset build (full validation decode), decode + bucket crop + flip to float pixels, and the
// latent cache's own overhead (hashing, writing, reading) with a pass-through encoder, and latent caching
// through the tiny model's real VAE encoder at its 64-pixel resolution.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../kernels/random';
import { sampleBatches } from '../nodes/data/batches';
import { type LatentEncoder, LatentCache } from '../nodes/data/cache';
import { buildDataset, defaultDatasetSettings } from '../nodes/data/dataset';

const COUNT = 200;
const root = await mkdtemp(path.join(tmpdir(), 'loragraph-bench-data-'));
try {
  const folder = path.join(root, 'images');
  const sizes: [number, number][] = [[768, 768], [1024, 768], [768, 1024], [640, 960], [1200, 800]];
  const rng = new Rng(1);
  await Promise.all(
    Array.from({ length: COUNT }, async (_, i) => {
      const [w, h] = sizes[i % sizes.length];
      // Noise-like content so JPEG decode costs what it does on photos.
      const noise = Buffer.alloc(64 * 64 * 3);
      for (let k = 0; k < noise.length; k++) noise[k] = Math.floor(rng.uniform() * 256);
      const img = sharp(noise, { raw: { width: 64, height: 64, channels: 3 } }).resize(w, h, { kernel: 'cubic' }).jpeg({ quality: 90 });
      const { mkdir } = await import('node:fs/promises');
      await mkdir(folder, { recursive: true });
      await img.toFile(path.join(folder, `img${String(i).padStart(3, '0')}.jpg`));
    }),
  );

  const settings = { ...defaultDatasetSettings, folder, resolutions: [512, 768], step: 64, flipX: true, flipY: true };
  let t = performance.now();
  const dataset = await buildDataset(settings);
  const buildS = (performance.now() - t) / 1000;

  t = performance.now();
  const batches = sampleBatches(dataset, new Rng(2), 4);
  let loaded = 0;
  while (loaded < COUNT) {
    const batch = batches.next().value;
    await Promise.all(batch.entries.map((e) => dataset.loadPixels(e.item, e)));
    loaded += batch.entries.length;
  }
  const loadS = (performance.now() - t) / 1000;

  // Latent-sized output (4 × H/8 × W/8, every 8th pixel) so the disk traffic matches a real VAE's.
  const passThrough: LatentEncoder = {
    id: 'pass-through',
    async encode(pixels) {
      const [b, , h, w] = pixels.dims;
      const lh = h / 8, lw = w / 8;
      return Array.from({ length: b }, (_, i) => {
        const data = new Float32Array(4 * lh * lw);
        for (let c = 0; c < 4; c++) for (let y = 0; y < lh; y++) for (let x = 0; x < lw; x++) data[(c * lh + y) * lw + x] = pixels.data[((i * 3 + (c % 3)) * h + y * 8) * w + x * 8];
        return { dims: [4, lh, lw], data };
      });
    },
  };
  const noFlip = await buildDataset({ ...settings, flipX: false, flipY: false });
  const cache = new LatentCache(path.join(root, 'cache'), passThrough);
  t = performance.now();
  await cache.prepare(noFlip);
  const cacheFirstS = (performance.now() - t) / 1000;
  t = performance.now();
  const again = await new LatentCache(path.join(root, 'cache'), passThrough).prepare(noFlip);
  const cacheSecondS = (performance.now() - t) / 1000;

  const rate = (n: number, s: number) => `${(n / s).toFixed(1)} images/s`;
  console.log(`data pipeline, ${COUNT} JPEGs (640–1200 px), resolutions 512+768, flips on, ${(await import('node:os')).cpus().length} cores`);
  console.log(`  build (scan + validate-decode + bucket): ${rate(COUNT, buildS)}  (${buildS.toFixed(2)} s)`);
  console.log(`  decode + bucket crop + flip → float CHW: ${rate(loaded, loadS)}  (${loadS.toFixed(2)} s)`);
  console.log(`  latent cache, subsampling stand-in encoder, cold: ${rate(COUNT, cacheFirstS)}; warm check: ${rate(COUNT, cacheSecondS)} (reused ${again.reused})`);
  console.log(`  full-size load is ${(loadS / buildS).toFixed(1)}× the build's per-image time (validation decodes JPEGs at 1/8 scale); warm cache check is ${(cacheFirstS / cacheSecondS).toFixed(0)}× faster than cold`);
  // The real thing: the tiny model's VAE encoder (random weights when the asset is not built: same cost).
  const { existsSync } = await import('node:fs');
  const { builtinTiny } = await import('../nodes/models/builtin');
  const { vaeLatentEncoder } = await import('../nodes/models/encoders');
  const { tinyConfig } = await import('../kernels/sd/config');
  const config = tinyConfig();
  const weights = existsSync(builtinTiny.checkpoint)
    ? (await (await import('../nodes/models/load')).loadModel('builtin:tiny')).vae.weights
    : new (await import('../kernels')).RandomWeights(1);
  const tinySet = await buildDataset({ ...settings, resolutions: [64], step: 64, flipX: false, flipY: false });
  const vaeCache = new LatentCache(path.join(root, 'vae-cache'), vaeLatentEncoder((await import('../kernels/sd/sd1-family')).sd1Family, config, weights, 'bench-tiny-vae'));
  t = performance.now();
  await vaeCache.prepare(tinySet);
  const vaeS = (performance.now() - t) / 1000;
  console.log(`  latent caching through the tiny VAE encoder at 64×64 (decode + resize + encode + write): ${rate(COUNT, vaeS)}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
