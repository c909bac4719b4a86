// Image-to-video previews from a given first frame. On a probe I2V family whose denoiser returns its
// first-frame condition (the red channel of the start clip's frame 0), the clip's first frame is exactly
// the start image — scaled to cover and centre-cropped — whether it comes from the startImage file, the
// firstFrame IMAGES input or Sampler Settings (what Train's sample strip renders with). An I2V model whose
// checkpoint does not say it was trained without a first frame is refused without one, a start image on
// a model that takes none is refused, an unreadable file is named. On the tiny Wan 2.2 I2V the start
// image changes the Sampler's clip and Train's sample strip, and no image is accepted (it was pretrained
// for that case too).
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import * as K from '../../kernels';
import { concat, slice } from '../../kernels/ops/shape-and-reduce';
import { add, mul } from '../../kernels/ops/elementwise';
import type { ModelFamily } from '../../kernels/families/contract';
import { samplerNode, samplerSettingsNode } from '../../nodes/sampler';
import loadModelNode from '../../nodes/load-model';
import { trainingSampler } from '../../nodes/training/samples';
import type { ClipValue, ImagesValue, ModelValue, SamplerSettings, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { SIZE, TC, videoProbeFamily, videoProbeValues } from './video-probe-family';
import { ATTENTION_LORA } from './training/tiny-model';
import { randomWeights } from './training-fixture';

/** The probe as an image-to-video family: its denoiser returns the condition, the start clip's frame-0 red channel in every latent frame. */
const i2vFamily = {
  ...videoProbeFamily,
  id: 'video-probe-i2v',
  conditioning: (_c: unknown, latent?: number[]) => [
    { name: 'context', shape: [2], source: 'text' },
    { name: 'firstFrame', shape: latent ?? [1, 1, SIZE, SIZE], source: 'latent' },
  ],
  latentConditioning: (_b: unknown, _c: unknown, pixels: K.Tensor) => {
    const [, , frames] = pixels.shape as number[];
    const red = slice(slice(pixels, [0], [1], [1]), [0], [1], [2]);
    return { firstFrame: concat(Array(1 + (frames! - 1) / TC).fill(red), 2) };
  },
  denoise: (_b: unknown, _c: unknown, x: { sample: K.Tensor; cond: Record<string, K.Tensor> }) => add(mul(x.sample, 0), x.cond.firstFrame!),
} as unknown as ModelFamily;

const probe = videoProbeValues();
const withFamily = <T extends object>(v: T, family: ModelFamily): T => ({ ...v, family });
const i2v = { model: withFamily(probe.model, i2vFamily), clip: withFamily(probe.clip, i2vFamily), vae: withFamily(probe.vae, i2vFamily) };

const { ctx } = nodeContext();
const widgets = (w: Record<string, unknown>) => samplerNode.widgets.parse({ steps: 1, sampler: 'euler', numFrames: 5, ...w });
const firstFrame = async (inputs: Record<string, unknown>, w: Record<string, unknown> = {}) => {
  const r = await samplerNode.execute({ inputs: { ...i2v, ...inputs } as never, widgets: widgets(w), ctx });
  return (r.outputs.images as ImagesValue).images[0]!.video!.frames[0]!;
};
/** The red channel of an RGB frame. */
const red = (rgb: Uint8Array) => Array.from({ length: rgb.length / 3 }, (_, i) => rgb[i * 3]!);

/** A 16×8 image whose red channel is a ramp over x and y (columns 4–11 are what a centre cover crop to 8×8 keeps). */
const wide = Buffer.alloc(16 * SIZE * 3);
for (let y = 0; y < SIZE; y++) for (let x = 0; x < 16; x++) wide.set([x * 15 + y * 3, 40, 200], (y * 16 + x) * 3);
const expectedRed = Array.from({ length: SIZE * SIZE }, (_, i) => wide[((Math.floor(i / SIZE)) * 16 + 4 + (i % SIZE)) * 3]!);

beforeAll(async () => {
  mkdirSync(ctx.paths.input, { recursive: true });
  writeFileSync(join(ctx.paths.input, 'wide.png'), await sharp(wide, { raw: { width: 16, height: SIZE, channels: 3 } }).png().toBuffer());
  writeFileSync(join(ctx.paths.input, 'broken.png'), 'not an image');
});

const close = (got: number[], want: number[]) => Math.max(...got.map((v, i) => Math.abs(v - want[i]!)));

describe('image-to-video previews from a start image', () => {
  it('the clip starts from the startImage file, scaled to cover and centre-cropped', async () => {
    expect(close(red(await firstFrame({}, { startImage: 'wide.png' })), expectedRed)).toBeLessThanOrEqual(1);
  });

  it('the firstFrame IMAGES input and Sampler Settings give the same first frame', async () => {
    const png = new Uint8Array(await sharp(wide, { raw: { width: 16, height: SIZE, channels: 3 } }).png().toBuffer());
    const images: ImagesValue = { images: [{ mime: 'image/png', data: png, label: 'start' }], byteSize: () => png.length };
    expect(close(red(await firstFrame({ firstFrame: images })), expectedRed)).toBeLessThanOrEqual(1);
    const settings = (await samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({ steps: 1, sampler: 'euler', numFrames: 5, startImage: 'wide.png' }), ctx })).outputs.settings as SamplerSettings;
    expect(settings.startImage).toBe(join(ctx.paths.input, 'wide.png'));
    expect(close(red(await firstFrame({ settings })), expectedRed)).toBeLessThanOrEqual(1);
  });

  it('refuses an I2V model without a start image, a start image on a model that takes none, and names an unreadable file', async () => {
    await expect(firstFrame({})).rejects.toThrow(/startImage: video probe is an image-to-video model and samples from a first frame/);
    // Train's sample strip refuses it when made, before any training step.
    const settings = (await samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({}), ctx })).outputs.settings as SamplerSettings;
    expect(() => trainingSampler(i2v.model, i2v.clip, i2v.vae, ATTENTION_LORA, settings)).toThrow(/startImage: video probe is an image-to-video model/);
    await expect(samplerNode.execute({ inputs: probe as never, widgets: widgets({ startImage: 'wide.png' }), ctx })).rejects.toThrow(/startImage: video probe is not an image-to-video model/);
    await expect(firstFrame({}, { startImage: 'broken.png' })).rejects.toThrow(/startImage .*broken\.png: not an image sharp can read/);
    await expect(firstFrame({}, { startImage: 'missing.png' })).rejects.toThrow(/startImage: cannot read .*missing\.png/);
  });

  it('a changed start image file changes the node\'s fingerprint', async () => {
    const fp = () => samplerNode.fingerprint!({ widgets: widgets({ startImage: 'wide.png' }), resolvePath: (kind, p) => ctx.resolvePath(kind, p) });
    const a = await fp();
    writeFileSync(join(ctx.paths.input, 'wide.png'), await sharp(wide, { raw: { width: 16, height: SIZE, channels: 3 } }).jpeg().toBuffer());
    expect(await fp()).not.toBe(a);
    expect(await samplerNode.fingerprint!({ widgets: widgets({}), resolvePath: (kind, p) => ctx.resolvePath(kind, p) })).toBe('');
  });
});

