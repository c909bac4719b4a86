// The DATASET value: a folder turned into validated, bucketed training items. Built once (every
// file is checked here, so training never meets a bad file), immutable afterwards.
import { type Bucket, type BucketSettings, assignBucket, bucketKey, validateBucketSettings } from './buckets';
import { readCaptionFile } from './caption-files';
import { type CaptionSettings, defaultCaptionSettings, processCaption } from './captions';
import { type Flips, type ImageSize, loadBucketRgb, probeImage, rgbToChw } from './images';
import type { Rng } from '../../kernels/random';
import { scanFolder } from './scan';
import { type ClipWindow, type VideoInfo, decodeFrames, framesAtRate, framesToBucket, probeVideo, validateNumFrames, windowSpan } from './video';

export interface DatasetSettings extends CaptionSettings, BucketSettings {
  folder: string;
  /** Caption files sit next to the media with this extension (".txt"). */
  captionExtension: string;
  /** Caption for files without a caption file (and outside an `N_name` folder). */
  defaultCaption: string;
  /** Multiplies each folder's repeats (kohya's `N_` prefix). */
  repeats: number;
  /** Share of batches when several datasets feed one Train node. */
  weight: number;
  flipX: boolean;
  flipY: boolean;
  /** Skip unreadable files with a warning instead of failing. */
  skipBadFiles: boolean;
  /** Frames sampled from each video clip. */
  numFrames: number;
  /** Require 4n+1 frame counts, as video models do. */
  videoModel: boolean;
  /** Frame rate clips are resampled to (Wan: 16); 0 = numFrames spread over the whole clip. */
  fps: number;
  /** With fps set: the window at the clip's start, or a random window on every draw. */
  clipWindow: ClipWindow;
  /**
   * Clips for a model whose first frame is optional (Wan 2.2 TI2V-5B): given, image to video (ai-toolkit's
   * do_i2v); off, text to video (the first-frame input left zero). Absent: on. Models that always take
   * frames of the clip (Wan I2V: the first; Wan 2.1 FLF2V: the first and the last) build them from each
   * clip whatever this says (the family's latentConditioning).
   */
  imageToVideo?: boolean;
  /** Train from cached VAE latents (see cache.ts); the trainer reads this flag. */
  cacheLatents: boolean;
  /** Train from cached text embeddings (see cache.ts); the trainer reads this flag. */
  cacheTextEmbeddings: boolean;
}

export const defaultDatasetSettings: Omit<DatasetSettings, 'folder'> = {
  ...defaultCaptionSettings,
  resolutions: [512],
  step: 64,
  captionExtension: '.txt',
  defaultCaption: '',
  repeats: 1,
  weight: 1,
  flipX: false,
  flipY: false,
  skipBadFiles: false,
  numFrames: 1,
  videoModel: false,
  fps: 0,
  clipWindow: 'head',
  imageToVideo: true,
  cacheLatents: false,
  cacheTextEmbeddings: false,
};

export interface VideoClip extends VideoInfo {
  /** The frames used for training: spread across the clip, or the window at its start (fps set). */
  frameIndices: number[];
  /** Window starts a random window can take (1 when the frames are fixed). */
  windowStarts: number;
}

export interface DatasetItem {
  file: string;
  kind: 'image' | 'video';
  /** The caption before per-draw processing (trigger, dropout, shuffle happen on each draw). */
  caption: string;
  captionSource: 'file' | 'folder' | 'default';
  captionFile: string | null;
  repeats: number;
  /** Upright source size. */
  size: ImageSize;
  bucket: Bucket;
  /** 1 for images. */
  frames: number;
  video: VideoClip | null;
  isRegularization: boolean;
  weight: number;
}

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface BucketCount {
  bucket: string;
  /** Distinct files in the bucket. */
  files: number;
  /** Files × repeats: how often the bucket is seen per epoch. */
  repeated: number;
}

export class Dataset {
  readonly settings: Readonly<DatasetSettings>;
  readonly items: readonly DatasetItem[];
  readonly skipped: readonly SkippedFile[];
  /** Subfolders ignored because they are not named `N_name`. */
  readonly ignoredFolders: readonly string[];

