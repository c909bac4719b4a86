// Wan 2.2 TI2V's image-to-video at miniature size (per-token timesteps, 2.2-VAE-style latents): timesteps
// per frame or per token equal the one-timestep path when they agree, with gradients matching finite
// differences; the denoiser sees the given first frame at timestep 0 and the samplers (Euler, UniPC) hand
// it back untouched, Euler equal to the official loop that overwrites it after every step; the training
// loss ignores the given frame, and LoRA steps run through the real TrainStep.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { WAN_TINY, type WanTransformerConfig } from '../../../kernels/wan/config';
import { modulated, wanRope, wanTransformer } from '../../../kernels/wan/transformer';
import { tinyWanConfig, wanFamily } from '../../../kernels/wan/family';
import { sampleWan, wanSigmas } from '../../../kernels/wan/sampling';
import { wan22VaeEncode } from '../../../kernels/wan/vae22';
import { buildTrainGraph } from '../../../kernels/families/training-graph';
import { buildWanTrainGraph } from '../../../kernels/wan/training-graph';
import { familyAdapters } from '../../../kernels/families/adapters';
import { FamilyPipeline } from '../../../kernels/families/pipeline';
import { Rng } from '../../../kernels/random';
import { gradCheck, rand, runtime } from '../gradcheck';

const rt = new K.Runtime({ threads: 2 });
afterAll(() => { rt.close(); runtime().close(); });

const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });
const nameOf = (t: K.Tensor) => (t.source as { name: string }).name;
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
const TI2V = tinyWanConfig({ ti2v: true });
const C = TI2V.transformer.outChannels;

describe('per-token timesteps in the Wan transformer', () => {
  const cfg: WanTransformerConfig = { ...TI2V.transformer, textDim: 5 };
  const grid: [number, number, number] = [3, 2, 2];
  const L = 12;
  const w = new K.RandomWeights(3, 0.05);
  const graph = (tShape: number[]) => {
    const x = K.input('x', [1, C, 3, 4, 4]), ctx = K.input('ctx', [1, 4, 5]), t = K.input('t', tShape);
    return { inputs: [x, ctx, t], y: wanTransformer(new K.Builder(w), cfg, { latents: x, context: ctx, timesteps: t, rope: wanRope(cfg, grid) }) };
  };
  const xs = rand(C * 3 * 16), cs = rand(20);
  const run = async (tShape: number[], t: Float32Array) => {
    const g = graph(tShape);
    const s = await rt.load(K.compileGraph(g.inputs, { y: g.y }));
    return (await s.run({ x: f32([1, C, 3, 4, 4], xs), ctx: f32([1, 4, 5], cs), t: f32(tShape, t) })).y.data as Float32Array;
  };

  it('[B, tokens] and [B, frames] at one level equal the [B] path; per frame equals per token spread over each frame', async () => {
    const one = await run([1], Float32Array.of(0.4));
    const perToken = await run([1, L], new Float32Array(L).fill(0.4));
    const perFrame = await run([1, 3], new Float32Array(3).fill(0.4));
    const mag = Math.max(...one.map(Math.abs));
    expect(mag).toBeGreaterThan(1e-3);
    expect(maxDiff(perToken, one)).toBeLessThan(1e-5 * Math.max(1, mag));
    expect(maxDiff(perFrame, one)).toBeLessThan(1e-5 * Math.max(1, mag));
    // TI2V's clean first frame: level 0 on frame 0's 4 tokens, 0.4 after.
    const frames = await run([1, 3], Float32Array.of(0, 0.4, 0.4));
    const tokens = await run([1, L], Float32Array.from({ length: L }, (_, i) => (i < 4 ? 0 : 0.4)));
    expect(maxDiff(frames, tokens)).toBeLessThan(1e-5 * Math.max(1, mag));
    expect(maxDiff(frames, one)).toBeGreaterThan(1e-4);
    expect(() => graph([1, 5])).toThrow(/match neither the 12 tokens nor the 3 latent frames/);
  });

  it('per-frame and per-token modulation: gradient w.r.t. tokens, shift and scale matches finite differences', async () => {
    // 6 tokens of width 4 in 2 frames: a shift/scale row per frame spread over its 3 tokens, or one per token.
    for (const rows of [2, 6]) {
      const err = await gradCheck((x, shift, scale) => modulated(x, shift, scale), [{ shape: [2, 6, 4] }, { shape: [2, rows, 4] }, { shape: [2, rows, 4] }]);
      expect(err, `${rows} rows`).toBeLessThan(1e-2);
    }
  });

  it('mini TI2V: gradient through the network with a clean first frame (per-frame levels) matches finite differences', async () => {
    const mini: WanTransformerConfig = { ...WAN_TINY, name: 'mini-ti2v', dim: 24, numHeads: 2, ffnDim: 32, numLayers: 1, inChannels: 2, outChannels: 2, textDim: 6, freqDim: 8, perTokenTimesteps: true };
    const wm = new K.RandomWeights(7, 0.4);
    const f = (x: K.Tensor, ctx: K.Tensor, t: K.Tensor) => wanTransformer(new K.Builder(wm), mini, { latents: x, context: ctx, timesteps: t, rope: wanRope(mini, [2, 1, 2]) });
    const err = await gradCheck(f, [
      { shape: [1, 2, 2, 2, 4] }, { shape: [1, 3, 6] },
      // Levels stay fixed: the sinusoidal embedding of t·1000 is too curved for a finite difference.
      { shape: [1, 2], fixed: f32([1, 2], Float32Array.of(0, 0.6)) },
    ], { directions: 4 });
    expect(err).toBeLessThan(2e-2);
  });
});

