// The Wan transformer at miniature size in ORT: 3D RoPE against a JS reference (44/42/42-style split
// over frame/row/col) with its gradient, per-token timesteps equal to one timestep when they agree,
// samples independent of their batch mates, and the whole network's gradient against finite
// differences (T2V, and I2V with the CLIP branch).
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { WAN_TINY, ropeAxes, type WanTransformerConfig } from '../../../kernels/wan/config';
import { patchify, unpatchify, wanRope, wanTokenPositions, wanTransformer } from '../../../kernels/wan/transformer';
import { applyRope } from '../../../kernels/dit';
import { gradCheck, rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());

const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });
const MINI: WanTransformerConfig = { ...WAN_TINY, name: 'mini', dim: 24, numHeads: 2, ffnDim: 32, numLayers: 1, inChannels: 2, outChannels: 2, textDim: 6, freqDim: 8 };
const MINI_I2V: WanTransformerConfig = { ...MINI, name: 'mini-i2v', inChannels: 5, clipImageDim: 4 };

describe('Wan 3D RoPE', () => {
  it('rotates each interleaved pair by frame, row and column angles in the 4/4/4 split of a 12-wide head', async () => {
    const cfg = { ...MINI, dim: 24, numHeads: 2 };
    expect(ropeAxes(cfg)).toEqual([4, 4, 4]);
    const grid: [number, number, number] = [2, 2, 3];
    const L = 12, D = 12;
    const x = K.input('x', [1, 2, L, D]);
    const s = await runtime().load(K.compileGraph([x], { y: applyRope(x, wanRope(cfg, grid), 'interleaved') }));
    const xs = rand(2 * L * D);
    const y = (await s.run({ x: f32([1, 2, L, D], xs) })).y.data as Float32Array;
    const pos = wanTokenPositions(grid);
    let worst = 0;
    for (let h = 0; h < 2; h++) for (let l = 0; l < L; l++) for (let p = 0; p < D / 2; p++) {
      const axis = Math.floor(p / 2), j = p % 2; // 2 pairs per axis
      const angle = pos[l][axis] / 10000 ** ((2 * j) / 4);
      const o = (h * L + l) * D + 2 * p;
      const a = xs[o], b = xs[o + 1];
      worst = Math.max(worst, Math.abs(y[o] - (a * Math.cos(angle) - b * Math.sin(angle))), Math.abs(y[o + 1] - (a * Math.sin(angle) + b * Math.cos(angle))));
    }
    expect(worst).toBeLessThan(1e-5);
    expect(pos[7]).toEqual([1, 0, 1]); // frames outermost, then rows, then columns
  });

  it('gradient through 3D RoPE matches finite differences', async () => {
    const rope = wanRope(MINI, [2, 1, 2]);
    const err = await gradCheck((x) => applyRope(x, rope, 'interleaved'), [{ shape: [1, 1, 4, 12] }]);
    expect(err).toBeLessThan(1e-2);
  });
});

function build(cfg: WanTransformerConfig, weights: K.WeightSource, batch: number, grid: [number, number, number], txt: number, perToken = false) {
  const [f, h, w] = grid;
  const latents = K.input('x', [batch, cfg.outChannels, f, 2 * h, 2 * w]);
  const context = K.input('ctx', [batch, txt, cfg.textDim]);
  const t = K.input('t', perToken ? [batch, f * h * w] : [batch]);
  const out = wanTransformer(new K.Builder(weights), cfg, { latents, context, timesteps: t, rope: wanRope(cfg, grid) });
  return { inputs: [latents, context, t], out };
}

