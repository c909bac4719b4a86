// Video previews as real files: the animated WebP decodes back with sharp to the same pages, size, delays
// and (lossless) pixels; the MP4 is H.264 yuv420p at the clip's size, frame count and rate per ffprobe.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeAnimatedWebp, writeAnimatedWebp, writeMp4, type VideoFrames } from '../../../nodes/render/video';
import { Rng } from '../../../kernels/random';

const dir = mkdtempSync(join(tmpdir(), 'loragraph-video-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A red square moving right over blue, one step per frame (frames differ, so a codec cannot fold them). */
function movingSquare(width: number, height: number, count: number, fps: number): VideoFrames {
  const frames = Array.from({ length: count }, (_, f) => {
    const rgb = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const inside = x >= 2 + 3 * f && x < 10 + 3 * f && y >= 4 && y < 12;
      rgb.set(inside ? [230, 20, 20] : [20, 40, 200], (y * width + x) * 3);
    }
    return rgb;
  });
  return { width, height, fps, frames };
}

describe('video previews', () => {
  it('animated WebP: pages, page size, delay per frame, and every frame back', async () => {
    const clip = movingSquare(40, 24, 9, 16);
    const webp = await encodeAnimatedWebp(clip);
    const meta = await sharp(webp, { animated: true }).metadata();
    expect(meta.format).toBe('webp');
    expect(meta.pages).toBe(9);
    expect(meta.width).toBe(40);
    expect(meta.pageHeight).toBe(24);
    expect(meta.loop).toBe(0);
    expect(meta.delay).toEqual(Array(9).fill(63)); // 1000 / 16 fps, whole ms
    for (const f of [0, 4, 8]) {
      const { data, info } = await sharp(webp, { page: f }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([40, 24]);
      expect(Buffer.compare(data, Buffer.from(clip.frames[f]!))).toBe(0);
    }
    const path = join(dir, 'clip.webp');
    await writeAnimatedWebp(clip, path);
    expect((await sharp(path, { animated: true }).metadata()).pages).toBe(9);
  });

  it('animated WebP: a still stretch is one page whose delay spans its frames', async () => {
    const still = (v: number) => new Uint8Array(4 * 4 * 3).fill(v);
    const webp = await encodeAnimatedWebp({ width: 4, height: 4, fps: 8, frames: [still(0), still(100), still(100), still(100), still(200)] });
    const meta = await sharp(webp, { animated: true }).metadata();
    expect(meta.pages).toBe(3);
    expect(meta.delay).toEqual([125, 375, 125]);
  });

  it('animated WebP: frames over 256×256 are lossy — close to the clip, far smaller than lossless', async () => {
    // Natural-looking frames (gradients and grain), where lossy coding pays; flat test squares compress better lossless.
    const rng = new Rng(5);
    const grain = (f: number) => Uint8Array.from({ length: 320 * 240 * 3 }, (_, i) => Math.min(255, Math.max(0, ((i / 3) % 320) * 0.6 + f * 20 + rng.normal() * 12)));
    const big = { width: 320, height: 240, fps: 16, frames: [0, 1, 2].map(grain) };
    const lossy = await encodeAnimatedWebp(big);
    const lossless = await encodeAnimatedWebp(big, { lossless: true });
    expect((await sharp(lossy, { animated: true }).metadata()).pages).toBe(3);
    const { data } = await sharp(lossy, { page: 2 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    // Mean absolute error per channel: close to the clip, not exact.
    const err = data.reduce((m, v, i) => m + Math.abs(v - big.frames[2]![i]!), 0) / data.length;
    expect(err).toBeGreaterThan(0);
    expect(err).toBeLessThan(12);
    expect(lossy.length).toBeLessThan(lossless.length);
  });

  it('MP4: H.264 yuv420p, size, frames and rate per ffprobe; odd sizes padded to even', async () => {
    const clip = movingSquare(41, 23, 17, 16);
    const path = join(dir, 'clip.mp4');
    await writeMp4(clip, path);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries',
      'stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames', '-of', 'json', path]).toString()).streams[0];
    expect(probe).toMatchObject({ codec_name: 'h264', pix_fmt: 'yuv420p', width: 42, height: 24, r_frame_rate: '16/1', nb_read_frames: '17' });
    // The middle frame decodes to the square where it was drawn (lossy: compare colours loosely).
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', path, '-vf', 'select=eq(n\\,8)', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
    const at = (x: number, y: number) => [...raw.subarray((y * 42 + x) * 3, (y * 42 + x) * 3 + 3)];
    const [r, , b] = at(2 + 24 + 4, 8);
    expect(r).toBeGreaterThan(180);
    expect(b).toBeLessThan(80);
    expect(at(2, 8)[2]).toBeGreaterThan(150);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('bad clips are refused by name', async () => {
    const clip = movingSquare(8, 8, 2, 8);
    await expect(encodeAnimatedWebp({ ...clip, frames: [] })).rejects.toThrow(/at least one frame/);
    await expect(writeMp4({ ...clip, fps: 0 }, join(dir, 'x.mp4'))).rejects.toThrow(/x\.mp4: fps must be > 0/);
    await expect(encodeAnimatedWebp({ ...clip, frames: [clip.frames[0]!, new Uint8Array(5)] })).rejects.toThrow(/frame 1 has 5 bytes/);
    writeFileSync(join(dir, 'not-a-dir'), '');
    await expect(writeMp4(clip, join(dir, 'not-a-dir', 'y.mp4'))).rejects.toThrow(/y\.mp4: ffmpeg exited/);
  });
});
