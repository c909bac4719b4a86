// Reading training images: every supported format (BMP through our own decoder), EXIF orientation
// applied, transparency composited over white, and the bucket crop with flips as float pixels.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { decodeBmp, isBmp } from './bmp';
import type { Bucket } from './buckets';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.bmp'] as const;

export function isImageFile(file: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase());
}

export interface ImageSize {
  width: number;
  height: number;
}

export interface Flips {
  flipX: boolean;
  flipY: boolean;
}

/** A sharp pipeline for the file, upright and without alpha (transparent areas become white). */
export async function openImage(file: string): Promise<Sharp> {
  const bytes = await readFile(file);
  if (bytes.length === 0) throw new Error(`${file}: image file is empty (0 bytes)`);
  if (isBmp(bytes)) {
    const { data, width, height } = decodeBmp(bytes, file);
    return sharp(data, { raw: { width, height, channels: 4 } }).flatten({ background: '#ffffff' }).toColourspace('srgb');
  }
  // failOn 'error' rejects truncated and corrupt pixel data but tolerates harmless warnings.
  return sharp(bytes, { failOn: 'error', autoOrient: true }).flatten({ background: '#ffffff' }).toColourspace('srgb');
}

/**
 * Fully decodes the image once (at a reduced size, which JPEG and WebP decode cheaply) so that a
 * corrupt or truncated file is found when the dataset is built, not in the middle of training.
 * Returns the upright size.
 */
export async function probeImage(file: string): Promise<ImageSize> {
  try {
    const info = await stat(file);
    if (info.size === 0) throw new Error('image file is empty (0 bytes)');
    const bytes = await readFile(file);
    if (isBmp(bytes)) {
      const { width, height } = decodeBmp(bytes, file);
      return { width, height };
    }
    const image = sharp(bytes, { failOn: 'error', autoOrient: true });
    const meta = await image.metadata();
    await image.resize(32, 32, { fit: 'inside' }).raw().toBuffer();
    return { width: meta.autoOrient.width, height: meta.autoOrient.height };
  } catch (err) {
    throw imageError(file, err);
  }
}

/** The whole image as 8-bit RGB, upright, over white. */
export async function decodeImage(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  try {
    const { data, info } = await (await openImage(file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height };
  } catch (err) {
    throw imageError(file, err);
  }
}

/** Scale to cover the bucket, centre-crop, flip: 8-bit RGB at the bucket size. */
export async function loadBucketRgb(file: string, bucket: Bucket, flips: Flips): Promise<Buffer> {
  try {
    let image = (await openImage(file)).resize(bucket.width, bucket.height, { fit: 'cover', position: 'centre' });
    if (flips.flipX) image = image.flop();
    if (flips.flipY) image = image.flip();
    return await image.removeAlpha().raw().toBuffer();
  } catch (err) {
    throw imageError(file, err);
  }
}

/** Interleaved 8-bit RGB (HWC) to planar float CHW in [-1, 1], the layout VAEs take. */
export function rgbToChw(rgb: Uint8Array, width: number, height: number, out = new Float32Array(3 * width * height), offset = 0): Float32Array {
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    out[offset + i] = rgb[i * 3] / 127.5 - 1;
    out[offset + plane + i] = rgb[i * 3 + 1] / 127.5 - 1;
    out[offset + 2 * plane + i] = rgb[i * 3 + 2] / 127.5 - 1;
  }
  return out;
}

function imageError(file: string, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (message.startsWith(file)) return err as Error;
  return new Error(`${file}: cannot read image: ${message}`);
}
