// The committed tiny model: one SD 1.x single-file checkpoint under 20 MB that the family's loader
// reads with its own config, and that draws an easy prompt right, the same way every time.
import { describe, it, expect } from 'vitest';
import { statSync } from 'node:fs';
import { Runtime } from '../../../../kernels/runtime';
import { loadSd } from '../../../../kernels/sd/load';
import { SdPipeline } from '../../../../kernels/sd/pipeline';
import { ClipTokenizer } from '../../../../kernels/sd/tokenizer';
import { SingleFileKeyMap } from '../../../../kernels/sd/keys/single-file';
import { openSafetensors } from '../../../../kernels/io/safetensors';
import { analyzeImage } from '../../../../kernels/sd/tiny/analyze';
import { TINY_CHECKPOINT, TINY_TOKENIZER } from '../../../../kernels/sd/tiny/pretrain';
import { evalPrompts } from '../../../../kernels/sd/tiny/eval';

const tokenizer = ClipTokenizer.fromFolder(TINY_TOKENIZER);

describe('the embedded tiny model', () => {
  it('is one fp16 single-file checkpoint under 20 MB with exactly the tiny config’s tensors', async () => {
    expect(statSync(TINY_CHECKPOINT).size).toBeLessThan(20 * 1024 * 1024);
    const model = await loadSd(TINY_CHECKPOINT, { tokenizer });
    try {
      expect(model.config.name).toBe('sd-tiny');
      expect(model.config.text.vocabSize).toBe(tokenizer.vocabSize);
      expect(model.dtypes).toEqual(['F16']);
    } finally {
      model.close();
    }
    const reader = await openSafetensors(TINY_CHECKPOINT);
    try {
      const keys = reader.names().sort();
      const map = new SingleFileKeyMap((await loadSd(TINY_CHECKPOINT, { tokenizer })).config);
      expect(keys).toEqual(map.singleFileKeys().sort());
      expect(keys.some((k) => k.startsWith('model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k'))).toBe(true);
      expect(keys).toContain('cond_stage_model.transformer.text_model.embeddings.token_embedding.weight');
      expect(keys).toContain('first_stage_model.decoder.mid.attn_1.q.weight');
    } finally {
      await reader.close();
    }
  });

  it('samples an easy prompt deterministically and draws the asked shape and colour', async () => {
    const model = await loadSd(TINY_CHECKPOINT, { tokenizer });
    const rt = new Runtime({ threads: 2 });
    try {
      const pipe = await SdPipeline.create(rt, { config: model.config, unet: model.unet, textEncoder: model.textEncoder, vae: model.vae, tokenizer }, { width: 64, height: 64, batch: 1 });
      const prompt = 'a white triangle on a purple background';
      // The eval's settings for this prompt (its seed is 1000 + its index in the list), first sample.
      const settings = { prompt, seed: 1000 + evalPrompts().findIndex((p) => p.prompt === prompt), steps: 25, cfgScale: 6, sampler: 'ddim' as const };
      const first = await pipe.generate(settings);
      const second = await pipe.generate(settings);
      expect(second.images[0]).toEqual(first.images[0]);
      const seen = analyzeImage(first.images[0], 64);
      expect(seen.shape).toBe('triangle');
      expect(seen.color).toBe('white');
    } finally {
      await rt.close();
      model.close();
    }
  }, 60_000);

  it('evaluates a fixed list covering every world shape in every colour', () => {
    const prompts = evalPrompts();
    expect(prompts).toHaveLength(24);
    expect(new Set(prompts.map((p) => `${p.shape}/${p.color}`)).size).toBe(24);
    expect(prompts.every((p) => p.background !== p.color && p.prompt.includes(`${p.color} ${p.shape}`))).toBe(true);
  });
});
