// The Qwen3 text encoder of FLUX.2 [klein]: a real-style byte-level BPE tokenizer.json written here and
// run by @huggingface/tokenizers (chat template, round trips, padding, truncation); full-size feature
// shapes without weights; the tiny encoder in ORT is causal and blind to padding.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { buildByteLevelBpeTokenizerJson } from '../../../kernels/flux/bpe-tokenizer-json';
import { Qwen3PromptTokenizer, qwen3ChatText } from '../../../kernels/flux/qwen3-tokenizer';
import { QWEN3_4B, QWEN3_8B, QWEN3_TINY, qwen3FeatureDim, qwen3TextFeatures } from '../../../kernels/flux/qwen3';
import { runtime } from '../gradcheck';

afterAll(() => runtime().close());

const corpus = ['a red circle on a blue background', 'a green square on a yellow background', 'photo of sks star', 'a red star, a blue star'];
const dir = mkdtempSync(join(tmpdir(), 'qwen3-tok-'));
const path = join(dir, 'tokenizer.json');
writeFileSync(path, JSON.stringify(buildByteLevelBpeTokenizerJson(corpus, 60)));

describe('Qwen3 prompt tokenizer', () => {
  const tok = Qwen3PromptTokenizer.fromFiles(path, undefined, 40);

  it('round trips prompts through the chat template, including non-ASCII text and numbers', () => {
    for (const p of ['a red circle on a blue background', 'café ✨ 42 items', 'photo of [trigger]\nsecond line', '']) {
      const ids = tok.promptIds(p);
      expect(tok.decode(ids)).toBe(qwen3ChatText(p));
    }
  });

  it('specials are single tokens; learned merges shorten known words', () => {
    const ids = tok.promptIds('red');
    const im = tok.tokenizer.token_to_id('<|im_start|>')!;
    expect(ids[0]).toBe(im);
    expect(ids.filter((i) => i === im)).toHaveLength(2);
    expect(ids).toContain(tok.tokenizer.token_to_id('<think>'));
    expect(ids).toContain(tok.tokenizer.token_to_id('</think>'));
    expect(tok.tokenizer.tokenize(' background').length).toBeLessThan(' background'.length);
    expect(tok.tokenizer.tokenize(' xylophone').length).toBe(' xylophone'.length);
  });

  it('pads with <|endoftext|> and a zero mask, truncates to the maximum length', () => {
    const enc = tok.encode(['red', 'a red circle on a blue background '.repeat(4)]);
    expect(enc.ids.shape).toEqual([2, 40]);
    const n = enc.lengths[0];
    expect(n).toBe(tok.promptIds('red').length);
    expect(Number((enc.ids.data as BigInt64Array)[n])).toBe(tok.padId);
    expect([...(enc.mask.data as Float32Array).slice(0, 40)].reduce((a, b) => a + b)).toBe(n);
    expect(enc.lengths[1]).toBe(40);
    expect([...(enc.mask.data as Float32Array).slice(40)].every((v) => v === 1)).toBe(true);
  });

  it('a file that is not a Qwen tokenizer is named', () => {
    const bad = join(dir, 'broken.json');
    writeFileSync(bad, '{"model": ');
    expect(() => Qwen3PromptTokenizer.fromFiles(bad)).toThrow(/broken\.json/);
  });
});

describe('Qwen3 text features', () => {
  for (const [cfg, width] of [[QWEN3_4B, 7680], [QWEN3_8B, 12288]] as const) {
    it(`${cfg.name}: [1, 512, ${width}] features from 27 layers, computed without weights`, () => {
      const rec = new K.ShapeRecorder();
      const y = qwen3TextFeatures(new K.Builder(rec), cfg, K.input('ids', [1, 512], 'int64'), K.input('mask', [1, 512]));
      expect(y.shape).toEqual([1, 512, width]);
      expect(qwen3FeatureDim(cfg)).toBe(width);
      expect(rec.shapes.size).toBe(1 + 27 * 11);
      expect(rec.shapes.has('model.layers.26.mlp.down_proj.weight')).toBe(true);
      expect(rec.shapes.has('model.layers.27.input_layernorm.weight')).toBe(false);
      expect(rec.shapes.get('model.layers.0.self_attn.k_proj.weight')).toEqual([8 * 128, cfg.hiddenSize]);
      expect(rec.shapes.get('model.layers.0.self_attn.q_norm.weight')).toEqual([128]);
      expect(rec.shapes.get('model.embed_tokens.weight')).toEqual([151936, cfg.hiddenSize]);
    });
  }

  it('tiny encoder: padding and later tokens do not change a token’s features', async () => {
    const w = new K.RandomWeights(11, 0.2);
    const graph = async (len: number) => {
      const ids = K.input('ids', [2, len], 'int64');
      const mask = K.input('mask', [2, len]);
      return runtime().load(K.compileGraph([ids, mask], { y: qwen3TextFeatures(new K.Builder(w), QWEN3_TINY, ids, mask) }));
    };
    const feed = (rows: number[][], len: number, real: number[]) => ({
      ids: { dtype: 'int64' as const, shape: [2, len], data: BigInt64Array.from(rows.flatMap((r) => [...r, ...new Array(len - r.length).fill(3)].map(BigInt))) },
      mask: { dtype: 'float32' as const, shape: [2, len], data: Float32Array.from(real.flatMap((n) => Array.from({ length: len }, (_, i) => (i < n ? 1 : 0)))) },
    });
    const a = [5, 9, 200, 17], b = [5, 9, 201, 40, 41, 42];
    const short = (await (await graph(8)).run(feed([a, b], 8, [4, 6]))).y.data as Float32Array;
    const long = (await (await graph(12)).run(feed([a, b], 12, [4, 6]))).y.data as Float32Array;
    const D = qwen3FeatureDim(QWEN3_TINY);
    for (const [row, n] of [[0, 4], [1, 6]]) for (let i = 0; i < n * D; i++) {
      expect(long[row * 12 * D + i]).toBeCloseTo(short[row * 8 * D + i], 5);
    }
    // Rows share their first two tokens, then differ: the first two tokens' features agree, the third's not.
    for (let i = 0; i < 2 * D; i++) expect(short[8 * D + i]).toBeCloseTo(short[i], 5);
    let differs = 0;
    for (let i = 2 * D; i < 3 * D; i++) differs = Math.max(differs, Math.abs(short[8 * D + i] - short[i]));
    expect(differs).toBeGreaterThan(1e-3);
  });
});
