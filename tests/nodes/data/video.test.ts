// Video clips: probing, evenly spaced frames (proved by reading each frame's counter colour back),
// 4n+1 validation, bucket crop per frame, and clear errors for unreadable clips.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames, evenlySpacedFrames, framesAtRate, framesToBucket, probeVideo, validateNumFrames, windowSpan } from '../../../nodes/data/video';
import { tempFolder, writeCounterClip } from './fixtures/folders';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(() => cleanup());

/** The frame number a counter-clip frame shows: its mean grey level / 8. */
const frameNumber = (rgb: Buffer) => {
  let sum = 0;
  for (let i = 0; i < rgb.length; i += 3) sum += rgb[i + 1];
  return Math.round(sum / (rgb.length / 3) / 8);
};

describe('frame selection', () => {
  it('spreads frames evenly from first to last', () => {
    expect(evenlySpacedFrames(30, 5)).toEqual([0, 7, 15, 22, 29]);
    expect(evenlySpacedFrames(9, 9)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(evenlySpacedFrames(30, 1)).toEqual([14]);
  });

  it('resamples a window to a frame rate (nearest source frame), or spreads over the clip at fps 0', () => {
    const clip = { fps: 30, frameCount: 100 };
    expect(framesAtRate('c.mp4', clip, 5, 16)).toEqual([0, 2, 4, 6, 8]); // 30/16 = 1.875 apart, rounded
    expect(framesAtRate('c.mp4', clip, 5, 16, 10)).toEqual([10, 12, 14, 16, 18]);
    expect(windowSpan(clip, 17, 16)).toBe(30);
    expect(framesAtRate('c.mp4', clip, 5, 0)).toEqual(evenlySpacedFrames(100, 5));
    expect(() => framesAtRate('c.mp4', { fps: 16, frameCount: 20 }, 33, 16)).toThrow(/^c\.mp4: clip lasts 1\.19 s; 33 frames at 16 fps need 2\.00 s/);
    expect(() => framesAtRate('c.mp4', clip, 5, 16, 92)).toThrow(/window start 92/);
  });

  it('requires 4n+1 frames for video models only', () => {
    expect(() => validateNumFrames(17, true)).not.toThrow();
    expect(() => validateNumFrames(16, true)).toThrow(/4n\+1.*try 13 or 17/);
    expect(() => validateNumFrames(16, false)).not.toThrow();
    expect(() => validateNumFrames(0, false)).toThrow(/numFrames/);
  });
});

describe.each(['mp4', 'mkv', 'webm'])('%s clips', (ext) => {
  it('probes size, fps and frame count and decodes evenly spaced frames', async () => {
    const file = await writeCounterClip(path.join(dir, `counter.${ext}`), 30, 10);
    const info = await probeVideo(file);
    expect(info).toMatchObject({ width: 64, height: 48, fps: 10, frameCount: 30 });
    expect(info.durationSeconds).toBeCloseTo(3, 1);
    const indices = evenlySpacedFrames(info.frameCount, 5);
    const frames = await decodeFrames(file, info, indices);
    expect(frames.map(frameNumber)).toEqual(indices);
    const cropped = await framesToBucket(frames, info, { width: 32, height: 32 }, { flipX: true, flipY: false });
    expect(cropped.map((f) => f.length)).toEqual(Array(5).fill(32 * 32 * 3));
    expect(cropped.map(frameNumber)).toEqual(indices);
  });
});

describe('unreadable clips', () => {
  it('names a clip that is not a video', async () => {
    const file = path.join(dir, 'broken.mp4');
    await writeFile(file, 'this is not a video');
    await expect(probeVideo(file)).rejects.toThrow(`${file}: cannot read video`);
  });

  it('names a zero-byte clip', async () => {
    const file = path.join(dir, 'empty.mov');
    await writeFile(file, '');
    await expect(probeVideo(file)).rejects.toThrow(`${file}: cannot read video: file is empty`);
  });
});
