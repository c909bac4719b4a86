// Memory-efficient (query-chunked) attention: the same values and gradients as plain attention, at
// chunk sizes that do and do not divide the length, inside a recomputed block too; finite-difference
// gradients; and ORT's optimiser keeps the backward's recomputed chunks apart from the forward's.
import { describe, it, expect } from 'vitest';
import * as K from '../../../kernels';
import { recompute } from '../../../kernels/autodiff';
import { chunkedAttention } from '../../../kernels/ops/nn';
import { modelNodes, optimizedModel, type InspectedNode } from '../../../kernels/onnx/inspect';
import { gradCheck, rand, runtime } from '../gradcheck';

const B = 1, H = 2, L = 10, S = 7, D = 4;
const ht = (shape: number[], data = rand(shape.reduce((a, b) => a * b, 1))): K.HostTensor => ({ dtype: 'float32', shape, data });

/** Output and gradients of sum(attn(q, k, v) · r) w.r.t. q, k, v, with `attn` built by `f`. */
async function run(f: (q: K.Tensor, k: K.Tensor, v: K.Tensor) => K.Tensor, feeds: Record<string, K.HostTensor>, r: Float32Array, kvLen = S) {
  const q = K.input('q', [B, H, L, D]), k = K.input('k', [B, H, kvLen, D]), v = K.input('v', [B, H, kvLen, D]);
  const y = f(q, k, v);
  const loss = K.reduceSum(K.mul(y, K.constant(r, y.shape)));
  const [gq, gk, gv] = K.grad(loss, [q, k, v]);
  const s = await runtime().load(K.compileGraph([q, k, v], { y, gq, gk, gv }));
  return s.run(feeds);
}

function close(a: K.HostTensor, b: K.HostTensor, tol: number) {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  expect(worst).toBeLessThan(tol);
}

describe('chunked attention', () => {
  const feeds = { q: ht([B, H, L, D]), k: ht([B, H, S, D]), v: ht([B, H, S, D]) };
  const r = rand(B * H * L * D);

  it('matches plain attention, values and gradients, for chunks that divide L and that do not', async () => {
    const plain = await run((q, k, v) => K.scaledDotProductAttention(q, k, v), feeds, r);
    for (const chunk of [1, 3, 5, 10, 64]) {
      const got = await run((q, k, v) => K.scaledDotProductAttention(q, k, v, { chunk }), feeds, r);
      for (const key of ['y', 'gq', 'gk', 'gv']) close(got[key], plain[key], 1e-5);
    }
  });

  it('matches plain attention with its own scale and inside a recomputed block', async () => {
    const plain = await run((q, k, v) => K.scaledDotProductAttention(q, k, v, { scale: 0.7 }), feeds, r);
    const got = await run((q, k, v) => recompute(() => chunkedAttention(K.mul(q, 1), k, v, 4, 0.7)), feeds, r);
    for (const key of ['y', 'gq', 'gk', 'gv']) close(got[key], plain[key], 1e-5);
  });

  it('passes finite-difference gradient checks on q, k and v', async () => {
    const worst = await gradCheck((q, k, v) => chunkedAttention(q, k, v, 3), [{ shape: [B, H, L, D] }, { shape: [B, H, S, D] }, { shape: [B, H, S, D] }]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('broadcasts k and v over the batch, and refuses a bad chunk size naming it', async () => {
    const kv = { k: ht([1, 1, S, D]), v: ht([1, 1, S, D]) };
    const one = async (chunk?: number) => {
      const q = K.input('q', [B, H, L, D]), k = K.input('k', [1, 1, S, D]), v = K.input('v', [1, 1, S, D]);
      const y = K.scaledDotProductAttention(q, k, v, { chunk });
      const [gk] = K.grad(K.reduceSum(K.mul(y, K.constant(r, y.shape))), [k]);
      return (await runtime().load(K.compileGraph([q, k, v], { y, gk }))).run({ q: feeds.q, ...kv });
    };
    const [a, b] = [await one(), await one(3)];
    close(b.y, a.y, 1e-5);
    close(b.gk, a.gk, 1e-5);
    expect(b.gk.shape).toEqual([1, 1, S, D]);
    expect(() => chunkedAttention(K.input('q', [1, 4, 2]), K.input('k', [1, 4, 2]), K.input('v', [1, 4, 2]), 0)).toThrow(/chunk must be a positive integer, got 0/);
  });

  it('ORT keeps the backward pass recomputing each chunk: the optimised model has a softmax per chunk, twice', async () => {
    const Lb = 20, chunk = 8, chunks = Math.ceil(Lb / chunk);
    const optimised = async (c?: number) => {
      const q = K.input('q', [1, 2, Lb, D]), k = K.input('k', [1, 2, Lb, D]), v = K.input('v', [1, 2, Lb, D]);
      const y = K.scaledDotProductAttention(q, k, v, { chunk: c });
      const gs = K.grad(K.reduceSum(K.square(y)), [q, k, v]);
      return modelNodes(await optimizedModel(K.compileGraph([q, k, v], { gq: gs[0], gk: gs[1], gv: gs[2] }).bytes));
    };
    const softmaxes = (nodes: InspectedNode[]) => nodes.filter((n) => n.opType === 'Softmax').length;
    expect(softmaxes(await optimised())).toBe(1);
    // Forward chunks and their recomputed twins; had ORT merged the twins, there would be `chunks`.
    expect(softmaxes(await optimised(chunk))).toBe(2 * chunks);
  });
});
