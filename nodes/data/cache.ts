// Latent and text-embedding caches on disk. Entries are content-addressed: a latent's key is the
// image file's content hash + encoder (VAE) id + bucket + frames + flips; an embedding's key is the
// caption text + encoder id. Changing one image re-encodes that image alone; renaming costs nothing.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Batch } from './batches';
import { type Bucket, bucketKey } from './buckets';
import { type CaptionSettings, captionVariesPerDraw } from './captions';
import type { Dataset, DatasetItem } from './dataset';
import type { Flips } from './images';
import { type StoredTensor, isCompleteTensorFile, readTensorFile, writeTensorFile } from './tensor-file';

export type { StoredTensor } from './tensor-file';

/** What the cache needs from a VAE; the VAE node's value provides it. */
export interface LatentEncoder {
  /** Names the weights and encode settings: a different id never reuses another's latents. */
  id: string;
  /** Encodes pixels [B,3,H,W] (or [B,3,F,H,W] for clips) in [-1, 1]; one latent per item, in order. */
  encode(pixels: StoredTensor): Promise<StoredTensor[]>;
  /** Whether clips with more than one frame can be encoded (video VAEs). */
  supportsFrames?: boolean;
}

/** What the cache needs from a text encoder (CLIP/T5); the CLIP node's value provides it. */
export interface TextEmbeddingEncoder {
  id: string;
  /** One embedding per caption, in order. */
  encode(captions: string[]): Promise<StoredTensor[]>;
}

export interface CacheProgress {
  onProgress?: (done: number, total: number) => void;
  throwIfInterrupted?: () => void;
}

export interface CacheReport {
  /** Entries encoded in this call. */
  encoded: number;
  /** Entries found on disk. */
  reused: number;
}

/**
 * Why caching cannot be used with these settings, one message per problem, naming the widget
 * (empty when fine). Caption dropout is not a problem: the empty caption is cached like any other.
 */
export function cachingProblems(
  settings: CaptionSettings & { numFrames: number; fps?: number; clipWindow?: string },
  options: { cacheLatents: boolean; cacheTextEmbeddings: boolean; latentEncoder?: Pick<LatentEncoder, 'supportsFrames'> },
): string[] {
  const problems: string[] = [];
  if (options.cacheTextEmbeddings) {
    const varying = captionVariesPerDraw(settings);
    if (varying.length) problems.push(`cacheTextEmbeddings: captions change on every draw because of ${varying.join(' and ')}; turn those off or turn off cacheTextEmbeddings`);
  }
  if (options.cacheLatents && settings.numFrames > 1 && options.latentEncoder && !options.latentEncoder.supportsFrames) {
    problems.push(`cacheLatents: this VAE encodes single images, not ${settings.numFrames}-frame clips; set numFrames to 1 or turn off cacheLatents`);
  }
  if (options.cacheLatents && settings.numFrames > 1 && (settings.fps ?? 0) > 0 && settings.clipWindow === 'random') {
    problems.push(randomWindowProblem('Dataset', settings.numFrames));
  }
  return problems;
}

/**
 * Why latents of a random clip window cannot be cached: each draw takes other frames, so a cached latent
 * would train on one fixed window instead of the drawn ones. `node` is the node whose cacheLatents is on.
 */
export function randomWindowProblem(node: 'Dataset' | 'Train', numFrames: number, folder?: string): string {
  return `cacheLatents (${node} node): ${folder ? `the dataset ${folder}` : 'this dataset'} draws a random ${numFrames}-frame window of each clip on every draw (Dataset clipWindow 'random'), so cached latents cannot be exact; turn off cacheLatents on the ${node} node, or set the Dataset's clipWindow to 'head'`;
}

/** sha256 of a file's bytes, remembered per (path, size, mtime) so a run hashes each file once. */
export class ContentHasher {
  private readonly known = new Map<string, { size: number; mtimeMs: number; hash: string }>();

  async hash(file: string): Promise<string> {
    const info = await stat(file);
    const seen = this.known.get(file);
    if (seen && seen.size === info.size && seen.mtimeMs === info.mtimeMs) return seen.hash;
    const hash = await new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(file)
        .on('data', (c) => h.update(c))
        .on('end', () => resolve(h.digest('hex')))
        .on('error', reject);
    });
    this.known.set(file, { size: info.size, mtimeMs: info.mtimeMs, hash });
    return hash;
  }
}

