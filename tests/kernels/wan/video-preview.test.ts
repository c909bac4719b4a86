// Wan previews end to end on the tiny Wan (random weights): the preview pipeline samples a 9-frame clip as a 5-D
// latent with sampleWan (UniPC or Euler) and decodes every frame through the causal VAE; seeded, so the same
// request gives the same frames, and the two samplers give different ones.
import { afterAll, describe, expect, it } from 'vitest';
import * as K from '../../../kernels';
import { FamilyPipeline } from '../../../kernels/families/pipeline';
import type { ModelFamily } from '../../../kernels/families/contract';
import { tinyWanConfig, wanFamily, type WanFamilyConfig } from '../../../kernels/wan/family';
import { WAN_SAMPLERS, sampleWan } from '../../../kernels/wan/sampling';
import { vaeSpatialFactor } from '../../../kernels/wan/vae';

const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());

// wanFamily with the samplers and clip length of kernels/wan/sampling (what the family offers once it wires them).
const family: ModelFamily<WanFamilyConfig> = {
  ...wanFamily,
  samplers: WAN_SAMPLERS,
  sampleFrames: (c) => c.sampleFrames,
  sample: (call, c, run) => sampleWan(call, c.transformer, run, { boundary: c.experts?.boundary }),
};
const tokenizer = { tokenize: (_p: string, o: { maxLength: number }) => ({ ids: Array.from({ length: o.maxLength }, (_, i) => (i < 3 ? 5 + i : 0)) }) } as never;

describe('Wan video previews (tiny)', () => {
  it('a 9-frame clip per prompt through the pipeline with UniPC and Euler, seeded', async () => {
    const config = tinyWanConfig();
    const frames = family.sampleFrames!(config);
    expect(frames).toBe(9);
    const pipe = await FamilyPipeline.create(rt, {
      family, config, denoiser: new K.RandomWeights(7, 0.05), textEncoders: [{ weights: new K.RandomWeights(8, 0.05), tokenizer }], vae: new K.RandomWeights(9, 0.05),
    }, { width: 32, height: 32, frames });
    const run = (sampler: string, seed = 3) => pipe.generate({ prompt: 'a red circle moving left', seed, steps: 4, cfgScale: 3, sampler });
    const a = await run('unipc');
    expect(a.frames).toHaveLength(1);
    expect(a.frames![0]).toHaveLength(9);
    for (const f of a.frames![0]!) expect(f.length).toBe(32 * 32 * 3);
    expect(a.latents.length).toBe(config.vae.zDim * 3 * (32 / vaeSpatialFactor(config.vae)) ** 2); // 1 + 8/4 latent frames
    // Frames differ from each other (the decoder saw a clip, not one image repeated).
    expect(Buffer.compare(Buffer.from(a.frames![0]![0]!), Buffer.from(a.frames![0]![8]!))).not.toBe(0);
    const again = await run('unipc');
    expect(Buffer.compare(Buffer.from(again.latents.buffer), Buffer.from(a.latents.buffer))).toBe(0);
    const euler = await run('euler');
    expect(euler.latents.some((v, i) => Math.abs(v - a.latents[i]!) > 1e-4)).toBe(true);
    expect(a.latents.every(Number.isFinite)).toBe(true);
  });
});
