// The umT5 encoder's numbers against a direct JavaScript computation of the layer as transformers' UMT5 writes
// it: pre-RMS norm (no mean subtraction, no bias), attention scores q·k without the 1/√d factor plus each layer's
// own relative-position bias (key − query, bidirectional log buckets), padded keys masked, the gated GELU-tanh
// feed-forward wo(gelu_tanh(wi_0 y) ⊙ wi_1 y), final RMS norm. A 1/√d factor, a plain (erf) GELU, a bias table
// shared across layers or a LayerNorm in place of the RMS norm each moves the features past the bound.
import { afterAll, describe, expect, it } from 'vitest';
import * as K from '../../../kernels';
import { relativePositionBucket, t5Encoder, type T5Config } from '../../../kernels/text/t5';
import { UMT5_TINY } from '../../../kernels/wan/umt5';
import { runtime } from '../gradcheck';

afterAll(() => runtime().close());

const CFG: T5Config = { ...UMT5_TINY, name: 'umt5-micro', vocabSize: 7, dModel: 8, dKv: 4, dFf: 12, numLayers: 2, numHeads: 2, relativeBuckets: 8, relativeMaxDistance: 16, biasPerLayer: true };

/** transformers' UMT5 encoder forward for one sequence, from the weights by name. */
function reference(w: (name: string) => Float32Array, ids: number[], mask: number[]): Float64Array[] {
  const { dModel: d, dKv, dFf, numHeads: H, layerNormEps: eps } = CFG;
  const L = ids.length, inner = H * dKv;
  const rms = (x: Float64Array, g: Float32Array) => {
    const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
    return x.map((v, i) => (v / Math.sqrt(ms + eps)) * g[i]!);
  };
  const lin = (x: Float64Array, W: Float32Array, inF: number, outF: number) =>
    Float64Array.from({ length: outF }, (_, o) => { let s = 0; for (let i = 0; i < inF; i++) s += W[o * inF + i]! * x[i]!; return s; });
  const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const emb = w('shared.weight');
  let h = ids.map((t) => Float64Array.from(emb.subarray(t * d, (t + 1) * d)));
  for (let l = 0; l < CFG.numLayers; l++) {
    const p = `encoder.block.${l}.layer.`;
    const table = w(`${p}0.SelfAttention.relative_attention_bias.weight`); // [buckets, heads]
    const x = h.map((r) => rms(r, w(`${p}0.layer_norm.weight`)));
    const [q, k, v] = ['q', 'k', 'v'].map((n) => x.map((r) => lin(r, w(`${p}0.SelfAttention.${n}.weight`), d, inner)));
    const attended = Array.from({ length: L }, () => new Float64Array(inner));
    for (let hd = 0; hd < H; hd++) for (let i = 0; i < L; i++) {
      const scores = Array.from({ length: L }, (_, j) => {
        if (!mask[j]) return -Infinity;
        let s = 0;
        for (let c = 0; c < dKv; c++) s += q[i]![hd * dKv + c]! * k[j]![hd * dKv + c]!;
        return s + table[relativePositionBucket(j - i, CFG.relativeBuckets, CFG.relativeMaxDistance) * H + hd]!;
      });
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < L; j++) for (let c = 0; c < dKv; c++) attended[i]![hd * dKv + c]! += (e[j]! / z) * v[j]![hd * dKv + c]!;
    }
    h = h.map((r, i) => { const o = lin(attended[i]!, w(`${p}0.SelfAttention.o.weight`), inner, d); return r.map((a, c) => a + o[c]!); });
    h = h.map((r) => {
      const y = rms(r, w(`${p}1.layer_norm.weight`));
      const a = lin(y, w(`${p}1.DenseReluDense.wi_0.weight`), d, dFf), b = lin(y, w(`${p}1.DenseReluDense.wi_1.weight`), d, dFf);
      const o = lin(a.map((v, i) => geluTanh(v) * b[i]!), w(`${p}1.DenseReluDense.wo.weight`), dFf, d);
      return r.map((v, c) => v + o[c]!);
    });
  }
  return h.map((r) => rms(r, w('encoder.final_layer_norm.weight')));
}

describe('umT5 against a direct computation', () => {
  it('two layers with their own bias tables, a padded key masked: features equal transformers\' UMT5 forward', async () => {
    const rw = new K.RandomWeights(21, 0.9);
    const ids = [3, 1, 5, 2, 0], mask = [1, 1, 1, 1, 0];
    const idsIn = K.input('ids', [1, ids.length], 'int64'), maskIn = K.input('mask', [1, ids.length]);
    const y = t5Encoder(new K.Builder(rw), CFG, idsIn, { mask: maskIn });
    const s = await runtime().load(K.compileGraph([idsIn, maskIn], { y }));
    const got = (await s.run({
      ids: { dtype: 'int64', shape: [1, ids.length], data: BigInt64Array.from(ids.map(BigInt)) },
      mask: { dtype: 'float32', shape: [1, ids.length], data: Float32Array.from(mask) },
    })).y.data as Float32Array;
    const weight = (name: string) => {
      const t = rw.tensors.get(name);
      if (!t) throw new Error(`no weight ${name}`);
      return t.data as Float32Array;
    };
    // Each layer has a table of its own (umT5), and they differ.
    expect(weight('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'))
      .not.toEqual(weight('encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight'));
    const want = reference(weight, ids, mask).flatMap((r) => [...r]);
    expect(got.length).toBe(want.length);
    const diff = Math.max(...want.map((v, i) => Math.abs(v - got[i]!)));
    expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(0.5);
    expect(diff).toBeLessThan(1e-4);
  });
});