  constructor(settings: DatasetSettings, items: DatasetItem[], skipped: SkippedFile[], ignoredFolders: string[]) {
    this.settings = Object.freeze({ ...settings, resolutions: Object.freeze([...settings.resolutions]) });
    this.items = Object.freeze(items.map((i) => Object.freeze(i)));
    this.skipped = Object.freeze(skipped);
    this.ignoredFolders = Object.freeze(ignoredFolders);
  }

  get weight(): number {
    return this.settings.weight;
  }

  get isRegularization(): boolean {
    return this.settings.isRegularization;
  }

  /** Items × repeats: the number of samples in one epoch. */
  get epochLength(): number {
    return this.items.reduce((n, i) => n + i.repeats, 0);
  }

  bucketCounts(): BucketCount[] {
    const counts = new Map<string, BucketCount>();
    for (const item of this.items) {
      const key = bucketKey(item.bucket, item.frames);
      const c = counts.get(key) ?? { bucket: key, files: 0, repeated: 0 };
      c.files += 1;
      c.repeated += item.repeats;
      counts.set(key, c);
    }
    return [...counts.values()].sort((a, b) => b.repeated - a.repeated || a.bucket.localeCompare(b.bucket));
  }

  /** One draw of the caption as the model will see it. */
  drawCaption(item: DatasetItem, rng: Rng): string {
    return processCaption(item.caption, this.settings, rng);
  }

  /** One draw of the flip augmentations: each enabled flip happens half of the time. */
  drawFlips(rng: Rng): Flips {
    // Both numbers are always drawn so the sequence does not depend on the settings.
    const x = rng.uniform() < 0.5;
    const y = rng.uniform() < 0.5;
    return { flipX: this.settings.flipX && x, flipY: this.settings.flipY && y };
  }

  /** Whether a clip's frames change from draw to draw (a random window): cached latents could not be exact. */
  get framesVaryPerDraw(): boolean {
    return this.settings.clipWindow === 'random' && this.items.some((i) => (i.video?.windowStarts ?? 1) > 1);
  }

  /**
   * One draw of a clip's frames: the fixed ones, or (clipWindow 'random') a window starting at a random
   * frame. Images and fixed clips draw nothing from `rng`, so their sequences do not depend on this.
   */
  drawFrames(item: DatasetItem, rng: Rng): number[] | undefined {
    const clip = item.video;
    if (!clip || this.settings.clipWindow !== 'random' || clip.windowStarts <= 1) return undefined;
    const start = Math.min(clip.windowStarts - 1, Math.floor(rng.uniform() * clip.windowStarts));
    return framesAtRate(item.file, clip, item.frames, this.settings.fps, start);
  }

  /**
   * Pixels of one item at its bucket size, float32 in [-1, 1]: CHW for images, CFHW (channels,
   * frames, height, width — the layout video VAEs take) for video clips (`frameIndices`: a drawn window).
   */
  async loadPixels(item: DatasetItem, flips: Flips, frameIndices?: readonly number[]): Promise<Float32Array> {
    const { width, height } = item.bucket;
    if (item.kind === 'image') return rgbToChw(await loadBucketRgb(item.file, item.bucket, flips), width, height);
    const clip = item.video!;
    const frames = await framesToBucket(await decodeFrames(item.file, clip, frameIndices ?? clip.frameIndices), clip, item.bucket, flips);
    const plane = width * height;
    const out = new Float32Array(3 * frames.length * plane);
    frames.forEach((rgb, f) => {
      for (let i = 0; i < plane; i++) {
        for (let c = 0; c < 3; c++) out[(c * frames.length + f) * plane + i] = rgb[i * 3 + c] / 127.5 - 1;
      }
    });
    return out;
  }

  /** Rough memory held by this value, for the executor's cache budget (pixels are loaded on demand). */
  byteSize(): number {
    let bytes = 1024;
    for (const item of this.items) bytes += 256 + 2 * (item.file.length + item.caption.length + (item.captionFile?.length ?? 0));
    return bytes;
  }
}

export interface BuildOptions {
  onProgress?: (done: number, total: number) => void;
  throwIfInterrupted?: () => void;
  /** Files probed at once; decoding is mostly native work. */
  concurrency?: number;
}

/**
 * Scans and validates a dataset folder: every image is decoded, every caption file is read as UTF-8,
 * every clip is probed and its frames decoded. Bad files fail the build with one error listing them,
 * or are left out and listed in `skipped` when `skipBadFiles` is on.
 */