describe('TI2V conditioning through the family', () => {
  it('first_frame [1 + C, 1, h, w] (optional) for clips, none for images; the first frame encoded alone is the clip latent\'s first frame', async () => {
    const c = wanFamily.conditioning(TI2V, [C, 3, 2, 2]).find((x) => x.name === 'first_frame');
    expect(c).toEqual({ name: 'first_frame', shape: [1 + C, 1, 2, 2], source: 'latent', optional: true });
    expect(wanFamily.conditioning(TI2V, [C, 2, 2]).map((x) => x.name)).toEqual(['context']);
    expect(wanFamily.conditioning(TI2V, [C, 1, 2, 2]).map((x) => x.name)).toEqual(['context']);
    expect(wanFamily.conditioning(TI2V).find((x) => x.name === 'first_frame')?.shape).toEqual([1 + C, 1, 4, 4]);
    expect(wanFamily.conditioning(tinyWanConfig()).map((x) => x.name)).toEqual(['context']);

    const vae = new K.RandomWeights(6, 0.08);
    expect(wanFamily.latentConditioning!(new K.Builder(vae), TI2V, K.input('img', [1, 3, 32, 32]))).toEqual({});
    const px = K.input('px', [1, 3, 5, 32, 32]);
    const cond = wanFamily.latentConditioning!(new K.Builder(vae), TI2V, px).first_frame;
    expect(cond.shape).toEqual([1, 1 + C, 1, 2, 2]);
    const clip = wan22VaeEncode(new K.Builder(vae), TI2V.vae, px).latents;
    const s = await rt.load(K.compileGraph([px], { cond, clip }));
    const r = await s.run({ px: f32([1, 3, 5, 32, 32], new Rng(4).fillNormal(new Float32Array(3 * 5 * 1024)).map(Math.tanh)) });
    const got = r.cond.data as Float32Array, z = r.clip.data as Float32Array;
    expect(Array.from(got.subarray(0, 4))).toEqual([1, 1, 1, 1]);
    const frame0 = Float32Array.from({ length: C * 4 }, (_, i) => z[Math.floor(i / 4) * 2 * 4 + (i % 4)]);
    expect(maxDiff(got.subarray(4), frame0)).toBeLessThan(1e-5);
  });
});

