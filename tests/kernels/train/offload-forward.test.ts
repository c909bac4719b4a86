// Layer offloading for sampling: the tiny SD 1.x UNet and the tiny FLUX.2 [klein] transformer, read from
// their safetensors files in assets/ (weights streamed per block from the file), sample the same latents
// as the resident pipeline for the same seed (max abs difference ≤ 1e-4), blocks of one shape share a
// session, and the pre-flight estimates less than the resident pipeline's. Through renderSamples, a
// MODEL whose offload is `blocks` (Load Model's widget) draws the same pixels as the resident one.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { FamilyPipeline, type PipelineParts } from '../../../kernels/families/pipeline';
import { OffloadedForward } from '../../../kernels/train/offload-forward';
import { estimateGraphMemory, type MemoryEstimate } from '../../../kernels/train/memory';
import { recomputedBlocks } from '../../../kernels/autodiff';
import { loadModel } from '../../../nodes/models/load';
import { BUILTIN_MODELS, BUILTIN_TINY, BUILTIN_TINY_FLUX } from '../../../nodes/models/builtin';
import { PrecisionWeights } from '../../../kernels/nn/precision';
import { renderSamples } from '../../../nodes/sampling/render';
import { samplerSettings } from '../../../nodes/sampler';

const rt = new K.Runtime({ threads: 1 });
afterAll(() => rt.close());

/** The model read as a user's file (not built in): its weights stay in the file, ORT external data. */
async function fromFile(builtin: string) {
  return loadModel(BUILTIN_MODELS[builtin].checkpoint);
}

