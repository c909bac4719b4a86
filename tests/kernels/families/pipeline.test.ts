// The family preview pipeline on a tiny SDXL (two text encoders, pooled vector, size conditioning) with
// LoRA on the UNet and both text encoders: one strength input drives every adapter, strength 0 renders
// exactly the base model, and the adapter changes the image.
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { RandomWeights, Runtime, type HostTensor } from '../../../kernels';
import { AdapterSet } from '../../../kernels/adapters';
import { familyAdapters, adapterSetList } from '../../../kernels/families/adapters';
import { FamilyPipeline } from '../../../kernels/families/pipeline';
import { sdxlFamily, tinySdxlConfig } from '../../../kernels/sdxl';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { Rng } from '../../../kernels/random';
import { repoRoot } from '../../../server/paths';

const rt = new Runtime({ threads: 1 });
afterAll(() => rt.close());

describe('FamilyPipeline', () => {
  it('SDXL with LoRA on the UNet and both text encoders: strength 0 is the base model, strength 1 differs', async () => {
    const cfg = tinySdxlConfig();
    const tok = ClipTokenizer.fromFolder(join(repoRoot, 'assets/tiny/tokenizer'));
    const parts = {
      family: sdxlFamily, config: cfg, denoiser: new RandomWeights(1, 0.05), vae: new RandomWeights(4, 0.05),
      textEncoders: [{ weights: new RandomWeights(2, 0.05), tokenizer: tok }, { weights: new RandomWeights(3, 0.05), tokenizer: tok }],
    };
    const sets = familyAdapters(sdxlFamily, cfg, { algo: 'lora', rank: 2, alpha: 2, targets: { preset: 'attention' }, trainTextEncoder: true });
    expect(sets.text.map((s) => s.modules[0].name.split('_text_model')[0])).toEqual(['lora_te1', 'lora_te2']);
    const feeds: Record<string, HostTensor> = {};
    const rng = new Rng(5);
    for (const set of adapterSetList(sets)) for (const p of set.paramSpecs) feeds[p.key] = { dtype: 'float32', shape: [...p.shape], data: rng.fork(p.key).fillNormal(new Float32Array(p.shape.reduce((a, b) => a * b, 1))).map((v) => v * 0.5) };
    const adapted = await FamilyPipeline.create(rt, parts, {
      width: 64, height: 48,
      adapters: { denoiser: sets.denoiser.hook({ training: false }), text: sets.text.map((s) => s.hook({ training: false })) },
    });
    const base = await FamilyPipeline.create(rt, parts, { width: 64, height: 48 });
    const g = { prompt: 'a red square', seed: 3, steps: 2, cfgScale: 3, sampler: 'euler' };
    const off = await adapted.generate({ ...g, feeds: { ...feeds, ...AdapterSet.multiplierFeed(0) } });
    const on = await adapted.generate({ ...g, feeds: { ...feeds, ...AdapterSet.multiplierFeed(1) } });
    const plain = await base.generate(g);
    expect(off.images[0].length).toBe(64 * 48 * 3);
    expect(off.latents).toEqual(plain.latents);
    expect(on.latents).not.toEqual(plain.latents);
    // The text encoders' adapters matter on their own: with the UNet's zeroed, strength 1 still differs.
    const textOnly = { ...feeds };
    for (const p of sets.denoiser.paramSpecs) textOnly[p.key] = { ...feeds[p.key], data: new Float32Array(feeds[p.key].data.length) };
    const te = await adapted.generate({ ...g, feeds: { ...textOnly, ...AdapterSet.multiplierFeed(1) } });
    expect(te.latents).not.toEqual(plain.latents);
  }, 300_000);
});