export async function buildDataset(settings: DatasetSettings, options: BuildOptions = {}): Promise<Dataset> {
  validateBucketSettings(settings);
  validateNumFrames(settings.numFrames, settings.videoModel);
  if (!(Number.isFinite(settings.fps) && settings.fps >= 0)) throw new Error(`fps: must be 0 (spread over the clip) or a frame rate above 0 (got ${settings.fps})`);
  if (!Number.isInteger(settings.repeats) || settings.repeats < 1) throw new Error(`repeats: must be a whole number ≥ 1 (got ${settings.repeats})`);
  if (!(settings.weight > 0)) throw new Error(`weight: must be above 0 (got ${settings.weight})`);
  for (const key of ['captionDropoutRate', 'tokenDropoutRate'] as const) {
    if (!(settings[key] >= 0 && settings[key] <= 1)) throw new Error(`${key}: must be between 0 and 1 (got ${settings[key]})`);
  }

  const scan = await scanFolder(settings.folder, settings.captionExtension);
  const results: (DatasetItem | SkippedFile)[] = new Array(scan.files.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < scan.files.length) {
      const index = next++;
      const entry = scan.files[index];
      options.throwIfInterrupted?.();
      try {
        const caption = entry.captionFile ? await readCaptionFile(entry.captionFile) : '';
        const captionSource = caption !== '' ? 'file' : entry.classTokens ? 'folder' : 'default';
        const base = {
          file: entry.file,
          kind: entry.kind,
          caption: caption !== '' ? caption : (entry.classTokens ?? settings.defaultCaption),
          captionSource,
          captionFile: entry.captionFile,
          repeats: entry.folderRepeats * settings.repeats,
          isRegularization: settings.isRegularization,
          weight: settings.weight,
        } as const;
        if (entry.kind === 'image') {
          const size = await probeImage(entry.file);
          results[index] = { ...base, size, bucket: bucketOrThrow(entry.file, size, settings), frames: 1, video: null };
        } else {
          const info = await probeVideo(entry.file);
          if (info.frameCount < settings.numFrames) {
            throw new Error(`${entry.file}: clip has ${info.frameCount} frames, fewer than numFrames (${settings.numFrames})`);
          }
          const size = { width: info.width, height: info.height };
          const bucket = bucketOrThrow(entry.file, size, settings);
          const frameIndices = framesAtRate(entry.file, info, settings.numFrames, settings.fps);
          const windowStarts = settings.fps > 0 && settings.clipWindow === 'random' ? info.frameCount - windowSpan(info, settings.numFrames, settings.fps) : 1;
          // Decode the chosen frames once, small, so a broken clip fails now rather than mid-training
          // (a random window decodes its whole range).
          const check = windowStarts > 1 ? Array.from({ length: info.frameCount }, (_, i) => i) : frameIndices;
          await decodeFrames(entry.file, info, check, { width: 16, height: 16 });
          results[index] = { ...base, size, bucket, frames: settings.numFrames, video: { ...info, frameIndices, windowStarts } };
        }
      } catch (err) {
        results[index] = { file: entry.file, reason: err instanceof Error ? err.message : String(err) };
      }
      options.onProgress?.(++done, scan.files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  options.throwIfInterrupted?.();

  const items = results.filter((r): r is DatasetItem => 'bucket' in r);
  const skipped = results.filter((r): r is SkippedFile => !('bucket' in r));
  if (skipped.length > 0 && !settings.skipBadFiles) {
    const shown = skipped.slice(0, 10).map((s) => `  ${s.reason}`);
    if (skipped.length > 10) shown.push(`  … and ${skipped.length - 10} more`);
    throw new Error(`${skipped.length} bad file${skipped.length > 1 ? 's' : ''} in ${settings.folder} (turn on skipBadFiles to leave them out):\n${shown.join('\n')}`);
  }
  if (items.length === 0) throw new Error(`${settings.folder}: no usable images or videos (all ${skipped.length} files were bad)`);
  return new Dataset(settings, items, skipped, scan.ignoredFolders);
}

function bucketOrThrow(file: string, size: ImageSize, settings: BucketSettings): Bucket {
  const bucket = assignBucket(size, settings);
  if (!bucket) throw new Error(`${file}: ${size.width}x${size.height} is smaller than one bucket step (${settings.step}px)`);
  return bucket;
}