describe('TI2V sampling from a start image', () => {
  // Latent [C, 3 frames, 2, 2] → 3 tokens; batch 1 (uncond + cond = 2 rows).
  const F = 3, hw = 4, per = C * F * hw;
  const weights = new K.RandomWeights(12, 0.1);
  const z = new Rng(5).fillNormal(new Float32Array(C * hw));
  const firstFrame = (given: boolean) => {
    const row = new Float32Array((1 + C) * hw);
    if (given) { row.fill(1, 0, hw); row.set(z, hw); }
    const data = new Float32Array(2 * row.length);
    data.set(row); data.set(row, row.length);
    return f32([2, 1 + C, 1, 2, 2], data);
  };
  const context = f32([2, 64, 32], new Rng(6).fillNormal(new Float32Array(2 * 64 * 32)));

  async function denoiser() {
    const x = K.input('sample', [2, C, F, 2, 2]), t = K.input('timestep', [2]);
    const ctx = K.input('context', [2, 64, 32]), ff = K.input('first_frame', [2, 1 + C, 1, 2, 2]);
    const v = wanFamily.denoise(new K.Builder(weights), TI2V, { sample: x, timestep: t, cond: { context: ctx, first_frame: ff } });
    // The same transformer fed by hand: frame 0 already the image, level 0 on its token.
    const xRef = K.input('x_ref', [2, C, F, 2, 2]), tRef = K.input('t_ref', [2, F]);
    const ref = wanTransformer(new K.Builder(weights), TI2V.transformer, { latents: xRef, context: ctx, timesteps: tRef, rope: wanRope(TI2V.transformer, [F, 1, 1]) });
    return rt.load(K.compileGraph([x, t, ctx, ff, xRef, tRef], { v, ref }));
  }

  it('the denoiser sees the image latent at timestep 0 on the first frame; Euler and UniPC return it exactly; Euler equals the official overwrite-every-step loop', async () => {
    const s = await denoiser();
    const hand = { x_ref: f32([2, C, F, 2, 2], new Float32Array(2 * per)), t_ref: f32([2, F], new Float32Array(2 * F)) };
    const x = new Rng(9).fillNormal(new Float32Array(2 * per));
    const xRef = Float32Array.from(x);
    for (let b = 0; b < 2; b++) for (let ch = 0; ch < C; ch++) xRef.set(z.subarray(ch * hw, (ch + 1) * hw), b * per + ch * F * hw);
    // σ as the graph computes it from the timestep (700 · f32(1/1000)).
    const t = Math.fround(700 * Math.fround(1 / 1000));
    const check = await s.run({ sample: f32([2, C, F, 2, 2], x), timestep: f32([2], Float32Array.of(700, 700)), context, first_frame: firstFrame(true), x_ref: f32([2, C, F, 2, 2], xRef), t_ref: f32([2, F], Float32Array.of(0, t, t, 0, t, t)) });
    expect(maxDiff(check.v.data as Float32Array, check.ref.data as Float32Array)).toBeLessThan(1e-6);

    const calls: number[] = [];
    const call = (given: boolean) => async (xs: Float32Array, timestep: number) => {
      calls.push(timestep);
      const out = await s.run({ sample: f32([2, C, F, 2, 2], xs), timestep: f32([2], new Float32Array(2).fill(timestep)), context, first_frame: firstFrame(given), ...hand });
      return out.v.data as Float32Array;
    };
    const run = (sampler: string, given: boolean) => sampleWan(call(given), TI2V.transformer, {
      sampler, steps: 6, cfgScale: 3, seed: 11, scheduler: 'auto', latentShape: [C, F, 2, 2], batch: 1, conditioning: { first_frame: firstFrame(given) },
    });
    const frame0 = (lat: Float32Array) => Float32Array.from({ length: C * hw }, (_, i) => lat[Math.floor(i / hw) * F * hw + (i % hw)]);
    for (const sampler of ['euler', 'unipc']) {
      const out = await run(sampler, true);
      expect(Array.from(frame0(out))).toEqual(Array.from(z));
      expect(out.every(Number.isFinite)).toBe(true);
      // Without a start image (flag 0) it is text to video: the first frame is sampled like the rest.
      expect(maxDiff(frame0(await run(sampler, false)), z)).toBeGreaterThan(0.1);
    }

    // The official TI2V loop: overwrite frame 0 with the image before sampling and after every Euler step.
    const sigmas = wanSigmas(6, 5);
    const ref = new Rng(11).fork('initial-noise').fillNormal(new Float32Array(per));
    const hold = (v: Float32Array) => { for (let ch = 0; ch < C; ch++) v.set(z.subarray(ch * hw, (ch + 1) * hw), ch * F * hw); };
    hold(ref);
    for (let i = 0; i < 6; i++) {
      const both = new Float32Array(2 * per); both.set(ref); both.set(ref, per);
      const pred = await call(true)(both, sigmas[i] * 1000);
      for (let k = 0; k < per; k++) ref[k] += (sigmas[i + 1] - sigmas[i]) * (pred[k] + 3 * (pred[per + k] - pred[k]));
      hold(ref);
    }
    expect(maxDiff(await run('euler', true), ref)).toBeLessThan(1e-5);
  }, 60_000);
});

