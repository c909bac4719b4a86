// The video quickstart's demo clips: what the Dataset node decodes from the committed MP4s is exactly the
// clip the builder renders (lossless RGB), the analyzer sees every one bounce, and each caption is the
// clip's own with [trigger] where the motion goes.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrames, evenlySpacedFrames, probeVideo } from '../../../../nodes/data/video';
import { analyzeClip } from '../../../../kernels/wan/tiny/analyze';
import { DEMO_VIDEO_FRAMES, DEMO_VIDEO_ROOT, demoVideoClips } from '../../../../kernels/wan/tiny/build-assets';
import { clipCaption, renderClip } from '../../../../kernels/wan/tiny/world';

describe('assets/demo-video', () => {
  it('holds the builder\'s 16 bouncing 9-frame clips, decoded frame-exact, captioned with [trigger] for the motion', async () => {
    const clips = demoVideoClips();
    expect(readdirSync(DEMO_VIDEO_ROOT).sort()).toEqual(clips.flatMap(([n]) => [`${n}.mp4`, `${n}.txt`]).sort());
    let bounced = 0;
    for (const [name, clip] of clips) expect(readFileSync(join(DEMO_VIDEO_ROOT, `${name}.txt`), 'utf8')).toBe(`${clipCaption(clip, { motionWord: '[trigger]' })}\n`);
    // One clip of each shape decoded (ffmpeg runs are the slow part).
    const decoded = clips.filter((_, i) => i % 5 === 0);
    for (const [name, clip] of decoded) {
      const file = join(DEMO_VIDEO_ROOT, `${name}.mp4`);
      const info = await probeVideo(file);
      expect([info.width, info.height, info.frameCount]).toEqual([64, 64, DEMO_VIDEO_FRAMES]);
      const frames = (await decodeFrames(file, info, evenlySpacedFrames(info.frameCount, DEMO_VIDEO_FRAMES))).map((b) => new Uint8Array(b));
      expect(frames).toEqual(renderClip(clip, 64));
      if (analyzeClip(frames, 64).bounced) bounced++;
    }
    expect(bounced).toBe(decoded.length);
  }, 120_000);
});
