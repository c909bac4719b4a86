// The DiT blocks' attention: plain below the memory budget, chunked above it (or as the Builder's
// attentionChunk says), and a tiny FLUX.2 transformer gives the same output and input gradient either way.
import { describe, it, expect } from 'vitest';
import * as K from '../../../kernels';
import { ATTENTION_CHUNK_BYTES, ditAttention, ropeTables } from '../../../kernels/dit/layers';
import { FLUX2_TINY } from '../../../kernels/flux/config';
import { fluxTransformer, jointPositions } from '../../../kernels/flux/transformer';
import { rand, runtime } from '../gradcheck';

const opOf = (t: K.Tensor) => (t.source.kind === 'op' ? t.source.op : t.source.kind);

describe('ditAttention', () => {
  it('is plain while the scores fit the budget, chunked above it with chunks inside the budget', () => {
    const small = ditAttention(K.input('q', [1, 2, 64, 8]), K.input('k', [1, 2, 64, 8]), K.input('v', [1, 2, 64, 8]));
    expect(opOf(small)).toBe('matmul');
    // 40 heads × 14,040² fp32 scores (a Wan 480×832×33 clip): 31.5 GB whole.
    const [h, l] = [40, 14040];
    const big = ditAttention(K.input('q', [1, h, l, 128]), K.input('k', [1, h, l, 128]), K.input('v', [1, h, l, 128]));
    expect(opOf(big)).toBe('chunkedAttention');
    const chunk = (big.source as unknown as { attrs: { chunk: number } }).attrs.chunk;
    expect(chunk * h * l * 4).toBeLessThanOrEqual(ATTENTION_CHUNK_BYTES);
    expect((chunk + 1) * h * l * 4).toBeGreaterThan(ATTENTION_CHUNK_BYTES);
    expect(opOf(ditAttention(K.input('q', [1, 2, 64, 8]), K.input('k', [1, 2, 64, 8]), K.input('v', [1, 2, 64, 8]), 16))).toBe('chunkedAttention');
    expect(opOf(ditAttention(K.input('q', [1, h, l, 128]), K.input('k', [1, h, l, 128]), K.input('v', [1, h, l, 128]), 0))).toBe('matmul');
  });

  it('a tiny FLUX.2 transformer with attentionChunk 5 matches plain attention (output and d/dimg)', async () => {
    const T = 6, ROWS = 3, COLS = 3;
    const w = new K.RandomWeights(3, 0.1);
    const feeds = {
      img: { dtype: 'float32' as const, shape: [1, ROWS * COLS, 128], data: rand(ROWS * COLS * 128) },
      txt: { dtype: 'float32' as const, shape: [1, T, FLUX2_TINY.contextDim], data: rand(T * FLUX2_TINY.contextDim) },
      t: { dtype: 'float32' as const, shape: [1], data: new Float32Array([0.4]) },
    };
    const run = async (chunk: number | undefined) => {
      const img = K.input('img', [1, ROWS * COLS, 128]), txt = K.input('txt', [1, T, FLUX2_TINY.contextDim]), t = K.input('t', [1]);
      const b = new K.Builder(w);
      b.attentionChunk = chunk;
      const y = fluxTransformer(b, FLUX2_TINY, { img, txt, timesteps: t, rope: ropeTables(jointPositions(FLUX2_TINY, T, ROWS, COLS), FLUX2_TINY.axesDim, FLUX2_TINY.theta) });
      const [g] = K.grad(K.reduceSum(K.square(y)), [img]);
      return (await runtime().load(K.compileGraph([img, txt, t], { y, g }))).run(feeds);
    };
    const [plain, chunked] = [await run(undefined), await run(5)];
    for (const key of ['y', 'g']) {
      const a = plain[key].data as Float32Array, c = chunked[key].data as Float32Array;
      let worst = 0, scale = 0;
      for (let i = 0; i < a.length; i++) { worst = Math.max(worst, Math.abs(a[i] - c[i])); scale = Math.max(scale, Math.abs(a[i])); }
      expect(scale).toBeGreaterThan(0);
      expect(worst / scale).toBeLessThan(1e-5);
    }
  });
});
