// FLUX previews against hand-written loops: FLUX.2 [klein] base samples flow Euler on BFL's empirical-μ
// schedule with true CFG against the empty prompt; the 4-step distilled klein (CFG 1) and FLUX.1
// schnell use the conditional prediction alone; FLUX.1 dev embeds the scale as guidance (the preview
// pipeline feeds it as the denoiser's `guidance` input) and makes one prediction per step.
import { describe, expect, it, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { add, cast, mul } from '../../../kernels/ops/elementwise';
import { concat, reshape } from '../../../kernels/ops/shape-and-reduce';
import { FamilyPipeline } from '../../../kernels/families/pipeline';
import type { ModelFamily } from '../../../kernels/families/contract';
import { flux2Family, tinyFlux2Config } from '../../../kernels/flux/family';
import { flux1Family, tinyFlux1Config } from '../../../kernels/flux/family1';
import { FLUX1_SCHNELL } from '../../../kernels/flux/config';
import { Rng } from '../../../kernels/random';
import { empiricalMu, fakeCall, shifted, velocity } from './flow-reference';

const rt = new K.Runtime({ threads: 1 });
afterAll(() => rt.close());

const flux2Schedule = (steps: number, seqLen: number) => Array.from({ length: steps + 1 }, (_, i) => shifted(empiricalMu(seqLen, steps), 1 - i / steps));
const flux1DevSchedule = (steps: number, seqLen: number) => Array.from({ length: steps + 1 }, (_, i) => shifted(0.5 + ((1.15 - 0.5) * (seqLen - 256)) / (4096 - 256), 1 - i / steps));

/** Euler by hand: x ← x + (σ_{i+1} − σ_i)·v, v = v_u + g·(v_c − v_u), or v_c alone when `g` is undefined. */
function handLoop(sigmas: number[], n: number, seed: number, g: number | undefined): Float32Array {
  const x = new Rng(seed).fork('initial-noise').fillNormal(new Float32Array(n));
  for (let s = 0; s + 1 < sigmas.length; s++) {
    const t = sigmas[s];
    for (let i = 0; i < n; i++) {
      const vc = velocity(x[i], t, true, i);
      const v = g === undefined ? vc : velocity(x[i], t, false, i) + g * (vc - velocity(x[i], t, false, i));
      x[i] += (sigmas[s + 1] - t) * v;
    }
  }
  return x;
}

const run = (steps: number, cfgScale: number, latentShape: number[]) => ({ sampler: 'euler', scheduler: 'auto', steps, cfgScale, seed: 5, latentShape, batch: 1 });

describe('FLUX.2 [klein] previews', () => {
  it('base: true CFG (guidance 4) against the empty prompt over 50 steps of the empirical-μ schedule', async () => {
    const { call, timesteps } = fakeCall();
    const shape = [128, 2, 3];
    const out = await flux2Family.sample(call, tinyFlux2Config(), run(50, 4, shape));
    const sigmas = flux2Schedule(50, 6);
    expect(timesteps).toHaveLength(50);
    timesteps.forEach((ts, i) => expect(ts).toBeCloseTo(sigmas[i] * 1000, 6));
    const want = handLoop(sigmas, 128 * 6, 5, 4);
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i], 4));
  });

  it('distilled (4 steps, CFG 1): the conditional prediction alone', async () => {
    const { call, timesteps } = fakeCall();
    const out = await flux2Family.sample(call, tinyFlux2Config(), run(4, 1, [128, 2, 2]));
    expect(timesteps).toHaveLength(4);
    const want = handLoop(flux2Schedule(4, 4), 128 * 4, 5, undefined);
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });
});

describe('FLUX.1 previews', () => {
  it('dev: the scale is the embedded guidance, one conditional prediction per step on the resolution-shifted schedule', async () => {
    const c = tinyFlux1Config();
    expect(flux1Family.sampleConditioning(c, { originalSize: { width: 64, height: 64 }, cropTopLeft: { top: 0, left: 0 }, targetSize: { width: 64, height: 64 } }, { guidance: 3.5 }).guidance).toEqual(Float32Array.of(3.5));
    const { call, timesteps } = fakeCall();
    const out = await flux1Family.sample(call, c, run(6, 3.5, [64, 2, 2]));
    const sigmas = flux1DevSchedule(6, 4);
    timesteps.forEach((ts, i) => expect(ts).toBeCloseTo(sigmas[i] * 1000, 6));
    const want = handLoop(sigmas, 64 * 4, 5, undefined);
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });

  it('schnell: no guidance input, no CFG, linear noise levels', async () => {
    const c = { ...tinyFlux1Config(), transformer: { ...tinyFlux1Config().transformer, guidanceEmbed: FLUX1_SCHNELL.guidanceEmbed } };
    const { call } = fakeCall();
    const out = await flux1Family.sample(call, c, run(4, 7, [64, 2, 2]));
    const want = handLoop([1, 0.75, 0.5, 0.25, 0], 64 * 4, 5, undefined);
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });
});

describe('preview pipeline', () => {
  it('feeds the Sampler\'s CFG scale to a guidance-embedded denoiser as its guidance input', async () => {
    // A one-channel "model" whose prediction is its guidance input everywhere; its sampler reports what it saw.
    const seen: number[] = [];
    const family = {
      id: 'fake', label: 'guidance probe',
      textEncoders: () => [{ part: 'te', maxLength: 2, maxClipSkip: 0 }],
      encodeText: (_b: unknown, _c: unknown, ids: K.Tensor[]) => ({ context: cast(ids[0], 'float32') }),
      conditioning: () => [{ name: 'context', shape: [2], source: 'text' }, { name: 'guidance', shape: [1], source: 'sample' }],
      sampleConditioning: (_c: unknown, _g: unknown, preview?: { guidance?: number }) => ({ guidance: Float32Array.of(preview?.guidance ?? 1) }),
      denoise: (_b: unknown, _c: unknown, x: { sample: K.Tensor; cond: Record<string, K.Tensor> }) => add(mul(x.sample, 0), reshape(x.cond.guidance, [-1, 1, 1, 1])),
      latentFormat: () => ({ channels: 1, spatialCompression: 1, temporalCompression: 1, scale: 1, shift: 0 }),
      latentMultiple: () => 1,
      vaeDecode: (_b: unknown, _c: unknown, z: K.Tensor) => concat([z, z, z], 1),
      sample: async (call: (x: Float32Array, t: number) => Promise<Float32Array>, _c: unknown, r: { latentShape: number[] }) => {
        const n = r.latentShape.reduce((a, b) => a * b, 1);
        const out = await call(new Float32Array(2 * n), 500);
        seen.push(...new Set(out));
        return new Float32Array(n);
      },
    } as unknown as ModelFamily;
    const tokenizer = { tokenize: (_p: string, o: { maxLength: number }) => ({ ids: new Array(o.maxLength).fill(1) }) } as never;
    const pipe = await FamilyPipeline.create(rt, { family, config: {}, denoiser: new K.RandomWeights(), textEncoders: [{ weights: new K.RandomWeights(), tokenizer }], vae: new K.RandomWeights() }, { width: 4, height: 4 });
    await pipe.generate({ prompt: 'x', seed: 1, cfgScale: 3.5 });
    await pipe.generate({ prompt: 'x', seed: 1, cfgScale: 1 });
    expect(seen).toEqual([3.5, 1]);
  });
});
