// The T5 v1.1 encoder: tokenizer round trips on a real-style Unigram tokenizer.json written here,
// relative-position buckets as transformers computes them, full-size T5-XXL shapes without weights,
// and the tiny encoder in ORT (its padding mask hides padded keys; without a mask every token counts).
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { T5_XXL, relativePositionBucket, t5Encoder, type T5Config } from '../../../kernels/text/t5';
import { T5PromptTokenizer } from '../../../kernels/text/t5-tokenizer';
import { buildUnigramTokenizerJson } from '../../../kernels/text/unigram-tokenizer-json';
import { runtime } from '../gradcheck';

afterAll(() => runtime().close());

describe('T5 tokenizer', () => {
  const tok = new T5PromptTokenizer(buildUnigramTokenizerJson(['a red circle on a blue background', 'photo of sks dog', 'a green square']));
  it('round trips prompts; words are single pieces, unseen words spelled out, unknown characters <unk>', () => {
    for (const p of ['a red circle on a blue background', 'photo of a green dog', 'bread']) {
      const { ids } = tok.tokenize(p, { maxLength: 32 });
      expect(tok.decode(ids)).toBe(p);
    }
    expect(tok.tokenizer.tokenize('a red circle')).toEqual(['▁a', '▁red', '▁circle']);
    expect(tok.tokenizer.tokenize('bread').length).toBeGreaterThan(1);
    // A character the vocabulary lacks is <unk> (id 2), as SentencePiece without byte fallback does.
    expect(tok.tokenize('zebra', { maxLength: 8 }).ids).toContain(2);
  });
  it('</s> ends the prompt, <pad> fills, long prompts keep their </s>', () => {
    const { ids } = tok.tokenize('a red circle', { maxLength: 6 });
    expect(ids.slice(3)).toEqual([tok.eosId, tok.padId, tok.padId]);
    const long = tok.tokenize('a red circle on a blue background', { maxLength: 4 }).ids;
    expect(long).toHaveLength(4);
    expect(long[3]).toBe(tok.eosId);
    expect([tok.padId, tok.eosId]).toEqual([0, 1]);
  });
});

describe('T5 encoder', () => {
  it('relative position buckets (32 buckets, max distance 128) as transformers computes them', () => {
    const b = (r: number) => relativePositionBucket(r, 32, 128);
    expect([0, -1, -7, 1, 7, 8].map(b)).toEqual([0, 1, 7, 17, 23, 24]);
    expect(b(-8)).toBe(8);
    expect(b(-12)).toBe(8 + Math.floor((Math.log(12 / 8) / Math.log(16)) * 8));
    expect(b(-1000)).toBe(15);
    expect(b(1000)).toBe(31);
  });

  it('T5-XXL: [1, 512, 4096] from 24 layers and 4.762 B parameters, without weights', () => {
    const rec = new K.ShapeRecorder();
    const y = t5Encoder(new K.Builder(rec), T5_XXL, K.input('ids', [1, 512], 'int64'));
    expect(y.shape).toEqual([1, 512, 4096]);
    let n = 0;
    for (const s of rec.shapes.values()) n += s.reduce((a, d) => a * d, 1);
    expect(n).toBe(4_762_310_656);
    expect(rec.shapes.get('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight')).toEqual([32, 64]);
    expect(rec.shapes.has('encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight')).toBe(false);
    expect(rec.shapes.get('encoder.block.23.layer.1.DenseReluDense.wi_1.weight')).toEqual([10240, 4096]);
    expect(rec.shapes.size).toBe(1 + 24 * 9 + 1 + 1);
  });

  it('tiny: with a mask, padding changes no real token; without one (BFL), it does', async () => {
    const cfg: T5Config = { ...T5_XXL, name: 'tiny', vocabSize: 40, dModel: 16, dKv: 4, dFf: 24, numLayers: 2, numHeads: 4, relativeBuckets: 8, relativeMaxDistance: 16 };
    const w = new K.RandomWeights(6, 0.3);
    const run = async (len: number, masked: boolean) => {
      const ids = K.input('ids', [1, len], 'int64'), mask = K.input('mask', [1, len]);
      const y = t5Encoder(new K.Builder(w), cfg, ids, { mask: masked ? mask : undefined });
      const s = await runtime().load(K.compileGraph(masked ? [ids, mask] : [ids], { y }));
      const tokens = [5, 9, 13, 1];
      const feed: Record<string, K.HostTensor> = { ids: { dtype: 'int64', shape: [1, len], data: BigInt64Array.from({ length: len }, (_, i) => BigInt(tokens[i] ?? 0)) } };
      if (masked) feed.mask = { dtype: 'float32', shape: [1, len], data: Float32Array.from({ length: len }, (_, i) => (i < 4 ? 1 : 0)) };
      return (await s.run(feed)).y.data as Float32Array;
    };
    const [a, b] = [await run(6, true), await run(10, true)];
    for (let i = 0; i < 4 * 16; i++) expect(b[i]).toBeCloseTo(a[i], 5);
    const [c, d] = [await run(6, false), await run(10, false)];
    let diff = 0;
    for (let i = 0; i < 4 * 16; i++) diff = Math.max(diff, Math.abs(c[i] - d[i]));
    expect(diff).toBeGreaterThan(1e-4);
  });
});
