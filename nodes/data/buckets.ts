// Aspect-ratio buckets: each image gets the training size it is cropped to. Images are only ever
// scaled down; a batch is always made of one bucket (see batches.ts).
import type { ImageSize } from './images';

export interface Bucket {
  width: number;
  height: number;
}

export interface BucketSettings {
  /** Base resolutions (the side of a square with the bucket's maximum area), e.g. [512, 768, 1024]. */
  resolutions: readonly number[];
  /** Bucket sides are multiples of this; 64 is the usual, any multiple of 8 works. */
  step: number;
}

export function bucketKey(bucket: Bucket, frames = 1): string {
  return frames > 1 ? `${bucket.width}x${bucket.height}x${frames}` : `${bucket.width}x${bucket.height}`;
}

export function validateBucketSettings(settings: BucketSettings): void {
  if (!Number.isInteger(settings.step) || settings.step < 8 || settings.step % 8 !== 0) {
    throw new Error(`bucketStep: must be a positive multiple of 8 (got ${settings.step})`);
  }
  if (settings.resolutions.length === 0) throw new Error('resolution: give at least one base resolution');
  for (const r of settings.resolutions) {
    if (!Number.isInteger(r) || r < settings.step || r % settings.step !== 0) {
      throw new Error(`resolution: ${r} must be a multiple of bucketStep (${settings.step})`);
    }
  }
}

/**
 * The bucket set of one base resolution: for every width from half to twice the resolution (in
 * steps), the tallest height that keeps the area within resolution², as kohya builds them.
 */
export function bucketsForResolution(resolution: number, step: number): Bucket[] {
  const maxArea = resolution * resolution;
  const minSide = Math.max(step, Math.floor(resolution / 2 / step) * step);
  const maxSide = resolution * 2;
  const buckets: Bucket[] = [];
  for (let width = minSide; width <= maxSide; width += step) {
    const height = Math.min(maxSide, Math.floor(maxArea / width / step) * step);
    if (height >= minSide) buckets.push({ width, height });
  }
  return buckets;
}

/** The base resolution whose area is closest to the image's (ai-toolkit's choice for several resolutions). */
export function chooseResolution(size: ImageSize, resolutions: readonly number[]): number {
  const area = size.width * size.height;
  let best = resolutions[0];
  for (const r of resolutions) if (Math.abs(r * r - area) < Math.abs(best * best - area)) best = r;
  return best;
}

/**
 * The bucket for an image: the bucket of the chosen resolution closest in aspect ratio, if the image
 * covers it without upscaling; otherwise a bucket cut from the image's own size (scaled down to the
 * resolution's area when larger, then rounded down to the step) — kohya's "no upscale" rule.
 * Returns null when the image is smaller than one step on a side.
 */
export function assignBucket(size: ImageSize, settings: BucketSettings): Bucket | null {
  const resolution = chooseResolution(size, settings.resolutions);
  const aspect = Math.log(size.width / size.height);
  let best: Bucket | null = null;
  let bestError = Infinity;
  for (const b of bucketsForResolution(resolution, settings.step)) {
    const error = Math.abs(Math.log(b.width / b.height) - aspect);
    if (error < bestError - 1e-12 || (Math.abs(error - bestError) <= 1e-12 && best && b.width * b.height > best.width * best.height)) {
      best = b;
      bestError = error;
    }
  }
  if (best && best.width <= size.width && best.height <= size.height) return best;

  const maxArea = resolution * resolution;
  const area = size.width * size.height;
  const scale = area > maxArea ? Math.sqrt(maxArea / area) : 1;
  const step = settings.step;
  if (size.width < step || size.height < step) return null;
  let width = Math.floor(Math.floor(size.width * scale) / step) * step;
  let height = Math.floor(Math.floor(size.height * scale) / step) * step;
  // A sliver (e.g. 64x4097) can fall below one step when scaled to the area: keep one step on the
  // short side and give the long side what the area allows.
  if (width < step) [width, height] = [step, Math.floor(Math.min(size.height, maxArea / step) / step) * step];
  if (height < step) [width, height] = [Math.floor(Math.min(size.width, maxArea / step) / step) * step, step];
  return { width, height };
}
