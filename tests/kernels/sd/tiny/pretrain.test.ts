// Pretraining the tiny model is reproducible from its seed: the same options give bit-identical
// weights, at a miniature size so the whole file runs in seconds.
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../../../kernels/runtime';
import { tinyConfig, type SdConfig } from '../../../../kernels/sd/config';
import { ClipTokenizer } from '../../../../kernels/sd/tokenizer';
import { PRETRAIN_DEFAULTS, TINY_TOKENIZER, cacheLatents, componentWeights, pretrainDiffusion, pretrainVae, type PretrainOptions } from '../../../../kernels/sd/tiny/pretrain';
import { readTinyCheckpoint, writeTinyCheckpoint } from '../../../../kernels/sd/tiny/train-checkpoint';
import { initialValue } from '../../../../kernels/sd/tiny/train-params';
import { ATTRIBUTE_COUNT, captionAttributes } from '../../../../kernels/sd/tiny/train-diffusion';

const tokenizer = ClipTokenizer.fromFolder(TINY_TOKENIZER);
// The tiny config's layout at a fraction of its width, on 32-pixel images.
const base = tinyConfig(tokenizer.vocabSize);
const micro: SdConfig = {
  ...base,
  sampleSize: 32,
  unet: { ...base.unet, blockOutChannels: [8, 16], downBlockCrossAttention: [true, false], crossAttentionDim: 16, normGroups: 4 },
  text: { ...base.text, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2 },
  vae: { ...base.vae, blockOutChannels: [8, 16], normGroups: 4 },
};
const options: PretrainOptions = { ...PRETRAIN_DEFAULTS, vaeSteps: 2, vaeBatch: 2, vaeCrop: 16, cacheSize: 8, unetSteps: 2, unetBatch: 2, unetWarmup: 1, unetExtendTo: [], saveEvery: 1000, threads: 1 };

async function pretrainTwoSteps() {
  const scratch = mkdtempSync(join(tmpdir(), 'tiny-pretrain-'));
  const rt = new Runtime({ threads: 1 });
  try {
    const vae = await pretrainVae(rt, micro, options, scratch, () => {});
    const cache = await cacheLatents(rt, micro, vae, options, () => {});
    const diffusion = await pretrainDiffusion(rt, micro, tokenizer, cache, options, scratch, () => {});
    return { vae, cache, diffusion, scratch };
  } finally {
    await rt.close();
  }
}

describe('tiny model pretraining', () => {
  let a: Awaited<ReturnType<typeof pretrainTwoSteps>>;
  let b: Awaited<ReturnType<typeof pretrainTwoSteps>>;
  beforeAll(async () => {
    a = await pretrainTwoSteps();
    b = await pretrainTwoSteps();
  }, 120_000);
  afterAll(() => {
    for (const run of [a, b]) if (run) rmSync(run.scratch, { recursive: true, force: true });
  });

  it('two runs from the same seed give bit-identical VAE, latents, UNet and text encoder', () => {
    for (const [name, t] of Object.entries(a.vae)) expect(b.vae[name].data, name).toEqual(t.data);
    expect(b.cache.latents).toEqual(a.cache.latents);
    expect(b.cache.captions).toEqual(a.cache.captions);
    expect(Object.keys(a.diffusion).some((k) => k.startsWith('unet/'))).toBe(true);
    expect(Object.keys(a.diffusion).some((k) => k.startsWith('text_encoder/'))).toBe(true);
    for (const [name, t] of Object.entries(a.diffusion)) expect(b.diffusion[name].data, name).toEqual(t.data);
    // Training moved the weights away from their seeded initial values.
    const name = 'unet/conv_in.weight';
    expect(a.diffusion[name].data).not.toEqual(initialValue(name, a.diffusion[name].shape, options.seed).data);
  });

  it('the finished weights round-trip through the single-file checkpoint', async () => {
    const path = join(a.scratch, 'micro.safetensors');
    const weights = componentWeights(micro, a.diffusion, a.vae, a.cache);
    await writeTinyCheckpoint(path, micro, weights, {}, 'F32');
    const back = await readTinyCheckpoint(path, micro);
    for (const c of ['unet', 'text_encoder', 'vae'] as const) {
      expect(Object.keys(back.weights[c]).sort()).toEqual(Object.keys(weights[c]).sort());
      for (const [name, t] of Object.entries(weights[c])) {
        expect(back.weights[c][name].shape, `${c} ${name}`).toEqual(t.shape);
        expect(back.weights[c][name].data, `${c} ${name}`).toEqual(t.data);
      }
    }
  });

  it('names the shape, colour and background of a world caption for the auxiliary text head', () => {
    const t = captionAttributes('an orange triangle on a blue background')!;
    expect(t).toHaveLength(ATTRIBUTE_COUNT);
    // shape (circle, square, triangle) | colour (palette order) | background (palette order)
    expect(Array.from(t).map((v, i) => (v ? i : -1)).filter((i) => i >= 0)).toEqual([2, 3 + 1, 11 + 4]);
    expect(captionAttributes('')).toBeUndefined();
    expect(() => captionAttributes('a red star on a blue background')).toThrow(/not a caption of the shape world/);
  });
});