describe('the tiny Wan 2.2 I2V', () => {
  let wan: { model: ModelValue; clip: ClipValue; vae: VaeValue };
  beforeAll(async () => {
    wan = (await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: 'builtin:tiny-wan' }), ctx })).outputs as typeof wan;
    const frame = Buffer.alloc(64 * 64 * 3);
    for (let i = 0; i < 64 * 64; i++) frame.set((i % 64) > 20 && (i % 64) < 40 && i / 64 > 20 && i / 64 < 40 ? [245, 225, 50] : [135, 50, 170], i * 3);
    writeFileSync(join(ctx.paths.input, 'square.png'), await sharp(frame, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer());
  }, 120_000);
  const clipWith = async (startImage: string) => {
    const r = await samplerNode.execute({ inputs: wan as never, widgets: samplerNode.widgets.parse({ prompts: 'a red circle moving left on a blue background', seed: 3, steps: 3, cfg: 4, sampler: 'euler', numFrames: 5, startImage }), ctx });
    return Buffer.concat((r.outputs.images as ImagesValue).images[0]!.video!.frames);
  };

  it('the start image changes the clip; no start image is accepted; Train\'s sample strip honours Sampler Settings\' startImage', async () => {
    const from = await clipWith('square.png');
    expect(from.equals(await clipWith('none'))).toBe(false);
    // Train's sample strip renders Sampler Settings: its startImage reaches the clips there too.
    const strip = async (startImage: string) => {
      const settings = (await samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({ prompts: 'a red circle moving left on a blue background', seed: 3, steps: 3, cfg: 4, sampler: 'euler', numFrames: 5, startImage }), ctx })).outputs.settings as SamplerSettings;
      const sheet = await trainingSampler(wan.model, wan.clip, wan.vae, ATTENTION_LORA, settings)(0, randomWeights(ATTENTION_LORA, wan.model), {} as never, () => {});
      expect(sheet.video?.frames).toBe(5);
      return Buffer.from(sheet.png);
    };
    expect((await strip('square.png')).equals(await strip('none'))).toBe(false);
  }, 300_000);
});
