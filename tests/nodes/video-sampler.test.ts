// The Sampler on a video family: clips of numFrames (0 = the family's own) go through the real preview pipeline
// (a 5-D latent [2n, C, F', h, w] in and every decoded frame out), show as one animated WebP of the grid — frame i
// holds every clip's frame i, frames and fps recorded on the sheet — and Preview Image saves each clip as an
// H.264 MP4. The family is a probe (video-probe-family.ts): a bar moving one column per latent frame.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { samplerNode } from '../../nodes/sampler';
import previewImage from '../../nodes/preview-image';
import type { ImagesValue } from '../../nodes/sockets';
import { sampleSheetsOf } from '../../nodes/sampling/sheet';
import { nodeContext } from './context';
import { SIZE, TC, calls, videoProbeValues } from './video-probe-family';

const { model, clip, vae } = videoProbeValues();

const made = nodeContext();
const { ctx } = made;
const sample = (w: Record<string, unknown>) => samplerNode.execute({ inputs: { model, clip, vae }, widgets: samplerNode.widgets.parse({ steps: 2, sampler: 'euler', ...w }), ctx });

/** The column of the brightest pixels in a tile (x0, y0, side) of a raw RGB frame `width` wide. */
function barColumn(rgb: Buffer, width: number, x0: number, y0: number, side: number, zoom: number): number {
  let best = -1, col = -1;
  for (let c = 0; c < side / zoom; c++) {
    const v = rgb[((y0 + zoom / 2) * width + x0 + c * zoom + zoom / 2) * 3]!;
    if (v > best) { best = v; col = c; }
  }
  return col;
}

describe('video samples', () => {
  it('Sampler: an animated WebP grid of every clip\'s frames, frames and fps recorded', async () => {
    const r = await sample({ prompts: 'a bar --d 0\na bar --d 3', fps: 8 });
    expect(calls.at(-1)).toEqual([1, 3, SIZE, SIZE]); // 9 frames = 1 + 4·2 → 3 latent frames
    const items = (r.outputs.images as ImagesValue).images;
    expect(items).toHaveLength(2);
    expect(items.map((i) => [i.video?.frames.length, i.video?.fps])).toEqual([[9, 8], [9, 8]]);
    const [sheet] = sampleSheetsOf(r.ui);
    expect(sheet).toMatchObject({ frames: 9, fps: 8 });
    expect(sheet!.image.filename).toMatch(/\.webp$/);
    expect(r.ui!.text).toEqual([expect.stringMatching(/9 frames at 8 fps/), expect.stringMatching(/9 frames at 8 fps/)]);
    const file = join(ctx.paths.temp, sheet!.image.filename);
    const meta = await sharp(file, { animated: true }).metadata();
    expect(meta.pages).toBe(9);
    expect(meta.delay).toEqual(Array(9).fill(125));
    const pageHeight = meta.pageHeight!;
    const tiles = sheet!.tiles;
    const zoom = tiles[0]!.w / SIZE;
    // Frame f shows latent frame ⌈f/4⌉: the bar sits in column (⌈f/4⌉ + seed) mod 8 of each tile.
    for (const f of [0, 1, 4, 5, 8]) {
      const { data, info } = await sharp(file, { page: f }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      expect(info.height).toBe(pageHeight);
      const k = Math.ceil(f / TC);
      tiles.forEach((t, i) => expect(barColumn(data, info.width, t.x, t.y, t.w, zoom), `frame ${f} tile ${i}`).toBe((k + [0, 3][i]!) % SIZE));
    }
  });

  it('Preview Image saves each clip as an H.264 MP4 and shows it animated', async () => {
    const r = await sample({ prompts: 'a bar --d 1', numFrames: 13, fps: 12 });
    expect(calls.at(-1)).toEqual([1, 4, SIZE, SIZE]);
    const shown = await previewImage.execute({ inputs: { images: r.outputs.images as ImagesValue }, widgets: previewImage.widgets.parse({ save: true, filenamePrefix: 'clips/bar' }), ctx });
    const mp4 = join(ctx.paths.output, 'clips', 'bar_00001.mp4');
    expect(existsSync(mp4)).toBe(true);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries',
      'stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames', '-of', 'json', mp4]).toString()).streams[0];
    expect(probe).toMatchObject({ codec_name: 'h264', pix_fmt: 'yuv420p', width: SIZE, height: SIZE, r_frame_rate: '12/1', nb_read_frames: '13' });
    const ref = (shown.ui!.images as { filename: string }[])[0]!;
    expect(ref.filename).toMatch(/\.webp$/);
    expect((await sharp(join(ctx.paths.temp, ref.filename), { animated: true }).metadata()).pages).toBe(13);
    expect(shown.ui!.text).toContain('bar_00001.mp4 · 13 frames at 12 fps');
  });

  it('a clip length the model cannot make is refused by name', async () => {
    await expect(sample({ prompts: 'a bar', numFrames: 6 })).rejects.toThrow(/frames: video probe clips have 1 \+ 4·n frames \(5 or 9\), not 6/);
  });
});
