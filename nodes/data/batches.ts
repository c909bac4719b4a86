// The batch sampler the Train node draws from: every batch holds items of one bucket of one dataset;
// several datasets are mixed by weight; captions and flips are drawn per sample.
import { type Bucket, bucketKey } from './buckets';
import type { Dataset, DatasetItem } from './dataset';
import type { Flips } from './images';
import type { Rng } from '../../kernels/random';

export interface BatchEntry extends Flips {
  dataset: Dataset;
  item: DatasetItem;
  /** The caption drawn for this sample (trigger, dropout, shuffle applied). */
  caption: string;
  /** A clip's frames drawn for this sample (a random window); absent = the item's fixed frames. */
  frameIndices?: number[];
}

export interface Batch {
  bucket: Bucket;
  frames: number;
  /** e.g. "512x768", or "512x512x17" for clips. */
  bucketKey: string;
  entries: BatchEntry[];
}

/**
 * One epoch of one dataset: each item appears `repeats` times, grouped by bucket, shuffled within its
 * bucket, cut into batches (the last batch of a bucket may be smaller), and the batches shuffled.
 */
export function epochBatches(dataset: Dataset, rng: Rng, batchSize: number): DatasetItem[][] {
  const byBucket = new Map<string, DatasetItem[]>();
  for (const item of dataset.items) {
    const key = bucketKey(item.bucket, item.frames);
    const list = byBucket.get(key) ?? [];
    for (let r = 0; r < item.repeats; r++) list.push(item);
    byBucket.set(key, list);
  }
  const batches: DatasetItem[][] = [];
  for (const key of [...byBucket.keys()].sort()) {
    const list = rng.shuffle(byBucket.get(key)!);
    for (let i = 0; i < list.length; i += batchSize) batches.push(list.slice(i, i + batchSize));
  }
  return rng.shuffle(batches);
}

/**
 * An endless stream of batches. With several datasets each batch comes from one dataset chosen with
 * probability weight / (sum of weights), so equal weights give equal shares whatever the sizes.
 * Deterministic for a given rng sequence: to resume at batch k, make the same rng and skip k batches
 * (cheap: no pixels are loaded here).
 */
export function* sampleBatches(datasets: Dataset | readonly Dataset[], rng: Rng, batchSize: number): Generator<Batch, never> {
  const list = Array.isArray(datasets) ? (datasets as readonly Dataset[]) : [datasets as Dataset];
  if (list.length === 0) throw new Error('sampleBatches: no datasets');
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize: must be a whole number ≥ 1 (got ${batchSize})`);
  const queues: DatasetItem[][][] = list.map(() => []);
  const weights = list.map((d) => d.weight);
  for (;;) {
    const pick = list.length > 1 ? rng.choiceIndex(weights) : 0;
    const dataset = list[pick];
    if (queues[pick].length === 0) queues[pick] = epochBatches(dataset, rng, batchSize);
    const items = queues[pick].shift()!;
    const entries = items.map((item) => {
      const entry: BatchEntry = { dataset, item, caption: dataset.drawCaption(item, rng), ...dataset.drawFlips(rng) };
      const frameIndices = dataset.drawFrames(item, rng);
      if (frameIndices) entry.frameIndices = frameIndices;
      return entry;
    });
    yield { bucket: items[0].bucket, frames: items[0].frames, bucketKey: bucketKey(items[0].bucket, items[0].frames), entries };
  }
}

/** The pixels of a whole batch: [B, 3, H, W] for images, [B, 3, F, H, W] for clips, float32 in [-1, 1]. */
export async function loadBatchPixels(batch: Batch): Promise<{ dims: number[]; data: Float32Array }> {
  const { width, height } = batch.bucket;
  const per = 3 * batch.frames * width * height;
  const data = new Float32Array(per * batch.entries.length);
  const pixels = await Promise.all(batch.entries.map((e) => e.dataset.loadPixels(e.item, e, e.frameIndices)));
  pixels.forEach((p, i) => data.set(p, i * per));
  const dims = batch.frames > 1 ? [batch.entries.length, 3, batch.frames, height, width] : [batch.entries.length, 3, height, width];
  return { dims, data };
}
