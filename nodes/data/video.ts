// Video clips for video-model LoRAs: probing with ffprobe and pulling evenly spaced frames with the
// system ffmpeg (through fluent-ffmpeg), cropped to the clip's bucket like images.
import ffmpeg from 'fluent-ffmpeg';
import path from 'node:path';
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import type { Bucket } from './buckets';
import type { Flips } from './images';

export const VIDEO_EXTENSIONS = ['.mp4', '.mov', '.webm', '.mkv'] as const;

export function isVideoFile(file: string): boolean {
  return (VIDEO_EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase());
}

export interface VideoInfo {
  /** Upright size (rotation metadata applied, as ffmpeg does when decoding). */
  width: number;
  height: number;
  fps: number;
  frameCount: number;
  durationSeconds: number;
}

/** Video models (Wan, HunyuanVideo, LTX) take 4n+1 frames; other uses may take any count. */
export function validateNumFrames(numFrames: number, videoModel: boolean): void {
  if (!Number.isInteger(numFrames) || numFrames < 1) throw new Error(`numFrames: must be a whole number ≥ 1 (got ${numFrames})`);
  if (videoModel && (numFrames - 1) % 4 !== 0) {
    const lower = numFrames - ((numFrames - 1) % 4);
    throw new Error(`numFrames: video models need 4n+1 frames (1, 5, 9, …, 81); ${numFrames} is not — try ${lower} or ${lower + 4}`);
  }
}

/** `count` frame indices spread evenly from the first to the last frame (the middle one for a single frame). */
export function evenlySpacedFrames(frameCount: number, count: number): number[] {
  if (count === 1) return [Math.floor((frameCount - 1) / 2)];
  return Array.from({ length: count }, (_, i) => Math.round((i * (frameCount - 1)) / (count - 1)));
}

/** How a clip's frames are taken: the whole clip squeezed into numFrames, or a window at a frame rate. */
export const CLIP_WINDOWS = ['head', 'random'] as const;
export type ClipWindow = (typeof CLIP_WINDOWS)[number];

/**
 * Source frames a window of `count` frames at `fps` spans (last index − first index), e.g. 17 frames at
 * 16 fps from a 30 fps clip span 30 source frames. fps 0 means the whole clip.
 */
export function windowSpan(info: Pick<VideoInfo, 'fps' | 'frameCount'>, count: number, fps: number): number {
  if (fps <= 0) return info.frameCount - 1;
  return Math.round(((count - 1) * info.fps) / fps);
}

/**
 * Indices of `count` frames resampled to `fps` (nearest source frame), starting at source frame
 * `start`. With fps 0 the frames are spread over the whole clip instead (ai-toolkit's
 * shrink_video_to_frames). Throws, naming the file, when the clip is too short for the window.
 */
export function framesAtRate(file: string, info: Pick<VideoInfo, 'fps' | 'frameCount'>, count: number, fps: number, start = 0): number[] {
  if (fps <= 0) return evenlySpacedFrames(info.frameCount, count);
  const last = info.frameCount - 1 - windowSpan(info, count, fps);
  if (last < 0) {
    const need = ((count - 1) / fps).toFixed(2);
    const has = ((info.frameCount - 1) / info.fps).toFixed(2);
    throw new Error(`${file}: clip lasts ${has} s; ${count} frames at ${fps} fps need ${need} s (lower numFrames or fps)`);
  }
  if (!(Number.isInteger(start) && start >= 0 && start <= last)) throw new RangeError(`${file}: window start ${start} outside 0…${last}`);
  return Array.from({ length: count }, (_, k) => start + Math.round((k * info.fps) / fps));
}

function ffprobe(file: string, options: string[]): Promise<ffmpeg.FfprobeData> {
  return new Promise((resolve, reject) => ffmpeg.ffprobe(file, options, (err, data) => (err ? reject(err) : resolve(data))));
}

function parseRate(rate: string | undefined): number {
  if (!rate) return NaN;
  const [n, d] = rate.split('/').map(Number);
  return d ? n / d : n;
}

