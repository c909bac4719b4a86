// The video quickstart's demo dataset (assets/demo-video): 16 clips of world shapes bouncing — a motion
// the tiny Wan never saw — as 9-frame 64×64 MP4s (lossless RGB H.264, 16 fps) captioned
// "a red circle [trigger] on a blue background", the Dataset node's trigger word being "bouncing"; and
// the first frame its previews start from (assets/demo-input/bounce-start.png: a red circle on blue).
//   npx tsx kernels/wan/tiny/build-assets.ts [--out DIR] [--start-image FILE]
import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../../random';
import { WORLD_SHAPES } from '../../sd/tiny/world';
import { clipCaption, renderClip, sampleClip, type Clip } from './world';
import { TINY_WAN_SIZE } from './model';

export const DEMO_VIDEO_ROOT = resolve(import.meta.dirname ?? '.', '../../../assets/demo-video');
export const DEMO_VIDEO_SEED = 20251203;
export const DEMO_VIDEO_COUNT = 16;
export const DEMO_VIDEO_FRAMES = 9;
export const DEMO_VIDEO_FPS = 16;
/** The first frame the video quickstart's previews start from: an I2V LoRA is sampled from an image. */
export const DEMO_START_IMAGE = resolve(import.meta.dirname ?? '.', '../../../assets/demo-input/bounce-start.png');
/** The Dataset's trigger word: it fills `[trigger]` where the motion goes in the caption. */
export const DEMO_VIDEO_TRIGGER = 'bouncing';

/** Frames (RGB bytes) → a lossless RGB H.264 MP4 at `path` (through a temporary file), by the system ffmpeg. */
export async function writeLosslessMp4(frames: readonly Uint8Array[], size: number, fps: number, path: string): Promise<void> {
  const tmp = `${path}.tmp.mp4`;
  const raw = Buffer.concat(frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
  await new Promise<void>((ok, fail) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${size}x${size}`, '-r', String(fps), '-i', 'pipe:0', '-c:v', 'libx264rgb', '-qp', '0', '-preset', 'veryslow', tmp], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-1000); });
    p.on('error', (e) => fail(new Error(`${path}: cannot run ffmpeg (${e.message})`)));
    p.on('close', (code) => (code === 0 ? ok() : fail(new Error(`${path}: ffmpeg exited with ${code}: ${err.trim()}`))));
    p.stdin.on('error', () => {});
    p.stdin.end(raw);
  }).catch((e) => { rmSync(tmp, { force: true }); throw e; });
  renameSync(tmp, path);
}

/** The demo clips by file stem (`bounce-01` …): circle, square, triangle in turn, any colours. */
export function demoVideoClips(seed = DEMO_VIDEO_SEED): [string, Clip][] {
  const rng = new Rng(seed);
  return Array.from({ length: DEMO_VIDEO_COUNT }, (_, i) => [
    `bounce-${String(i + 1).padStart(2, '0')}`,
    sampleClip(rng, { motion: 'bouncing', shapes: [WORLD_SHAPES[i % WORLD_SHAPES.length]], frames: [DEMO_VIDEO_FRAMES] }),
  ]);
}

/** Writes the 16 bouncing clips and their captions into `folder`. */
export async function writeDemoVideoDataset(folder: string, seed = DEMO_VIDEO_SEED): Promise<void> {
  mkdirSync(folder, { recursive: true });
  for (const [name, clip] of demoVideoClips(seed)) {
    await writeLosslessMp4(renderClip(clip, TINY_WAN_SIZE), TINY_WAN_SIZE, DEMO_VIDEO_FPS, join(folder, `${name}.mp4`));
    writeFileSync(join(folder, `${name}.txt.tmp`), `${clipCaption(clip, { motionWord: '[trigger]' })}\n`);
    renameSync(join(folder, `${name}.txt.tmp`), join(folder, `${name}.txt`));
  }
}

/** The quickstart's start image: the first frame of a red circle about to bounce, on blue (PNG, through a temporary file). */
export async function writeDemoStartImage(path: string, seed = DEMO_VIDEO_SEED): Promise<void> {
  const clip = sampleClip(new Rng(seed).fork('start-image'), { motion: 'bouncing', shapes: ['circle'], colors: ['red'], backgrounds: ['blue'], frames: [DEMO_VIDEO_FRAMES] });
  mkdirSync(dirname(path), { recursive: true });
  await sharp(renderClip(clip, TINY_WAN_SIZE)[0], { raw: { width: TINY_WAN_SIZE, height: TINY_WAN_SIZE, channels: 3 } }).png().toFile(`${path}.tmp.png`);
  renameSync(`${path}.tmp.png`, path);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const arg = (flag: string) => { const at = process.argv.indexOf(flag); return at > 0 ? resolve(process.argv[at + 1]) : undefined; };
  const out = arg('--out') ?? DEMO_VIDEO_ROOT, start = arg('--start-image') ?? DEMO_START_IMAGE;
  await writeDemoVideoDataset(out);
  await writeDemoStartImage(start);
  console.log(`wrote ${DEMO_VIDEO_COUNT} bouncing clips to ${out} and their previews' first frame to ${start}`);
}