describe('Wan transformer (tiny)', () => {
  it('tiny model: [B, C, F, H, W] velocity, each sample independent of the batch; per-token t equal to one t', async () => {
    const w = new K.RandomWeights(3, 0.05);
    const grid: [number, number, number] = [3, 2, 2];
    const two = build(WAN_TINY, w, 2, grid, 5);
    const one = build(WAN_TINY, w, 1, grid, 5);
    const tok = build(WAN_TINY, w, 1, grid, 5, true);
    expect(two.out.shape).toEqual([2, 4, 3, 4, 4]);
    const n = 4 * 3 * 4 * 4;
    const x = rand(2 * n), c = rand(2 * 5 * 32);
    const feed = (b: number, t: K.HostTensor) => ({ x: f32([b, 4, 3, 4, 4], x.slice(0, b * n)), ctx: f32([b, 5, 32], c.slice(0, b * 5 * 32)), t });
    const run = async (g: { inputs: K.Tensor[]; out: K.Tensor }, feeds: Record<string, K.HostTensor>) => (await (await runtime().load(K.compileGraph(g.inputs, { y: g.out }))).run(feeds)).y.data as Float32Array;
    const y2 = await run(two, feed(2, f32([2], Float32Array.of(0.3, 0.9))));
    const y1 = await run(one, feed(1, f32([1], Float32Array.of(0.3))));
    const yt = await run(tok, feed(1, f32([1, 12], new Float32Array(12).fill(0.3))));
    let diff = 0, mag = 0, other = 0, perToken = 0;
    for (let i = 0; i < n; i++) {
      diff = Math.max(diff, Math.abs(y1[i] - y2[i])); mag = Math.max(mag, Math.abs(y1[i]));
      other = Math.max(other, Math.abs(y2[i + n] - y1[i])); perToken = Math.max(perToken, Math.abs(yt[i] - y1[i]));
    }
    expect(mag).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThan(1e-5 * Math.max(1, mag));
    expect(perToken).toBeLessThan(1e-5 * Math.max(1, mag));
    expect(other).toBeGreaterThan(1e-4);
    // Per-token timesteps are per token: a clean first frame (t = 0 there, as 2.2 TI2V gives it) changes the output.
    const mixed = new Float32Array(12).fill(0.3); mixed.fill(0, 0, 4);
    const ym = await run(tok, feed(1, f32([1, 12], mixed)));
    expect(Math.max(...ym.map((v, i) => Math.abs(v - y1[i])))).toBeGreaterThan(1e-4);
  });

  it('T2V mini: gradient w.r.t. latents and text features matches finite differences', async () => {
    const w = new K.RandomWeights(7, 0.4);
    const grid: [number, number, number] = [2, 1, 2];
    const f = (x: K.Tensor, ctx: K.Tensor, t: K.Tensor) => wanTransformer(new K.Builder(w), MINI, { latents: x, context: ctx, timesteps: t, rope: wanRope(MINI, grid) });
    const err = await gradCheck(f, [
      { shape: [1, 2, 2, 2, 4] }, { shape: [1, 3, 6] },
      // t is embedded as sin/cos of t·1000·f: far too curved for a finite difference, so it stays fixed.
      { shape: [1], fixed: f32([1], Float32Array.of(0.4)) },
    ], { directions: 4 });
    expect(err).toBeLessThan(2e-2);
  });

  it('2.1 I2V mini: gradient through the mask + image-latent condition and the CLIP image branch', async () => {
    const w = new K.RandomWeights(11, 0.4);
    const grid: [number, number, number] = [1, 1, 2];
    const f = (x: K.Tensor, cond: K.Tensor, ctx: K.Tensor, clip: K.Tensor, t: K.Tensor) =>
      wanTransformer(new K.Builder(w), MINI_I2V, { latents: x, condition: cond, context: ctx, clipImage: clip, timesteps: t, rope: wanRope(MINI_I2V, grid) });
    const err = await gradCheck(f, [
      { shape: [1, 2, 1, 2, 4] }, { shape: [1, 3, 1, 2, 4] }, { shape: [1, 2, 6] }, { shape: [1, 3, 4] },
      { shape: [1], fixed: f32([1], Float32Array.of(0.7)) },
    ], { directions: 3 });
    expect(err).toBeLessThan(2e-2);
    expect(() => build(MINI_I2V, w, 1, grid, 2)).toThrow(/5 input channels, got 2/);
  });

  it('2.1 FLF2V mini: emb_pos is added to the 2 × 257 CLIP tokens before the projection (the prediction depends on it, with its gradient); the first frame\'s 257 alone take the first 257 positions; other counts are refused', async () => {
    const flf: WanTransformerConfig = { ...MINI_I2V, name: 'mini-flf2v', firstLastFrame: true };
    const grid: [number, number, number] = [1, 1, 2];
    const feeds = { x: f32([1, 2, 1, 2, 4], rand(16)), c: f32([1, 3, 1, 2, 4], rand(24)), ctx: f32([1, 2, 6], rand(12)), clip: f32([1, 514, 4], rand(514 * 4)) };
    // The same weights but emb_pos (set first, so every other tensor draws the same numbers).
    const predict = async (emb: number) => {
      const w = new K.RandomWeights(11, 0.4);
      w.tensors.set('img_emb.emb_pos', f32([1, 514, 4], new Float32Array(514 * 4).map((_, i) => emb * Math.sin(i))));
      const xs = [K.input('x', [1, 2, 1, 2, 4]), K.input('c', [1, 3, 1, 2, 4]), K.input('ctx', [1, 2, 6]), K.input('clip', [1, 514, 4])];
      const y = wanTransformer(new K.Builder(w), flf, { latents: xs[0], condition: xs[1], context: xs[2], clipImage: xs[3], timesteps: K.constant(Float32Array.of(0.7), [1]), rope: wanRope(flf, grid) });
      const s = await runtime().load(K.compileGraph(xs, { y }));
      return (await s.run(feeds)).y.data as Float32Array;
    };
    const [zero, some] = [await predict(0), await predict(1)];
    expect(zero.some((v, i) => Math.abs(v - some[i]!) > 1e-4)).toBe(true);
    const w = new K.RandomWeights(12, 0.4);
    const err = await gradCheck((x: K.Tensor, clip: K.Tensor) => wanTransformer(new K.Builder(w), flf, {
      latents: x, condition: K.constant(rand(24), [1, 3, 1, 2, 4]), context: K.constant(rand(12), [1, 2, 6]), clipImage: clip, timesteps: K.constant(Float32Array.of(0.7), [1]), rope: wanRope(flf, grid),
    }), [{ shape: [1, 2, 1, 2, 4] }, { shape: [1, 514, 4] }], { directions: 3 });
    expect(err).toBeLessThan(2e-2);
    expect(w.tensors.get('img_emb.emb_pos')!.shape).toEqual([1, 514, 4]);
    const withTokens = (n: number) => () => wanTransformer(new K.Builder(w), flf, {
      latents: K.input('x', [1, 2, 1, 2, 4]), condition: K.input('c', [1, 3, 1, 2, 4]), context: K.input('ctx', [1, 2, 6]), clipImage: K.input('clip', [1, n, 4]),
      timesteps: K.input('t', [1]), rope: wanRope(flf, grid),
    });
    // First frame only (FLF2V trained or sampled as I2V): the first 257 positions of emb_pos.
    expect(withTokens(257)).not.toThrow();
    expect(withTokens(300)).toThrow(/mini-flf2v: the image branch takes CLIP features \[B, 514, 4\].*or \[B, 257, 4\].*got \[1,300,4\]/);
  });
});

