// The FLUX transformer at miniature size in ORT: shapes, samples independent of their batch mates,
// and the whole network's gradient (through modulation, RoPE, q/k RMS norm, SwiGLU, joint
// attention) against finite differences, for both generations.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { FLUX2_TINY, type FluxTransformerConfig } from '../../../kernels/flux/config';
import { fluxTransformer, jointPositions } from '../../../kernels/flux/transformer';
import { ropeTables } from '../../../kernels/dit';
import { gradCheck, rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());

const MINI2: FluxTransformerConfig = { ...FLUX2_TINY, name: 'mini2', hiddenSize: 16, numHeads: 2, depthDouble: 1, depthSingle: 1, contextDim: 6, inChannels: 8, axesDim: [2, 2, 2, 2] };
const MINI1: FluxTransformerConfig = {
  ...MINI2, name: 'mini1', generation: 1, mlpRatio: 4, axesDim: [2, 2, 4], theta: 10000, pooledDim: 5, bias: true,
  sharedModulation: false, mlpActivation: 'gelu_tanh', guidanceEmbed: true,
};

function build(cfg: FluxTransformerConfig, weights: K.WeightSource, batch: number, rows: number, cols: number, txtTokens: number) {
  const img = K.input('img', [batch, rows * cols, cfg.inChannels]);
  const txt = K.input('txt', [batch, txtTokens, cfg.contextDim]);
  const t = K.input('t', [batch]);
  const out = fluxTransformer(new K.Builder(weights), cfg, { img, txt, timesteps: t, rope: ropeTables(jointPositions(cfg, txtTokens, rows, cols), cfg.axesDim, cfg.theta) });
  return { inputs: [img, txt, t], out };
}

describe('FLUX transformer (tiny)', () => {
  it('klein-architecture tiny model: [B, L, 128] velocity, each sample independent of the batch', async () => {
    const w = new K.RandomWeights(3, 0.05);
    const two = build(FLUX2_TINY, w, 2, 4, 4, 8);
    const one = build(FLUX2_TINY, w, 1, 4, 4, 8);
    expect(two.out.shape).toEqual([2, 16, 128]);
    const img = rand(2 * 16 * 128), txt = rand(2 * 8 * 96);
    const feed = (b: number) => ({
      img: { dtype: 'float32' as const, shape: [b, 16, 128], data: img.slice(0, b * 16 * 128) },
      txt: { dtype: 'float32' as const, shape: [b, 8, 96], data: txt.slice(0, b * 8 * 96) },
      t: { dtype: 'float32' as const, shape: [b], data: Float32Array.from([0.3, 0.9].slice(0, b)) },
    });
    const s2 = await runtime().load(K.compileGraph(two.inputs, { y: two.out }));
    const s1 = await runtime().load(K.compileGraph(one.inputs, { y: one.out }));
    const y2 = (await s2.run(feed(2))).y.data as Float32Array;
    const y1 = (await s1.run(feed(1))).y.data as Float32Array;
    let diff = 0, mag = 0, other = 0;
    for (let i = 0; i < y1.length; i++) { diff = Math.max(diff, Math.abs(y1[i] - y2[i])); mag = Math.max(mag, Math.abs(y1[i])); other = Math.max(other, Math.abs(y2[i + y1.length] - y1[i])); }
    expect(mag).toBeGreaterThan(1e-3);
    expect(diff).toBeLessThan(1e-5 * Math.max(1, mag));
    expect(other).toBeGreaterThan(1e-4); // the second sample (other t, other inputs) differs
  });

  for (const cfg of [MINI2, MINI1]) {
    it(`FLUX.${cfg.generation} mini: gradient w.r.t. image tokens and text features matches finite differences`, async () => {
      const w = new K.RandomWeights(7, cfg.generation === 1 ? 0.2 : 0.4);
      const f = (img: K.Tensor, txt: K.Tensor, t: K.Tensor, g: K.Tensor, pooled: K.Tensor) => fluxTransformer(new K.Builder(w), cfg, {
        img, txt, timesteps: t, guidance: g, pooled, rope: ropeTables(jointPositions(cfg, 2, 1, 3), cfg.axesDim, cfg.theta),
      });
      const err = await gradCheck(f, [
        { shape: [1, 3, cfg.inChannels] }, { shape: [1, 2, cfg.contextDim] },
        // t is embedded as sin/cos of t·1000·f: far too curved for a finite difference, so it stays fixed.
        { shape: [1], fixed: { dtype: 'float32', shape: [1], data: Float32Array.from([0.4]) } },
        { shape: [1], fixed: { dtype: 'float32', shape: [1], data: Float32Array.from([3.5]) } },
        { shape: [1, 5], fixed: { dtype: 'float32', shape: [1, 5], data: rand(5) } },
      ], { directions: 4, eps: cfg.generation === 1 ? 3e-3 : 1e-2 });
      expect(err).toBeLessThan(2e-2);
    });
  }
});
