// Clips a node made (video-model samples), as files people can watch: an animated WebP for previews —
// browsers play it in an <img> and on the canvas, so the editor needs no video element — encoded by sharp
// from the frames stacked as pages; and an H.264 MP4 (yuv420p, what every player accepts) through the
// system ffmpeg when samples are saved. Both are written to a temporary name and renamed.
import { spawn } from 'node:child_process';
import { rename, rm, writeFile } from 'node:fs/promises';
import sharp, { type CreateRaw } from 'sharp';

export interface VideoFrames {
  width: number;
  height: number;
  /** Frames per second the clip plays at. */
  fps: number;
  /** RGB bytes (HWC) of each frame, in order. */
  frames: readonly Uint8Array[];
}

function check(v: VideoFrames, what: string): void {
  if (v.frames.length === 0) throw new Error(`${what}: a clip needs at least one frame`);
  if (!(v.fps > 0 && Number.isFinite(v.fps))) throw new Error(`${what}: fps must be > 0 (got ${v.fps})`);
  const bytes = v.width * v.height * 3;
  v.frames.forEach((f, i) => {
    if (f.length !== bytes) throw new Error(`${what}: frame ${i} has ${f.length} bytes, a ${v.width}×${v.height} RGB frame has ${bytes}`);
  });
}

/** The clip's frames one under another (sharp's multi-page layout: page height = frame height). */
function stacked(v: VideoFrames): Buffer {
  const out = Buffer.alloc(v.width * v.height * 3 * v.frames.length);
  v.frames.forEach((f, i) => out.set(f, i * f.length));
  return out;
}

/**
 * An animated WebP of the clip, looping, each frame shown 1/fps seconds (rounded to whole ms, as WebP
 * stores delays). Lossless for small frames (tiny models' previews blur badly when lossy), lossy above 256×256
 * pixels a frame, where 81 lossless full-size frames would weigh tens of megabytes.
 * Identical consecutive frames are stored once with their delays summed (libvips does this), so a still
 * stretch has fewer pages than frames but plays as long; the frame count lives beside the file.
 */
export async function encodeAnimatedWebp(v: VideoFrames, o: { quality?: number; lossless?: boolean } = {}): Promise<Uint8Array> {
  check(v, 'animated WebP');
  const delay = Math.max(1, Math.round(1000 / v.fps));
  const buf = await sharp(stacked(v), { raw: { width: v.width, height: v.height * v.frames.length, channels: 3, pageHeight: v.height } as CreateRaw })
    .webp({ loop: 0, delay: v.frames.map(() => delay), lossless: o.lossless ?? v.width * v.height <= 256 * 256, quality: o.quality ?? 85, effort: 2 })
    .toBuffer();
  return new Uint8Array(buf);
}

/** Runs the system ffmpeg with `input` on stdin; rejects with its last lines of stderr. */
function ffmpeg(args: string[], input: Buffer, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
    p.on('error', (e) => reject(new Error(`${what}: cannot run ffmpeg (${e.message}); install it (apt install ffmpeg)`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what}: ffmpeg exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`))));
    p.stdin.on('error', () => {}); // a failing ffmpeg closes its stdin early; 'close' reports why
    p.stdin.end(input);
  });
}

/**
 * Writes the clip as an H.264 MP4 (yuv420p; odd sizes padded by one pixel, which 4:2:0 chroma needs;
 * faststart so it plays while loading) at `path`, through a temporary file.
 */
export async function writeMp4(v: VideoFrames, path: string, o: { crf?: number } = {}): Promise<void> {
  check(v, path);
  const tmp = `${path}.tmp.mp4`;
  try {
    await ffmpeg([
      '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${v.width}x${v.height}`, '-r', String(v.fps), '-i', 'pipe:0',
      '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', String(o.crf ?? 18),
      '-pix_fmt', 'yuv420p', '-movflags', '+faststart', tmp,
    ], stacked(v), path);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}

/** The clip as an animated WebP file at `path` (temporary name, then renamed). */
export async function writeAnimatedWebp(v: VideoFrames, path: string): Promise<void> {
  const data = await encodeAnimatedWebp(v);
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}