function maxAbsDiff(a: Float32Array, b: Float32Array) {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

async function pipelines(builtin: string, size: number) {
  const { model, clip, vae } = await fromFile(builtin);
  const parts: PipelineParts = { family: model.family, config: model.config, denoiser: model.denoiser, textEncoders: clip.encoders, vae: vae.weights };
  const estimates: MemoryEstimate[] = [];
  const opts = { width: size, height: size, preflight: (e: MemoryEstimate) => { estimates.push(e); } };
  const resident = await FamilyPipeline.create(rt, parts, opts);
  const offloaded = await FamilyPipeline.create(rt, { ...parts, offload: 'blocks' }, opts);
  return { resident, offloaded, estimates, model };
}

describe('layer offloading for sampling', () => {
  for (const [builtin, size, label] of [[BUILTIN_TINY, 64, 'SD 1.x UNet'], [BUILTIN_TINY_FLUX, 64, 'FLUX.2 [klein] transformer']] as const) {
    it(`the tiny ${label} streamed block by block from its file samples the resident latents, with a smaller estimate`, async () => {
      const { resident, offloaded, estimates, model } = await pipelines(builtin, size);
      const g = { prompt: 'a red circle on a blue background', negativePrompt: 'blurry', seed: 11, steps: 3, cfgScale: 4, sampler: 'euler' };
      const want = await resident.generate(g);
      const got = await offloaded.generate(g);
      // Same graph, the same ops in other sessions: only float round-off apart.
      const diff = maxAbsDiff(want.latents, got.latents);
      expect(diff, `${model.family.label}: max |Δ latent|`).toBeLessThanOrEqual(1e-4);
      // The latents are not trivially equal (zeros, or the noise untouched): the denoiser ran.
      expect(Math.max(...want.latents.map(Math.abs))).toBeGreaterThan(0.05);
      // Pre-flight: the resident pipeline holds the whole denoiser's weights; the offloaded one a segment's.
      const [res, off] = estimates;
      expect(off.weights).toBeLessThan(res.weights);
      expect(off.total).toBeLessThan(res.total);
    }, 300_000);
  }

  it('bf16 weights (Load Model precision), which ORT cannot be fed, are widened per segment: the resident bf16 latents', async () => {
    const { model, clip, vae } = await fromFile(BUILTIN_TINY_FLUX);
    const base: PipelineParts = { family: model.family, config: model.config, denoiser: model.denoiser, textEncoders: clip.encoders, vae: vae.weights };
    const parts = { ...base, denoiser: new PrecisionWeights(model.denoiser, { precision: 'bf16' as const, minElements: 16 }) };
    const g = { prompt: 'a red circle', seed: 2, steps: 2, cfgScale: 3, sampler: 'euler' };
    const fp32 = await (await FamilyPipeline.create(rt, base, { width: 64, height: 64 })).generate(g);
    const want = await (await FamilyPipeline.create(rt, parts, { width: 64, height: 64 })).generate(g);
    const got = await (await FamilyPipeline.create(rt, { ...parts, offload: 'blocks' }, { width: 64, height: 64 })).generate(g);
    expect(maxAbsDiff(want.latents, got.latents)).toBeLessThanOrEqual(1e-4);
    // The weights were bf16 indeed: rounded, the latents move off the fp32 ones.
    expect(maxAbsDiff(fp32.latents, want.latents)).toBeGreaterThan(1e-4);
  }, 300_000);

  it('splits the denoiser into its blocks and the glue, one session per distinct segment, feeding a block\'s weights at a time', async () => {
    const { model } = await fromFile(BUILTIN_TINY_FLUX);
    const b = new K.Builder(model.denoiser);
    b.gradientCheckpointing = true;
    const latent = model.family.latentFormat(model.config);
    const x = K.input('sample', [2, latent.channels, 4, 4]), t = K.input('timestep', [2]);
    const specs = model.family.conditioning(model.config, [latent.channels, 4, 4]);
    const cond = specs.map((c) => K.input(c.name, [2, ...c.shape]));
    const pred = model.family.denoise(b, model.config, { sample: x, timestep: t, cond: Object.fromEntries(specs.map((c, i) => [c.name, cond[i]])) });
    const off = await OffloadedForward.plan([x, t, ...cond], { prediction: pred }).load(rt);
    const feeds = Object.fromEntries([x, t, ...cond].map((v, i) => [(v.source as { name: string }).name, { dtype: 'float32' as const, shape: [...v.shape], data: Float32Array.from({ length: v.size }, (_, k) => Math.sin(k * 0.37 + i)) }]));
    const resident = await rt.load(K.compileGraph([x, t, ...cond], { prediction: pred }));
    const want = (await resident.run(feeds)).prediction.data as Float32Array;
    const got = (await off.run(feeds)).prediction.data as Float32Array;
    expect(maxAbsDiff(want, got)).toBeLessThanOrEqual(1e-4);
    const { segments, sessions } = off.layout;
    const blocks = recomputedBlocks([pred]).length;
    expect(segments).toBeGreaterThan(blocks);
    expect(sessions).toBeLessThan(segments);
    // One segment's weights at a time: well under the whole transformer's.
    expect(off.maxSegmentWeightBytes).toBeGreaterThan(0);
    expect(off.maxSegmentWeightBytes).toBeLessThan(estimateGraphMemory([pred]).weights / 2);
    // An input it was not told about is refused by name.
    expect(() => OffloadedForward.plan([x, t], { prediction: pred })).toThrow(new RegExp(`graph input '${specs[0].name}'`));
  }, 300_000);

  it('a MODEL with offload `blocks` renders the resident pixels through the Sampler\'s renderSamples', async () => {
    const { model, clip, vae } = await loadModel(BUILTIN_TINY);
    const settings = samplerSettings({
      prompts: 'a red circle on a blue background', negativePrompt: '', seed: 5, walkSeed: false, steps: 2, cfg: 5, sampler: 'euler', scheduler: 'auto',
      width: 0, height: 0, loraStrength: 1, numFrames: 0, fps: 16, cfgHighNoise: 0, startImage: 'none',
    });
    const runs = () => K.defaultRuntime().stats.runs;
    let before = runs();
    const [res] = await renderSamples({ model, clip, vae, settings });
    const residentRuns = runs() - before;
    before = runs();
    const [off] = await renderSamples({ model: { ...model, offload: 'blocks' }, clip, vae, settings });
    // It did run offloaded: each denoiser call is one session run per segment instead of one.
    expect(runs() - before).toBeGreaterThan(residentRuns + 2 * 4);
    let d = 0;
    for (let i = 0; i < res.rgb.length; i++) d = Math.max(d, Math.abs(res.rgb[i] - off.rgb[i]));
    // 8-bit pixels of latents 1e-4 apart: at most one level off where a value sits on a rounding edge.
    expect(d).toBeLessThanOrEqual(1);
    expect(res.rgb.some((v) => v !== res.rgb[0])).toBe(true);
  }, 300_000);
});
