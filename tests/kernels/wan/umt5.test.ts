// Wan's umT5 text encoder: full-size shapes (a bias table in each of the 24 layers) without weights,
// the relative-position bias's gradient against finite differences, and the tiny encoder with a
// tokenizer.json written here: [B, 512, d] features that are the prompt's own features up to </s>
// and exact zeros after.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { UMT5_TINY, UMT5_XXL, wanPromptTokens, wanTextFeatures } from '../../../kernels/wan/umt5';
import { WAN_TINY } from '../../../kernels/wan/config';
import { t5Encoder, type T5Config } from '../../../kernels/text/t5';
import { T5PromptTokenizer } from '../../../kernels/text/t5-tokenizer';
import { buildUnigramTokenizerJson } from '../../../kernels/text/unigram-tokenizer-json';
import { gradCheck, runtime } from '../gradcheck';

afterAll(() => runtime().close());

describe('umT5 (Wan text encoder)', () => {
  it('umT5-XXL: [1, 512, 4096], a relative-position bias per layer, 5.68 B parameters, without weights', () => {
    const rec = new K.ShapeRecorder();
    const y = wanTextFeatures(new K.Builder(rec), UMT5_XXL, K.input('ids', [1, 512], 'int64'), K.input('mask', [1, 512]));
    expect(y.shape).toEqual([1, 512, 4096]);
    let n = 0;
    for (const s of rec.shapes.values()) n += s.reduce((a, d) => a * d, 1);
    const perLayer = 4 * 4096 * 4096 + 3 * 4096 * 10240 + 2 * 4096 + 32 * 64;
    expect(n).toBe(256384 * 4096 + 24 * perLayer + 4096);
    expect((n / 1e9).toFixed(2)).toBe('5.68');
    expect(rec.shapes.get('encoder.block.23.layer.0.SelfAttention.relative_attention_bias.weight')).toEqual([32, 64]);
    expect(rec.shapes.get('shared.weight')).toEqual([256384, 4096]);
    expect(UMT5_TINY.dModel).toBe(WAN_TINY.textDim);
  });

  it('gradient w.r.t. each layer\'s relative-position bias table matches finite differences', async () => {
    const cfg: T5Config = { ...UMT5_TINY, vocabSize: 6, dModel: 8, dKv: 2, dFf: 8, numLayers: 2, numHeads: 2, relativeBuckets: 4, relativeMaxDistance: 8 };
    const base = new K.RandomWeights(9, 0.8);
    const make = (bias0: K.Tensor, bias1: K.Tensor): K.WeightSource => ({
      get: (path, shape) => path === 'encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight' ? bias0
        : path === 'encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight' ? bias1 : base.get(path, shape),
    });
    const ids: K.HostTensor = { dtype: 'int64', shape: [1, 5], data: BigInt64Array.from([1n, 3n, 5n, 2n, 0n]) };
    const mask: K.HostTensor = { dtype: 'float32', shape: [1, 5], data: Float32Array.from([1, 1, 1, 1, 0]) };
    const err = await gradCheck((b0, b1, i, m) => wanTextFeatures(new K.Builder(make(b0, b1)), cfg, i, m), [
      { shape: [4, 2] }, { shape: [4, 2] }, { shape: [1, 5], fixed: ids }, { shape: [1, 5], fixed: mask },
    ], { directions: 4, eps: 1e-2 });
    expect(err).toBeLessThan(1e-2);
  });

  it('tiny: 512 tokens, the prompt\'s own features up to </s> and zeros after (trimmed, zero-padded)', async () => {
    const tok = new T5PromptTokenizer(buildUnigramTokenizerJson(['a red circle moves left', 'a blue square moves up']));
    const { ids, mask } = wanPromptTokens(tok, ['a  red circle\nmoves left', 'a blue square moves up and up']);
    expect(ids.shape).toEqual([2, 512]);
    const real = [0, 1].map((r) => (mask.data as Float32Array).slice(r * 512, (r + 1) * 512).reduce((a, v) => a + v, 0));
    expect(real).toEqual([6, 10]); // words + </s>; the unseen 'and' is spelled out in 3 pieces
    expect(Number((ids.data as BigInt64Array)[5])).toBe(tok.eosId);
    const w = new K.RandomWeights(4, 0.2);
    const idsIn = K.input('ids', [2, 512], 'int64'), maskIn = K.input('mask', [2, 512]);
    const y = wanTextFeatures(new K.Builder(w), UMT5_TINY, idsIn, maskIn);
    const out = (await (await runtime().load(K.compileGraph([idsIn, maskIn], { y }))).run({ ids, mask })).y.data as Float32Array;
    // The first prompt alone at its real length, no padding at all.
    const short = K.input('ids', [1, 6], 'int64');
    const ys = t5Encoder(new K.Builder(w), UMT5_TINY, short);
    const alone = (await (await runtime().load(K.compileGraph([short], { y: ys }))).run({ ids: { dtype: 'int64', shape: [1, 6], data: (ids.data as BigInt64Array).slice(0, 6) } })).y.data as Float32Array;
    let diff = 0, mag = 0;
    for (let i = 0; i < 6 * 32; i++) { diff = Math.max(diff, Math.abs(out[i] - alone[i])); mag = Math.max(mag, Math.abs(alone[i])); }
    expect(mag).toBeGreaterThan(1e-2);
    expect(diff).toBeLessThan(1e-5 * Math.max(1, mag));
    expect(out.slice(6 * 32, 512 * 32).every((v) => v === 0)).toBe(true);
    expect(out.slice((512 + 10) * 32, 1024 * 32).every((v) => v === 0)).toBe(true);
    expect(out.slice((512 + 9) * 32, (512 + 10) * 32).some((v) => v !== 0)).toBe(true);
  });
});
