// The samplers converge to the right distribution with an exact denoiser (Gaussian data, where the
// ideal ε/v prediction is known in closed form), and are reproducible under a seed on a tiny model.
import { describe, it, expect, afterAll } from 'vitest';
import { RandomWeights, Runtime } from '../../../kernels';
import { ddpmSchedule } from '../../../kernels/schedules/ddpm';
import { sample, samplingSigmas, SAMPLER_NAMES, type ModelCall, type SamplerName } from '../../../kernels/sd/samplers';
import { SdPipeline } from '../../../kernels/sd/pipeline';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { tinyConfig } from '../../../kernels/sd/config';

const schedule = ddpmSchedule();
const trainSigmas = schedule.alphasCumprod.map((a) => Math.sqrt((1 - a) / a));

/** ᾱ at a fractional timestep, interpolating log σ as the samplers do. */
function alphaBarAt(t: number): number {
  const f = Math.floor(t), w = t - f;
  const ls = (1 - w) * Math.log(trainSigmas[f]) + w * Math.log(trainSigmas[Math.min(999, f + 1)]);
  const s2 = Math.exp(2 * ls);
  return 1 / (1 + s2);
}

/** The exact denoiser for x0 ~ N(0, std²) per element, as an ε or v predictor. */
function gaussianModel(std: number, prediction: 'epsilon' | 'v_prediction'): ModelCall {
  return async (x, t) => {
    const ab = alphaBarAt(t), sa = Math.sqrt(ab), sb = Math.sqrt(1 - ab);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const x0 = (sa * std * std * x[i]) / (ab * std * std + 1 - ab);
      const eps = (x[i] - sa * x0) / sb;
      out[i] = prediction === 'epsilon' ? eps : sa * eps - sb * x0;
    }
    return out;
  };
}

const stdOf = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);

describe('samplers with an exact denoiser', () => {
  for (const prediction of ['epsilon', 'v_prediction'] as const) {
    for (const sampler of SAMPLER_NAMES) {
      // 100 steps: the first-order samplers are within ~3% there (they converge as steps grow).
      it(`${sampler} (${prediction}) turns noise into samples with the data's spread`, async () => {
        const x = await sample(gaussianModel(0.5, prediction), {
          sampler, steps: 100, cfgScale: 1, seed: 7, latentShape: [4, 32, 32], schedule, prediction, scheduler: sampler === 'dpmpp_2m' ? 'karras' : 'auto',
        });
        expect(Math.abs(stdOf(x) - 0.5)).toBeLessThan(0.04);
      });
    }
  }

  it('Karras sigmas run from σ_max to σ_min then 0; plain ones start at the last training timestep', () => {
    const k = samplingSigmas(schedule, 10, 'karras');
    expect(k[0]).toBeCloseTo(trainSigmas[999], 6);
    expect(k[9]).toBeCloseTo(trainSigmas[0], 6);
    expect(k[10]).toBe(0);
    for (let i = 1; i < 10; i++) expect(k[i]).toBeLessThan(k[i - 1]);
    const p = samplingSigmas(schedule, 10);
    expect(p[0]).toBeCloseTo(trainSigmas[999], 6);
  });

  it('guidance extrapolates from the unconditional toward the conditional prediction', async () => {
    const seen: number[] = [];
    // uncond predicts 0, cond predicts 1: guided ε must be the scale itself.
    const model: ModelCall = async (x) => { const o = new Float32Array(x.length); o.fill(1, x.length / 2); return o; };
    await sample(async (x, t) => { const o = await model(x, t); return o; }, {
      sampler: 'ddim', steps: 1, cfgScale: 3, seed: 1, latentShape: [1, 1, 2], schedule, prediction: 'epsilon',
      onStep: (s) => seen.push(s),
    });
    expect(seen).toEqual([1]);
    // One DDIM step from t=1 with ε≡3: x0 = (x - sqrt(1-ᾱ)·3)/sqrt(ᾱ), x_prev = sqrt(ᾱ0)·x0 + sqrt(1-ᾱ0)·3.
    const out = await sample(model, { sampler: 'ddim', steps: 1, cfgScale: 3, seed: 1, latentShape: [1, 1, 2], schedule, prediction: 'epsilon' });
    const noise = await sample(async (x) => new Float32Array(x.length), { sampler: 'ddim', steps: 1, cfgScale: 1, seed: 1, latentShape: [1, 1, 2], schedule, prediction: 'epsilon' });
    const a = schedule.alphasCumprod[1], a0 = schedule.alphasCumprod[0];
    // With ε≡0 the step maps x to sqrt(ᾱ0/ᾱ1)·x; undo it to recover the initial noise.
    const x1 = noise.map((v) => v / Math.sqrt(a0 / a));
    for (let i = 0; i < 2; i++) {
      const want = Math.sqrt(a0) * ((x1[i] - Math.sqrt(1 - a) * 3) / Math.sqrt(a)) + Math.sqrt(1 - a0) * 3;
      expect(out[i]).toBeCloseTo(want, 4);
    }
  });
});

describe('text-to-image pipeline on a tiny random-weight model', () => {
  const rt = new Runtime({ threads: 2 });
  afterAll(() => rt.close());
  const tokenizer = ClipTokenizer.fromFolder(new URL('../../../assets/tiny/tokenizer', import.meta.url).pathname);
  const cfg = tinyConfig(tokenizer.vocabSize);

  it('every sampler is reproducible under a seed and changes with it; images are 64×64 RGB', async () => {
    const pipe = await SdPipeline.create(rt, {
      config: cfg, tokenizer, unet: new RandomWeights(1, 0.05), textEncoder: new RandomWeights(2, 0.05), vae: new RandomWeights(3, 0.05),
    }, { width: 64, height: 64 });
    for (const sampler of SAMPLER_NAMES as SamplerName[]) {
      const run = (seed: number) => pipe.generate({ prompt: 'a red circle on a blue background', negativePrompt: 'blurry', seed, steps: 3, cfgScale: 5, sampler });
      const a = await run(42), b = await run(42), c = await run(43);
      expect(a.images[0].length).toBe(64 * 64 * 3);
      expect(Buffer.from(b.images[0]).equals(Buffer.from(a.images[0])), sampler).toBe(true);
      expect(Array.from(b.latents)).toEqual(Array.from(a.latents));
      expect(Array.from(c.latents)).not.toEqual(Array.from(a.latents));
    }
  });
});