describe('Wan patches', () => {
  it('a token holds its 1×2×2 patch channel-first (the Conv3d weight\'s order); the head\'s channel-last layout goes back to [B, C, F, H, W]', async () => {
    const cfg = { ...MINI, inChannels: 3, outChannels: 3 };
    const shape = [1, 3, 2, 4, 6];
    const x = K.input('x', shape);
    const tokens = K.input('tok', [1, 12, 12]);
    const s = await runtime().load(K.compileGraph([x, tokens], { p: patchify(x, cfg), u: unpatchify(tokens, cfg, [2, 2, 3]) }));
    const xs = rand(3 * 2 * 4 * 6), ts = rand(12 * 12);
    const r = await s.run({ x: f32(shape, xs), tok: f32([1, 12, 12], ts) });
    const p = r.p.data as Float32Array, u = r.u.data as Float32Array;
    for (let f = 0; f < 2; f++) for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) for (let c = 0; c < 3; c++) for (let a = 0; a < 2; a++) for (let bb = 0; bb < 2; bb++) {
      const token = (f * 2 + h) * 3 + w;
      const pixel = ((c * 2 + f) * 4 + 2 * h + a) * 6 + 2 * w + bb;
      expect(p[token * 12 + c * 4 + a * 2 + bb]).toBe(xs[pixel]);
      expect(u[pixel]).toBe(ts[token * 12 + (a * 2 + bb) * 3 + c]);
    }
  });
});
