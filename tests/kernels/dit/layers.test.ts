// The shared DiT layers: values against direct JS references, gradients against finite differences.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { applyRope, gatedResidual, layerNormPlain, modulate, repeatKvHeads, rmsNorm, ropeAngles, ropeTables, swiglu, timestepEmbedding } from '../../../kernels/dit';
import { gradCheck, rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());

async function run(f: (...xs: K.Tensor[]) => K.Tensor, values: { shape: number[]; data: Float32Array }[]): Promise<Float32Array> {
  const xs = values.map((v, i) => K.input(`x${i}`, v.shape));
  const s = await runtime().load(K.compileGraph(xs, { y: f(...xs) }));
  const out = await s.run(Object.fromEntries(values.map((v, i) => [`x${i}`, { dtype: 'float32' as const, shape: v.shape, data: v.data }])));
  return out.y.data as Float32Array;
}

const positions = [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 1, 0], [0, 0, 0, 5]];

describe('rotary position embedding', () => {
  it('angles: each axis owns its channels, frequencies theta^(-2j/d)', () => {
    const { angles, pairs } = ropeAngles([[1, 2], [0, 3]], [4, 2], 100);
    expect(pairs).toBe(3);
    // axis 0 (4 channels): freqs 1, 100^-0.5; axis 1 (2 channels): freq 1
    expect([...angles]).toEqual([1, 1 * 0.1, 2, 0, 0, 3].map((v) => expect.closeTo(v, 12)));
  });

  for (const pairing of ['interleaved', 'halves'] as const) {
    it(`${pairing}: matches a direct rotation of each pair`, async () => {
      const axes = [2, 2, 2, 2];
      const x = rand(2 * 4 * 8);
      const y = await run((t) => applyRope(t, ropeTables(positions, axes, 2000), pairing), [{ shape: [2, 4, 8], data: x }]);
      const { angles } = ropeAngles(positions, axes, 2000);
      for (let b = 0; b < 2; b++) for (let l = 0; l < 4; l++) for (let j = 0; j < 4; j++) {
        const [ia, ib] = pairing === 'interleaved' ? [2 * j, 2 * j + 1] : [j, j + 4];
        const base = (b * 4 + l) * 8;
        const th = angles[l * 4 + j];
        expect(y[base + ia]).toBeCloseTo(x[base + ia] * Math.cos(th) - x[base + ib] * Math.sin(th), 5);
        expect(y[base + ib]).toBeCloseTo(x[base + ia] * Math.sin(th) + x[base + ib] * Math.cos(th), 5);
      }
    });
    it(`${pairing}: gradient matches finite differences`, async () => {
      const tables = ropeTables(positions, [2, 2, 2, 2], 2000);
      expect(await gradCheck((x) => applyRope(x, tables, pairing), [{ shape: [1, 2, 4, 8] }])).toBeLessThan(2e-2);
    });
  }
});

describe('norms, modulation, SwiGLU', () => {
  it('RMS norm: x / rms(x) · w', async () => {
    const x = rand(6), w = rand(3);
    const y = await run((a, b) => rmsNorm(a, b, 1e-6), [{ shape: [2, 3], data: x }, { shape: [3], data: w }]);
    for (let r = 0; r < 2; r++) {
      const ms = (x[r * 3] ** 2 + x[r * 3 + 1] ** 2 + x[r * 3 + 2] ** 2) / 3;
      for (let c = 0; c < 3; c++) expect(y[r * 3 + c]).toBeCloseTo((x[r * 3 + c] / Math.sqrt(ms + 1e-6)) * w[c], 5);
    }
  });
  it('RMS norm gradient (x and weight)', async () => {
    expect(await gradCheck((x, w) => rmsNorm(x, w, 1e-6), [{ shape: [2, 3, 4] }, { shape: [4] }])).toBeLessThan(2e-2);
  });
  it('SwiGLU: silu(first half) · second half, and its gradient', async () => {
    const x = rand(8);
    const y = await run((a) => swiglu(a), [{ shape: [2, 4], data: x }]);
    const silu = (v: number) => v / (1 + Math.exp(-v));
    expect(y[0]).toBeCloseTo(silu(x[0]) * x[2], 5);
    expect(y[3]).toBeCloseTo(silu(x[5]) * x[7], 5);
    expect(await gradCheck((a) => swiglu(a), [{ shape: [2, 3, 6] }])).toBeLessThan(2e-2);
  });
  it('shared modulation (one vector drives norm, modulate, gated residual) gradient', async () => {
    // vec → SiLU → linear (the shared `lin`) → shift, scale, gate → x + gate·f(LN(x)(1+scale)+shift)
    const block = (x: K.Tensor, vec: K.Tensor, w: K.Tensor, f: K.Tensor) => {
      const [shift, scale, gate] = K.split(K.linear(K.silu(vec), w), 3, -1);
      return gatedResidual(x, gate, K.linear(modulate(layerNormPlain(x, 1e-6), shift, scale), f));
    };
    expect(await gradCheck(block, [{ shape: [2, 3, 4] }, { shape: [2, 5] }, { shape: [12, 5] }, { shape: [4, 4] }], { directions: 4 })).toBeLessThan(2e-2);
  });
  it('timestep embedding: cos then sin of t·10000^(-i/half)', async () => {
    const y = await run((t) => timestepEmbedding(t, 8), [{ shape: [2], data: Float32Array.from([0, 500]) }]);
    expect([...y.slice(0, 8)]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    const f = (i: number) => 500 * Math.exp((-Math.log(10000) * i) / 4);
    for (let i = 0; i < 4; i++) {
      expect(y[8 + i]).toBeCloseTo(Math.cos(f(i)), 3);
      expect(y[12 + i]).toBeCloseTo(Math.sin(f(i)), 3);
    }
  });
  it('grouped-query heads: query head h reads kv head floor(h / (H/kvH))', async () => {
    const x = Float32Array.from({ length: 2 * 3 }, (_, i) => i);
    const y = await run((a) => repeatKvHeads(a, 4), [{ shape: [1, 2, 1, 3], data: x }]);
    expect([...y]).toEqual([0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]);
  });
});