function keyOf(parts: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify({ v: 1, ...parts })).digest('hex');
}

function entryPath(dir: string, key: string, ext: string): string {
  return path.join(dir, key.slice(0, 2), `${key}${ext}`);
}

/** The flip variants training can draw for a dataset: both ways for each enabled flip. */
export function flipVariants(settings: { flipX: boolean; flipY: boolean }): Flips[] {
  const xs = settings.flipX ? [false, true] : [false];
  const ys = settings.flipY ? [false, true] : [false];
  return xs.flatMap((flipX) => ys.map((flipY) => ({ flipX, flipY })));
}

/**
 * Tensors already read from disk, kept up to a byte budget (oldest dropped first). Training draws the
 * same few entries every step; reading them again would cost more than the step itself on small models.
 */
export class MemoryMemo<K> {
  private readonly entries = new Map<K, StoredTensor>();
  private bytes = 0;

  constructor(readonly budgetBytes: number) {}

  get(key: K): StoredTensor | undefined { return this.entries.get(key); }

  set(key: K, value: StoredTensor): StoredTensor {
    const size = value.data.byteLength;
    if (size > this.budgetBytes || this.entries.has(key)) return value;
    for (const [k, v] of this.entries) {
      if (this.bytes + size <= this.budgetBytes) break;
      this.entries.delete(k);
      this.bytes -= v.data.byteLength;
    }
    this.entries.set(key, value);
    this.bytes += size;
    return value;
  }
}

/** In-memory budget of each cache: enough for a few thousand SD 1.5 latents at 512². */
export const MEMORY_BUDGET_BYTES = 512 * 2 ** 20;

export class LatentCache {
  readonly hasher = new ContentHasher();
  /** Latents read during this cache's life, by item and flips (a run treats the dataset as fixed). */
  private readonly memo = new MemoryMemo<string>(MEMORY_BUDGET_BYTES);

  /** `dir` is shared by every dataset: entries are content-addressed, never per node. */
  constructor(readonly dir: string, readonly encoder: LatentEncoder) {}

  async keyFor(item: DatasetItem, flips: Flips): Promise<string> {
    return keyOf({
      content: await this.hasher.hash(item.file),
      encoder: this.encoder.id,
      bucket: bucketKey(item.bucket),
      frames: item.video?.frameIndices ?? null,
      flipX: flips.flipX,
      flipY: flips.flipY,
    });
  }

  private async fileFor(item: DatasetItem, flips: Flips): Promise<string> {
    return entryPath(this.dir, await this.keyFor(item, flips), '.latent.safetensors');
  }

  /**
   * Makes sure every item of the dataset, in every flip variant it can be drawn with, has a latent on
   * disk. Missing ones are encoded in batches of one bucket each.
   */
  async prepare(dataset: Dataset, options: CacheProgress & { batchSize?: number } = {}): Promise<CacheReport> {
    const batchSize = options.batchSize ?? 4;
    if (dataset.framesVaryPerDraw) throw new Error(randomWindowProblem('Train', dataset.items.find((i) => i.video)?.frames ?? 0, dataset.settings.folder));
    const variants = flipVariants(dataset.settings);
    const missing = new Map<string, { item: DatasetItem; flips: Flips; file: string }[]>();
    let reused = 0;
    for (const item of dataset.items) {
      for (const flips of variants) {
        const file = await this.fileFor(item, flips);
        if (await isCompleteTensorFile(file)) {
          reused++;
          continue;
        }
        const group = `${bucketKey(item.bucket, item.frames)}`;
        missing.set(group, [...(missing.get(group) ?? []), { item, flips, file }]);
      }
    }
    const total = [...missing.values()].reduce((n, list) => n + list.length, 0);
    let encoded = 0;
    options.onProgress?.(0, total);
    for (const list of missing.values()) {
      for (let i = 0; i < list.length; i += batchSize) {
        options.throwIfInterrupted?.();
        const chunk = list.slice(i, i + batchSize);
        const pixels = await Promise.all(chunk.map((c) => dataset.loadPixels(c.item, c.flips)));
        const { bucket, frames } = chunk[0].item;
        const latents = await this.encoder.encode(stack(pixels, bucket, frames));
        if (latents.length !== chunk.length) throw new Error(`VAE ${this.encoder.id}: encoded ${latents.length} latents for ${chunk.length} images`);
        await Promise.all(chunk.map((c, k) => writeTensorFile(c.file, latents[k])));
        encoded += chunk.length;
        options.onProgress?.(encoded, total);
      }
    }
    return { encoded, reused };
  }

