// A base stored packed or in half precision, trained WITHOUT gradient checkpointing: the backward pass
// makes each layer's float32 weight again from the stored form (gated on the arriving gradient)
// instead of keeping every forward copy alive until the backward reaches it. Proven on the optimised
// model ORT runs (the backward copies survive its CSE), on the memory estimate (one layer's float32
// weight at a time, not the whole stack), and on the gradients (finite differences, and equal to a
// float32 base holding the dequantised values).
import { describe, it, expect } from 'vitest';
import * as K from '../../../kernels';
import { QuantizedWeights } from '../../../kernels/quant/graph-weights';
import { PrecisionWeights } from '../../../kernels/nn/precision';
import { estimateGraphMemory } from '../../../kernels/train/memory';
import { modelNodes, optimizedModel } from '../../../kernels/onnx/inspect';
import { Rng } from '../../../kernels/random';
import { gradCheck, rand, runtime } from '../gradcheck';

const D = 128, LAYERS = 6, ROWS = 2, RANK = 2;
const host = () => new K.HostWeights(new Map(Array.from({ length: LAYERS }, (_, i) =>
  [`l${i}.weight`, { dtype: 'float32' as const, shape: [D, D], data: new Rng(`w${i}`).fillNormal(new Float32Array(D * D), 0, 0.1) }])));

/** LAYERS frozen D×D layers with a LoRA (down, up) on each, tanh between; returns the output. */
function stack(weights: K.WeightSource, x: K.Tensor, loras: [K.Tensor, K.Tensor][]): K.Tensor {
  let i = 0;
  const b = new K.Builder(weights, (_info, h) => { const [down, up] = loras[i++]; return K.matmul(K.matmul(h, K.transpose(down)), K.transpose(up)); });
  let h = x;
  for (let l = 0; l < LAYERS; l++) h = K.tanh(b.linear(`l${l}`, h, D, D, false));
  return h;
}

function build(weights: K.WeightSource) {
  const x = K.input('x', [ROWS, D]);
  const loras = Array.from({ length: LAYERS }, (_, l) => [K.input(`down${l}`, [RANK, D]), K.input(`up${l}`, [D, RANK])] as [K.Tensor, K.Tensor]);
  const y = stack(weights, x, loras);
  const loss = K.reduceSum(K.mul(y, y));
  const params = loras.flat();
  return { inputs: [x, ...params], loss, params, grads: K.grad(loss, params) };
}

const feeds = (): Record<string, K.HostTensor> => {
  const rng = new Rng('feeds');
  const f: Record<string, K.HostTensor> = { x: { dtype: 'float32', shape: [ROWS, D], data: rng.fillNormal(new Float32Array(ROWS * D)) } };
  for (let l = 0; l < LAYERS; l++) {
    f[`down${l}`] = { dtype: 'float32', shape: [RANK, D], data: rng.fillNormal(new Float32Array(RANK * D), 0, 0.1) };
    f[`up${l}`] = { dtype: 'float32', shape: [D, RANK], data: rng.fillNormal(new Float32Array(RANK * D), 0, 0.1) };
  }
  return f;
};

describe('bases below float32 without checkpointing: the backward pass makes its own weights', () => {
  for (const [label, make] of [
    ['int8', () => new QuantizedWeights(host(), { scheme: 'int8', minElements: 1 })],
    ['nf4', () => new QuantizedWeights(host(), { scheme: 'nf4', minElements: 1 })],
    ['bf16', () => new PrecisionWeights(host(), { precision: 'bf16', minElements: 1 })],
  ] as [string, () => K.WeightSource][]) {
    it(`${label}: one layer's float32 weight is live at a time, and ORT keeps the backward copies`, async () => {
      const g = build(make());
      const e = estimateGraphMemory([g.loss, ...g.grads]);
      const weight = D * D * 4;
      // Forward copies die after their layer; the backward's are made one layer at a time. Keeping the
      // forward copies (the old behaviour) held all LAYERS of them at the loss.
      expect(e.live).toBeLessThan(2.5 * weight);
      const nodes = modelNodes(await optimizedModel(K.compileGraph(g.inputs, { loss: g.loss, ...Object.fromEntries(g.grads.map((t, i) => [`g${i}`, t])) }).bytes));
      // Each stored weight is read (through the gated Reshape) once in the forward and once in the
      // backward, but the first layer's: no gradient goes back through it (x is not trained).
      // Had CSE merged the two, each stored weight would be read once.
      const reads = nodes.filter((n) => /^l\d+\.weight/.test(n.inputs[0] ?? ''));
      expect(reads.length).toBe(2 * LAYERS - 1);
    });
  }

  it('int8: LoRA gradients match finite differences and a float32 base holding the dequantised weights', async () => {
    const q = new QuantizedWeights(host(), { scheme: 'int8', minElements: 1, keepOriginals: true });
    const worst = await gradCheck((x, down, up) => {
      const loras = Array.from({ length: LAYERS }, (_, l) => (l === 2 ? [down, up] : [K.constant(rand(RANK * D, 0.1), [RANK, D]), K.constant(rand(RANK * D, 0.1), [D, RANK])]) as [K.Tensor, K.Tensor]);
      return stack(q, x, loras);
    }, [{ shape: [ROWS, D] }, { shape: [RANK, D], data: rand(RANK * D, 0.1) }, { shape: [D, RANK], data: rand(RANK * D, 0.1) }]);
    expect(worst).toBeLessThan(2e-2);

    // The same stack on float32 weights equal to the dequantised ones gives the same gradients.
    const quant = build(q);
    const dequantised = new K.HostWeights(new Map([...q.layers.values()].map((l) => {
      const { packed, scales } = l.quantized as { packed: Int8Array; scales: Float32Array };
      return [l.path, { dtype: 'float32' as const, shape: l.shape, data: Float32Array.from(packed, (c, k) => c * scales[Math.floor(k / D)]) }];
    })));
    const plain = build(dequantised);
    const run = async (b: ReturnType<typeof build>) => (await runtime().load(K.compileGraph(b.inputs, { loss: b.loss, ...Object.fromEntries(b.grads.map((t, i) => [`g${i}`, t])) }))).run(feeds());
    const [a, b] = [await run(quant), await run(plain)];
    expect(Math.abs((a.loss.data[0] as number) / (b.loss.data[0] as number) - 1)).toBeLessThan(1e-5);
    for (let i = 0; i < 2 * LAYERS; i++) {
      const ga = a[`g${i}`].data as Float32Array, gb = b[`g${i}`].data as Float32Array;
      let num = 0, den = 0;
      for (let k = 0; k < ga.length; k++) { num = Math.max(num, Math.abs(ga[k] - gb[k])); den = Math.max(den, Math.abs(gb[k])); }
      expect(num / den).toBeLessThan(1e-4);
    }
  });
});