export async function probeVideo(file: string): Promise<VideoInfo> {
  const fail = (why: string): never => {
    throw new Error(`${file}: cannot read video: ${why}`);
  };
  if ((await stat(file)).size === 0) fail('file is empty (0 bytes)');
  let data: ffmpeg.FfprobeData;
  try {
    data = await ffprobe(file, []);
  } catch (err) {
    return fail(firstLine(err));
  }
  const stream = data.streams.find((s) => s.codec_type === 'video');
  if (!stream || !stream.width || !stream.height) return fail('no video stream');
  const fps = parseRate(stream.avg_frame_rate) || parseRate(stream.r_frame_rate);
  let frameCount = Number(stream.nb_frames);
  if (!(frameCount > 0)) {
    // WebM and Matroska do not store a frame count: count by decoding.
    try {
      const counted = await ffprobe(file, ['-count_frames', '-select_streams', 'v:0']);
      frameCount = Number(counted.streams.find((s) => s.codec_type === 'video')?.nb_read_frames);
    } catch (err) {
      return fail(firstLine(err));
    }
  }
  if (!(frameCount > 0)) return fail('could not determine the number of frames');
  const rotation = rotationOf(stream);
  const sideways = Math.abs(rotation) % 180 === 90;
  const durationSeconds = Number(stream.duration) || Number(data.format.duration) || frameCount / fps;
  return { width: sideways ? stream.height : stream.width, height: sideways ? stream.width : stream.height, fps, frameCount, durationSeconds };
}

function rotationOf(stream: ffmpeg.FfprobeStream): number {
  const side = (stream as { side_data_list?: { rotation?: number | string }[] }).side_data_list;
  const fromSide = side?.map((s) => Number(s.rotation)).find((r) => Number.isFinite(r));
  if (fromSide !== undefined) return fromSide;
  const tag = Number((stream.tags as Record<string, unknown> | undefined)?.rotate);
  return Number.isFinite(tag) ? tag : 0;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  // ffprobe puts the useful part ("Invalid data found when processing input") last.
  return lines.length > 1 ? lines[lines.length - 1] : (lines[0] ?? 'unknown error');
}

/**
 * Decodes the given frames (indices into the clip) as 8-bit RGB at the video's upright size.
 * `scaleTo` lets validation decode small.
 */
export function decodeFrames(file: string, info: VideoInfo, indices: readonly number[], scaleTo?: Bucket): Promise<Buffer[]> {
  const width = scaleTo?.width ?? info.width;
  const height = scaleTo?.height ?? info.height;
  const unique = [...new Set(indices)].sort((a, b) => a - b);
  const select = `select='${unique.map((i) => `eq(n\\,${i})`).join('+')}'`;
  const filters = scaleTo ? [select, `scale=${width}:${height}`] : [select];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const command = ffmpeg(file)
      .videoFilters(filters)
      .outputOptions(['-fps_mode', 'passthrough', '-pix_fmt', 'rgb24', '-an'])
      .format('rawvideo')
      .on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
        const detail = stderr?.split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0] ?? err.message;
        reject(new Error(`${file}: cannot decode video frames: ${detail}`));
      });
    const out = command.pipe();
    out.on('data', (c: Buffer) => chunks.push(c));
    out.on('end', () => {
      const all = Buffer.concat(chunks);
      const frameBytes = width * height * 3;
      const got = Math.floor(all.length / frameBytes);
      if (got < unique.length) {
        reject(new Error(`${file}: cannot decode video frames: got ${got} of ${unique.length} frames (the clip may be truncated)`));
        return;
      }
      const byIndex = new Map(unique.map((idx, k) => [idx, all.subarray(k * frameBytes, (k + 1) * frameBytes)]));
      resolve(indices.map((i) => byIndex.get(i)!));
    });
  });
}

/** Each decoded frame scaled to cover the bucket, centre-cropped and flipped, as 8-bit RGB. */
export async function framesToBucket(frames: readonly Buffer[], info: VideoInfo, bucket: Bucket, flips: Flips): Promise<Buffer[]> {
  return Promise.all(
    frames.map(async (frame) => {
      let image = sharp(frame, { raw: { width: info.width, height: info.height, channels: 3 } }).resize(bucket.width, bucket.height, { fit: 'cover', position: 'centre' });
      if (flips.flipX) image = image.flop();
      if (flips.flipY) image = image.flip();
      return image.raw().toBuffer();
    }),
  );
}