  /** The cached latent of one drawn sample; `prepare` must have run. */
  async get(item: DatasetItem, flips: Flips): Promise<StoredTensor> {
    const memoKey = JSON.stringify([item.file, bucketKey(item.bucket), item.video?.frameIndices ?? null, flips.flipX, flips.flipY]);
    const known = this.memo.get(memoKey);
    if (known) return known;
    const file = await this.fileFor(item, flips);
    if (!(await isCompleteTensorFile(file))) throw new Error(`${item.file}: no cached latent (run prepare first, or the cache folder ${this.dir} was cleared)`);
    return this.memo.set(memoKey, await readTensorFile(file));
  }

  /** The cached latents of a batch, stacked: [B, ...latent dims]. */
  async getBatch(batch: Batch): Promise<StoredTensor> {
    const latents = await Promise.all(batch.entries.map((e) => this.get(e.item, e)));
    return stackTensors(latents);
  }
}

export class TextEmbeddingCache {
  private readonly memo = new MemoryMemo<string>(MEMORY_BUDGET_BYTES);

  constructor(readonly dir: string, readonly encoder: TextEmbeddingEncoder) {}

  keyFor(caption: string): string {
    return keyOf({ text: caption, encoder: this.encoder.id });
  }

  /** Embeddings for the captions, encoding (in one call per `batchSize`) only those not on disk. */
  async getMany(captions: readonly string[], options: CacheProgress & { batchSize?: number } = {}): Promise<{ embeddings: StoredTensor[]; report: CacheReport }> {
    const batchSize = options.batchSize ?? 16;
    const unique = [...new Set(captions)];
    const found = new Map<string, StoredTensor>();
    const missing: string[] = [];
    let reused = 0;
    for (const caption of unique) {
      const known = this.memo.get(caption);
      if (known) { found.set(caption, known); reused++; continue; }
      const file = entryPath(this.dir, this.keyFor(caption), '.text.safetensors');
      if (await isCompleteTensorFile(file)) { found.set(caption, this.memo.set(caption, await readTensorFile(file))); reused++; }
      else missing.push(caption);
    }
    options.onProgress?.(0, missing.length);
    for (let i = 0; i < missing.length; i += batchSize) {
      options.throwIfInterrupted?.();
      const chunk = missing.slice(i, i + batchSize);
      const embeddings = await this.encoder.encode(chunk);
      if (embeddings.length !== chunk.length) throw new Error(`text encoder ${this.encoder.id}: encoded ${embeddings.length} embeddings for ${chunk.length} captions`);
      await Promise.all(chunk.map((caption, k) => writeTensorFile(entryPath(this.dir, this.keyFor(caption), '.text.safetensors'), embeddings[k])));
      chunk.forEach((caption, k) => found.set(caption, this.memo.set(caption, embeddings[k])));
      options.onProgress?.(Math.min(i + batchSize, missing.length), missing.length);
    }
    return { embeddings: captions.map((c) => found.get(c)!), report: { encoded: missing.length, reused } };
  }
}

function stack(pixels: Float32Array[], bucket: Bucket, frames: number): StoredTensor {
  const per = pixels[0].length;
  const data = new Float32Array(per * pixels.length);
  pixels.forEach((p, i) => data.set(p, i * per));
  const dims = frames > 1 ? [pixels.length, 3, frames, bucket.height, bucket.width] : [pixels.length, 3, bucket.height, bucket.width];
  return { dims, data };
}

/** Stacks same-shaped tensors along a new leading batch axis. */
export function stackTensors(tensors: StoredTensor[]): StoredTensor {
  const per = tensors[0].data.length;
  const data = new Float32Array(per * tensors.length);
  tensors.forEach((t, i) => data.set(t.data, i * per));
  return { dims: [tensors.length, ...tensors[0].dims], data };
}
