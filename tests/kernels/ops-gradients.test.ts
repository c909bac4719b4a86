// Every op's vector-Jacobian product against central finite differences, plus a composed network.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../kernels';
import { gradCheck, rand, runtime } from './gradcheck';

const TOL = 2e-2;
const pos = (n: number) => rand(n).map((v) => Math.abs(v) + 0.5);

afterAll(() => runtime().close());

const cases: [string, (...x: K.Tensor[]) => K.Tensor, { shape: number[]; data?: Float32Array; fixed?: K.HostTensor }[]][] = [
  ['add (broadcast)', (a, b) => K.add(a, b), [{ shape: [2, 3] }, { shape: [3] }]],
  ['sub (broadcast)', (a, b) => K.sub(a, b), [{ shape: [2, 1] }, { shape: [2, 3] }]],
  ['mul (broadcast)', (a, b) => K.mul(a, b), [{ shape: [2, 3, 1] }, { shape: [1, 4] }]],
  ['div', (a, b) => K.div(a, b), [{ shape: [2, 3] }, { shape: [2, 3], data: pos(6) }]],
  ['pow', (a, b) => K.pow(a, b), [{ shape: [5], data: pos(5) }, { shape: [5] }]],
  ['neg', (a) => K.neg(a), [{ shape: [4] }]],
  ['exp', (a) => K.exp(a), [{ shape: [4] }]],
  ['log', (a) => K.log(a), [{ shape: [4], data: pos(4) }]],
  ['sqrt', (a) => K.sqrt(a), [{ shape: [4], data: pos(4) }]],
  ['rsqrt', (a) => K.rsqrt(a), [{ shape: [4], data: pos(4) }]],
  ['abs', (a) => K.abs(a), [{ shape: [4], data: Float32Array.from([0.5, -0.7, 0.3, -0.2]) }]],
  ['tanh', (a) => K.tanh(a), [{ shape: [4] }]],
  ['sigmoid', (a) => K.sigmoid(a), [{ shape: [4] }]],
  ['erf', (a) => K.erf(a), [{ shape: [4] }]],
  ['sin', (a) => K.sin(a), [{ shape: [4] }]],
  ['cos', (a) => K.cos(a), [{ shape: [4] }]],
  ['where', (a, b) => K.where(K.greater(a, 0), a, b), [{ shape: [6], data: Float32Array.from([0.5, -0.5, 0.2, -0.3, 0.9, -0.1]) }, { shape: [6] }]],
  ['maximum', (a, b) => K.maximum(a, b), [{ shape: [4], data: Float32Array.from([0.5, -0.5, 0.2, -0.3]) }, { shape: [4], data: Float32Array.from([0.1, 0.1, 0.6, -0.6]) }]],
  ['minimum', (a, b) => K.minimum(a, b), [{ shape: [4], data: Float32Array.from([0.5, -0.5, 0.2, -0.3]) }, { shape: [4], data: Float32Array.from([0.1, 0.1, 0.6, -0.6]) }]],
  ['clip', (a) => K.clip(a, -0.4, 0.4), [{ shape: [4], data: Float32Array.from([0.5, -0.5, 0.2, -0.3]) }]],
  ['matmul (batched, broadcast)', (a, b) => K.matmul(a, b), [{ shape: [2, 3, 4] }, { shape: [4, 5] }]],
  ['matmul (both batched)', (a, b) => K.matmul(a, b), [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 2] }]],
  ['linear (3D input, bias)', (x, w, b) => K.linear(x, w, b), [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }]],
  ['linear (2D input)', (x, w) => K.linear(x, w), [{ shape: [3, 4] }, { shape: [2, 4] }]],
  ['reduceSum axes keepdims', (a) => K.reduceSum(a, [0, 2], true), [{ shape: [2, 3, 4] }]],
  ['reduceMean', (a) => K.reduceMean(a, 1), [{ shape: [2, 3, 4] }]],
  ['reduceMax', (a) => K.reduceMax(a, -1), [{ shape: [3, 4] }]],
  ['softmax', (a) => K.softmax(a, -1), [{ shape: [2, 5] }]],
  ['layerNorm', (x, w, b) => K.layerNorm(x, w, b), [{ shape: [3, 6] }, { shape: [6] }, { shape: [6] }]],
  ['groupNorm', (x, w, b) => K.groupNorm(x, 2, w, b), [{ shape: [2, 4, 3, 3] }, { shape: [4] }, { shape: [4] }]],
  ['gelu (erf)', (a) => K.gelu(a), [{ shape: [5] }]],
  ['gelu (tanh)', (a) => K.gelu(a, 'tanh'), [{ shape: [5] }]],
  ['silu', (a) => K.silu(a), [{ shape: [5] }]],
  ['conv2d 3x3 pad 1 + bias', (x, w, b) => K.conv2d(x, w, b, { padding: 1 }), [{ shape: [2, 3, 5, 5] }, { shape: [4, 3, 3, 3] }, { shape: [4] }]],
  ['conv2d stride 2', (x, w) => K.conv2d(x, w, undefined, { stride: 2, padding: 1 }), [{ shape: [1, 2, 6, 6] }, { shape: [3, 2, 3, 3] }]],
  ['conv2d stride 2 odd input', (x, w) => K.conv2d(x, w, undefined, { stride: 2, padding: 1 }), [{ shape: [1, 2, 7, 5] }, { shape: [3, 2, 3, 3] }]],
  ['conv2d dilation 2', (x, w) => K.conv2d(x, w, undefined, { dilation: 2, padding: 2 }), [{ shape: [1, 2, 6, 6] }, { shape: [2, 2, 3, 3] }]],
  ['conv2d groups 2', (x, w) => K.conv2d(x, w, undefined, { groups: 2, padding: 1 }), [{ shape: [1, 4, 4, 4] }, { shape: [6, 2, 3, 3] }]],
  ['conv2d 1x1', (x, w) => K.conv2d(x, w), [{ shape: [2, 3, 4, 4] }, { shape: [5, 3, 1, 1] }]],
  ['upsampleNearest2x', (x) => K.upsampleNearest2x(x), [{ shape: [1, 2, 3, 3] }]],
  ['reshape', (a) => K.reshape(a, [3, -1]), [{ shape: [2, 3, 2] }]],
  ['transpose', (a) => K.transpose(a, [2, 0, 1]), [{ shape: [2, 3, 4] }]],
  ['slice', (a) => K.slice(a, [1, 0], [3, 2], [0, 2]), [{ shape: [4, 3, 3] }]],
  ['concat', (a, b) => K.concat([a, b], 1), [{ shape: [2, 3] }, { shape: [2, 2] }]],
  ['split', (a) => K.mul(K.split(a, [1, 2], 0)[1], 2), [{ shape: [3, 2] }]],
  ['gather axis 0 (repeated indices)', (a, i) => K.gather(a, i, 0), [{ shape: [4, 3] }, { shape: [3], fixed: { dtype: 'int64', shape: [3], data: BigInt64Array.from([2n, 0n, 2n]) } }]],
  ['gather axis 1', (a, i) => K.gather(a, i, 1), [{ shape: [2, 4] }, { shape: [2, 2], fixed: { dtype: 'int64', shape: [2, 2], data: BigInt64Array.from([1n, 3n, 3n, 0n]) } }]],
  ['expand', (a) => K.expand(a, [2, 3, 4]), [{ shape: [3, 1] }]],
  ['pad', (a) => K.pad(a, [1, 0], [0, 2]), [{ shape: [2, 3] }]],
  ['cast roundtrip', (a) => K.cast(K.cast(a, 'float16'), 'float32'), [{ shape: [4] }]],
  ['attention', (q, k, v) => K.scaledDotProductAttention(q, k, v), [{ shape: [2, 3, 4] }, { shape: [2, 5, 4] }, { shape: [2, 5, 4] }]],
  ['attention causal', (q, k, v) => K.scaledDotProductAttention(q, k, v, { causal: true }), [{ shape: [1, 4, 4] }, { shape: [1, 4, 4] }, { shape: [1, 4, 4] }]],
];

describe('op gradients match central finite differences', () => {
  for (const [name, f, inputs] of cases) {
    it(name, async () => {
      const err = await gradCheck(f, inputs, name.startsWith('cast') ? { eps: 0.25 } : {});
      expect(err).toBeLessThan(name.startsWith('cast') ? 5e-2 : TOL);
    });
  }

  it('composed network: conv + group norm + attention + linear', async () => {
    const net = (x: K.Tensor, cw: K.Tensor, gw: K.Tensor, gb: K.Tensor, lw: K.Tensor) => {
      const h = K.silu(K.groupNorm(K.conv2d(x, cw, undefined, { padding: 1 }), 2, gw, gb)); // [1,4,3,3]
      const seq = K.transpose(K.reshape(h, [1, 4, 9]), [0, 2, 1]);                             // [1,9,4]
      const a = K.scaledDotProductAttention(seq, seq, seq);
      return K.linear(a, lw);
    };
    const err = await gradCheck(net, [{ shape: [1, 2, 3, 3] }, { shape: [4, 2, 3, 3] }, { shape: [4] }, { shape: [4] }, { shape: [3, 4] }], { directions: 4 });
    expect(err).toBeLessThan(TOL);
  });
});