describe('TI2V previews through the family pipeline', () => {
  it('a start clip keeps the sampled first latent frame at the start image\'s latent; without one it is text to video', async () => {
    // A stub tokenizer: the pipeline only needs ids of the right length (0 pads, which the encoder masks).
    const tokenizer = { vocabSize: 512, tokenize: (text: string, o: { maxLength: number }) => ({ ids: Array.from({ length: o.maxLength }, (_, i) => (i < text.length ? 1 + (text.charCodeAt(i) % 500) : 0)) }) };
    const vae = new K.RandomWeights(6, 0.08);
    const parts = { family: wanFamily, config: TI2V, denoiser: new K.RandomWeights(12, 0.1), vae, textEncoders: [{ weights: new K.RandomWeights(2, 0.05), tokenizer }] };
    const pipe = await FamilyPipeline.create(rt, parts, { width: 32, height: 32, frames: 5 });
    const clip = new Rng(3).fillNormal(new Float32Array(3 * 5 * 1024)).map(Math.tanh);
    for (let c = 0; c < 3; c++) clip.fill(0, c * 5 * 1024 + 1024, (c + 1) * 5 * 1024); // frame 0, then blank
    const g = { prompt: 'a red circle moving left', seed: 4, steps: 3, cfgScale: 3 };
    const withImage = await pipe.generate({ ...g, sampler: 'unipc', startClip: clip });
    const textOnly = await pipe.generate({ ...g, sampler: 'unipc' });
    expect(withImage.frames?.[0]).toHaveLength(5);
    // The start image's latent, encoded alone.
    const px = K.input('px', [1, 3, 1, 32, 32]);
    const enc = await rt.load(K.compileGraph([px], { z: wan22VaeEncode(new K.Builder(vae), TI2V.vae, px).latents }));
    const z = (await enc.run({ px: f32([1, 3, 1, 32, 32], Float32Array.from({ length: 3 * 1024 }, (_, i) => clip[Math.floor(i / 1024) * 5 * 1024 + (i % 1024)])) })).z.data as Float32Array;
    const frame0 = (lat: Float32Array) => Float32Array.from({ length: C * 4 }, (_, i) => lat[Math.floor(i / 4) * 2 * 4 + (i % 4)]);
    expect(maxDiff(frame0(withImage.latents), z)).toBeLessThan(1e-5);
    expect(maxDiff(frame0(textOnly.latents), z)).toBeGreaterThan(0.1);
  }, 120_000);
});

