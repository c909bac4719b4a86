// In-graph dequantisation through ORT equals the host-side dequantize reference for every scheme;
// round-trip error stays within each scheme's bound; the QuantizedWeights source swaps big layers for
// dequantising subgraphs inside a real model and reports bytes saved and output error per layer kind.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { quantizeWeight, dequantizeWeight, type QuantScheme, type QuantizeOptions } from '../../../kernels/quant';
import { dequantizeInGraph, unpackNibbles } from '../../../kernels/quant/dequant';
import { QuantizedWeights } from '../../../kernels/quant/graph-weights';
import { measureQuantization, relErr } from '../../../kernels/quant/graph-report';
import { Rng } from '../../../kernels/random';

const rt = new K.Runtime({ threads: 1 });
afterAll(() => rt.close());

async function runGraph(w: K.Tensor) {
  const s = await rt.load(K.compileGraph([], { w }));
  return (await s.run({})).w.data as Float32Array;
}

// Relative RMS weight error bounds for normal weights (measured ~: int8 0.011, nf4 0.10, int4 0.17,
// fp8 per-tensor 0.03): each bound leaves headroom but fails if a scale or code is off.
const schemes: [string, QuantScheme, QuantizeOptions, number][] = [
  ['int8 per-channel', 'int8', {}, 0.02],
  ['nf4 block 64', 'nf4', { blockSize: 64 }, 0.12],
  ['int4 block 32, ragged last block', 'int4', { blockSize: 32 }, 0.2],
  ['fp8 e4m3 per-tensor', 'fp8_e4m3', { fp8Scale: 'tensor' }, 0.05],
  ['fp8 e4m3 per-channel', 'fp8_e4m3', { fp8Scale: 'channel' }, 0.05],
];

describe('in-graph dequantisation', () => {
  const rows = 24, cols = 90; // 90 = 2·32 + 26: a ragged last 4-bit block and an odd-free nibble count
  const w = new Rng('dequant').fillNormal(new Float32Array(rows * cols), 0, 0.05);

  for (const [name, scheme, opts, bound] of schemes) {
    it(`${name}: ORT result equals the host reference; round-trip error < ${bound}`, async () => {
      const q = quantizeWeight(w, [rows, cols], scheme, opts);
      const host = dequantizeWeight(q);
      const graph = await runGraph(dequantizeInGraph(q, 'layer'));
      expect(graph.length).toBe(rows * cols);
      let worst = 0;
      for (let i = 0; i < host.length; i++) worst = Math.max(worst, Math.abs(graph[i] - host[i]));
      expect(worst).toBeLessThanOrEqual(1e-7);
      const err = relErr(graph, w);
      expect(err).toBeLessThan(bound);
      expect(err).toBeGreaterThan(0);
      expect(q.bytes).toBeLessThan(w.byteLength / (scheme === 'int8' || scheme === 'fp8_e4m3' ? 3.5 : 6));
    });
  }

  it('nibble unpacking: low nibble first, odd counts', async () => {
    const packed = Uint8Array.from([0x21, 0xf3, 0x0a]);
    const codes = unpackNibbles(K.constant(packed, [3], 'uint8'), 5);
    const s = await rt.load(K.compileGraph([], { c: K.cast(codes, 'float32') }));
    expect(Array.from((await s.run({})).c.data as Float32Array)).toEqual([1, 2, 3, 15, 10]);
  });

  it('a conv weight [out, in, kh, kw] quantised as [out, in·kh·kw] comes back in its shape', async () => {
    const cw = new Rng('conv').fillNormal(new Float32Array(8 * 4 * 3 * 3), 0, 0.1);
    const q = quantizeWeight(cw, [8, 36], 'nf4', { blockSize: 16 });
    const t = dequantizeInGraph(q, 'conv', [8, 4, 3, 3]);
    expect(t.shape).toEqual([8, 4, 3, 3]);
    expect(await runGraph(t)).toEqual(dequantizeWeight(q));
  });
});

describe('QuantizedWeights in a model', () => {
  function model(b: K.Builder, x: K.Tensor) {
    const h = b.conv('conv_in', x, 8, 32, 3, { padding: 1 });
    const [n, c, H, W] = h.shape;
    const t = K.reshape(K.transpose(h, [0, 2, 3, 1]), [n, H * W, c]);
    return b.linear('proj', K.gelu(b.linear('ff', t, 32, 256)), 256, 32);
  }
  const x = K.input('x', [1, 8, 4, 4]);
  const feed = { x: { dtype: 'float32' as const, shape: [1, 8, 4, 4], data: new Rng('x').fillNormal(new Float32Array(128)) } };

  it('big layers become dequantising subgraphs; small ones and biases stay float32; output stays close', async () => {
    const base = new K.RandomWeights(4, 0.1);
    const y0 = model(new K.Builder(base), x);
    const exact = (await (await rt.load(K.compileGraph([x], { y: y0 }))).run(feed)).y.data as Float32Array;
    for (const [scheme, bound] of [['int8', 0.02], ['nf4', 0.2], ['fp8_e4m3', 0.06]] as const) {
      const qw = new QuantizedWeights(base, { scheme, minElements: 2000, keepOriginals: true });
      const y = model(new K.Builder(qw), x);
      const g = K.compileGraph([x], { y });
      const out = (await (await rt.load(g)).run(feed)).y.data as Float32Array;
      expect([...qw.layers.keys()]).toEqual(['conv_in.weight', 'ff.weight', 'proj.weight']);
      expect(relErr(out, exact)).toBeLessThan(bound);
      // Initializers shrink by about the float32 bytes saved.
      const plainBytes = K.compileGraph([x], { y: y0 }).initializerBytes;
      const s = qw.summary();
      expect(plainBytes - g.initializerBytes).toBeGreaterThan((s.linear.savedBytes + s.conv.savedBytes) * 0.9);
      const report = await measureQuantization(qw, rt);
      expect(report.linear.layers).toBe(2);
      expect(report.conv.layers).toBe(1);
      expect(report.linear.outputRelError).toBeGreaterThan(0);
      expect(report.linear.outputRelError).toBeLessThan(bound); // one layer's error; the model stacks three
      expect(report.conv.savedBytes).toBe(s.conv.savedBytes);
    }
  });

  it('the report names a missing original', async () => {
    const qw = new QuantizedWeights(new K.RandomWeights(4, 0.1), { scheme: 'int8', minElements: 2000 });
    model(new K.Builder(qw), x);
    await expect(measureQuantization(qw, rt)).rejects.toThrow(/'conv_in.weight' kept no float32 original/);
  });
});
