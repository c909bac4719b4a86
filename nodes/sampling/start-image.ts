// The first frame an image-to-video preview starts from (ComfyUI's WanImageToVideo start_image): the image
// scaled to cover the clip's size and centre-cropped, as frame 0 of a clip whose other frames the family
// blanks; for a first-and-last-frame model (Wan 2.1 FLF2V, ComfyUI's WanFirstLastFrameToVideo end_image)
// the end image is the clip's last frame, fitted the same way. And the rules: an image-to-video model
// samples only from a given frame, unless its checkpoint says it was also trained without one (the tiny
// Wan); an end image is refused by the models that take none, and without one a first-and-last-frame
// model samples from its first frame alone.
import sharp from 'sharp';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { samplesWithoutStartImage } from '../../kernels/wan/sampling';
import { BUILTIN_MODELS } from '../models/builtin';
import type { ModelValue } from '../sockets';

/** A model whose denoiser takes a condition made from the clip's pixels (Wan I2V's first frame). */
export function isImageToVideo(model: Pick<ModelValue, 'family' | 'config'>): boolean {
  return model.family.conditioning(model.config).some((c) => c.source === 'latent');
}

/** A model whose condition also takes the clip's last frame (Wan 2.1 FLF2V). */
export function takesLastFrame(model: Pick<ModelValue, 'family' | 'config'>): boolean {
  return model.family.takesLastFrame?.(model.config) ?? false;
}

/** An encoded image (`what` names its file or input in errors). */
export interface GivenImage { data: Uint8Array; what: string }

async function coverRgb(image: GivenImage, width: number, height: number): Promise<Buffer> {
  try {
    return await sharp(image.data).removeAlpha().resize(width, height, { fit: 'cover', position: 'centre' }).toColourspace('srgb').raw().toBuffer();
  } catch (e) {
    throw new Error(`${image.what}: not an image sharp can read (${(e as Error).message})`);
  }
}

/**
 * The clip [3, frames, height, width] in [−1, 1] the condition is encoded from: the decoded image (PNG,
 * JPEG, WebP…) resized to cover width × height and centre-cropped as frame 0, zeros after; `end`, fitted
 * the same way, as the last frame (a one-frame clip has only the start).
 */
export async function startClip(start: GivenImage, width: number, height: number, frames: number, end?: GivenImage): Promise<Float32Array> {
  const plane = width * height;
  const out = new Float32Array(3 * frames * plane);
  const place = (rgb: Buffer, frame: number) => {
    for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[(c * frames + frame) * plane + i] = rgb[i * 3 + c]! / 127.5 - 1;
  };
  place(await coverRgb(start, width, height), 0);
  if (end && frames > 1) place(await coverRgb(end, width, height), frames - 1);
  return out;
}

/**
 * Refuses an end image on a model that takes none. A first-and-last-frame model given none samples from the
 * start image alone (`withoutLastFrame`), as ComfyUI's WanFirstLastFrameToVideo does without end_image,
 * unless its family cannot condition it on the first frame only.
 */
export function checkEndImage(model: ModelValue, hasEnd: boolean): void {
  const wants = takesLastFrame(model);
  if (hasEnd && !wants) throw new Error(`endImage: ${model.source.label} takes no last frame (only first-and-last-frame models do: Wan 2.1 FLF2V); clear endImage`);
  if (!hasEnd && takesLastFrame(withoutLastFrame(model))) {
    throw new Error(`endImage: ${model.source.label} is a first-and-last-frame model and generates between a start and an end image: set endImage (an image in the input folder) on the Sampler or Sampler Settings, or connect an image to the Sampler's lastFrame`);
  }
}

/** The model to sample without an end image: a first-and-last-frame one conditioned on its first frame alone (as image-to-video); any other as it is. */
export function withoutLastFrame(model: ModelValue): ModelValue {
  if (!takesLastFrame(model) || !model.family.firstFrameOnly) return model;
  return { ...model, config: model.family.firstFrameOnly(model.config) };
}

const optional = new Map<string, boolean>();

/** The `__metadata__` of a single-file checkpoint, read synchronously from its header ({} for folders and unreadable files). */
function headerMetadata(path: string): Record<string, string> {
  let fd: number | undefined;
  try {
    if (!statSync(path).isFile()) return {};
    fd = openSync(path, 'r');
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE());
    if (!(n > 0 && n < 100_000_000)) return {};
    const header = Buffer.alloc(n);
    readSync(fd, header, 0, n, 8);
    return (JSON.parse(header.toString('utf8')).__metadata__ ?? {}) as Record<string, string>;
  } catch {
    return {};
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Refuses an image-to-video model without a start image, unless the model takes its first frame as an
 * optional input (Wan 2.2 TI2V-5B: text to video without one) or its checkpoint was trained for that case
 * (read once per checkpoint from its safetensors metadata). Synchronous, so Train can check its sample
 * settings before the first step rather than at the first sample.
 */
export function requireStartImage(model: ModelValue): void {
  if (model.family.conditioning(model.config).every((c) => c.source !== 'latent' || c.optional)) return;
  const path = BUILTIN_MODELS[model.source.path]?.checkpoint ?? model.source.path;
  let ok = optional.get(path);
  if (ok === undefined) optional.set(path, (ok = samplesWithoutStartImage(headerMetadata(path))));
  if (!ok) {
    throw new Error(`startImage: ${model.source.label} is an image-to-video model and samples from a first frame: set startImage (an image in the input folder) on the Sampler or Sampler Settings, or connect an image to the Sampler's firstFrame`);
  }
}