describe('TI2V image-to-video training', () => {
  const adapters = familyAdapters(wanFamily, TI2V, { rank: 4, alpha: 4, targets: { preset: 'attention_ff' }, trainTextEncoder: false });
  const g = buildTrainGraph({ family: wanFamily, config: TI2V, denoiserWeights: new K.RandomWeights(31, 0.05), adapters, batch: 2, latentSize: [3, 2, 2] });
  const F = 3, hw = 4, per = C * F * hw;
  const batch = (): Record<string, K.HostTensor> => {
    const rng = new Rng(8);
    const feeds: Record<string, K.HostTensor> = {};
    for (const t of g.inputs) {
      const n = nameOf(t);
      feeds[n] = f32([...t.shape], n === 'timesteps' ? Float32Array.of(0.35, 0.8) : rng.fork(n).fillNormal(new Float32Array(t.shape.reduce((a, b) => a * b, 1))));
    }
    // Both samples given their first frame (flag 1): the clip's own first latent frame.
    const ff = feeds.first_frame.data as Float32Array, lat = feeds.latents.data as Float32Array;
    for (let b = 0; b < 2; b++) {
      ff.fill(1, b * (1 + C) * hw, b * (1 + C) * hw + hw);
      for (let ch = 0; ch < C; ch++) ff.set(lat.subarray(b * per + ch * F * hw, b * per + ch * F * hw + hw), b * (1 + C) * hw + (1 + ch) * hw);
    }
    return feeds;
  };
  /** A copy of `feeds` with `name`'s latent frame `frame` of every sample redrawn. */
  const redraw = (feeds: Record<string, K.HostTensor>, name: string, frame: number, samples = [0, 1]) => {
    const data = Float32Array.from(feeds[name].data as Float32Array);
    const r = new Rng(77);
    for (const b of samples) for (let ch = 0; ch < C; ch++) for (let p = 0; p < hw; p++) data[b * per + (ch * F + frame) * hw + p] = r.normal();
    return { ...feeds, [name]: f32(feeds[name].shape as number[], data) };
  };

  it('the loss leaves a given first frame out: its target and its clean latent change nothing; later frames and an ungiven first frame count', async () => {
    expect(g.inputs.find((t) => nameOf(t) === 'first_frame')?.shape).toEqual([2, 1 + C, 1, 2, 2]);
    const s = await rt.load(K.compileGraph([...g.inputs, ...Object.values(g.params)], { loss: g.loss }));
    const init = adapters.denoiser.initialValues(3);
    // A LoRA with a nonzero up projection, so the adapted model differs from the base.
    for (const [k, v] of Object.entries(init)) if (/lora_up/.test(k)) init[k] = f32(v.shape as number[], new Rng(k).fillNormal(new Float32Array((v.data as Float32Array).length)).map((x) => 0.05 * x));
    const loss = async (feeds: Record<string, K.HostTensor>) => (await s.run({ ...feeds, ...init })).loss.data[0] as number;
    const base = batch();
    const a = await loss(base);
    expect(Number.isFinite(a)).toBe(true);
    expect(await loss(redraw(base, 'noise', 0))).toBe(a);
    expect(await loss(redraw(base, 'latents', 0))).toBe(a);
    expect(Math.abs((await loss(redraw(base, 'noise', 1))) - a)).toBeGreaterThan(1e-6);
    // Sample 1 without a first frame (flag 0): text to video, its first frame is predicted and scored.
    const t2v = { ...base, first_frame: f32([2, 1 + C, 1, 2, 2], Float32Array.from(base.first_frame.data as Float32Array, (v, i) => (i >= (1 + C) * hw ? 0 : v))) };
    const b = await loss(t2v);
    expect(Math.abs((await loss(redraw(t2v, 'noise', 0, [1]))) - b)).toBeGreaterThan(1e-6);
    expect(await loss(redraw(t2v, 'noise', 0, [0]))).toBe(b);
  });

  it('the Wan-only training graph takes first_frame too and gives the family graph\'s loss', async () => {
    const w = buildWanTrainGraph({ config: TI2V.transformer, weights: new K.RandomWeights(31, 0.05), adapters: adapters.denoiser, batch: 2, latentSize: [3, 2, 2], textTokens: 64 });
    expect(w.inputs.find((t) => nameOf(t) === 'first_frame')?.shape).toEqual([2, 1 + C, 1, 2, 2]);
    const feeds = batch();
    const init = adapters.denoiser.initialValues(3);
    const run = async (gr: { inputs: K.Tensor[]; loss: K.Tensor; params: Record<string, K.Tensor> }, f: Record<string, K.HostTensor>) =>
      (await (await rt.load(K.compileGraph([...gr.inputs, ...Object.values(gr.params)], { loss: gr.loss }))).run({ ...f, ...init })).loss.data[0] as number;
    const viaFamily = await run(g, feeds);
    const viaWan = await run(w, { latents: feeds.latents, noise: feeds.noise, sigmas: feeds.timesteps, text: feeds.context, first_frame: feeds.first_frame });
    expect(Math.abs(viaWan - viaFamily)).toBeLessThan(1e-6 * Math.max(1, viaFamily));
  });

  it('LoRA steps through the real TrainStep: finite, and the loss on a fixed batch falls', async () => {
    const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, extraOutputs: g.extra, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
    await ts.init(adapters.denoiser.initialValues(5));
    const feeds = batch();
    const first = await ts.step([feeds], 2e-2, 1);
    let last = first;
    for (let step = 2; step <= 20; step++) last = await ts.step([feeds], 2e-2, step);
    expect(Number.isFinite(last.loss)).toBe(true);
    expect(last.loss).toBeLessThan(first.loss * 0.9);
  }, 120_000);
});
