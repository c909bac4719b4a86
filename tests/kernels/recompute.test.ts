// Gradient checkpointing: blocks built under `recompute` give the same gradients as without it
// (finite differences, and the tiny UNet against itself), and ORT's optimiser keeps the recomputed
// copies apart from the forward pass — counted on the model ORT writes after optimising.
import { describe, it, expect } from 'vitest';
import * as K from '../../kernels';
import { recompute } from '../../kernels/autodiff';
import { modelNodes, optimizedModel, type InspectedNode } from '../../kernels/onnx/inspect';
import { quantizeWeight } from '../../kernels/quant';
import { dequantizeInGraph } from '../../kernels/quant/dequant';
import { QuantizedWeights } from '../../kernels/quant/graph-weights';
import { tinyConfig } from '../../kernels/sd/config';
import { unet } from '../../kernels/sd/unet';
import { Rng } from '../../kernels/random';
import { gradCheck, rand, runtime } from './gradcheck';

const D = 16;
const weight = (seed: string, rows = D, cols = D) => new Rng(seed).fillNormal(new Float32Array(rows * cols), 0, 0.3);

/** n blocks of x + tanh(x Wᵀ + x Aᵀ Bᵀ), frozen W (float32 or int8 dequantised in the block), LoRA A, B. */
function chain(x: K.Tensor, a: K.Tensor, b: K.Tensor, n: number, opts: { checkpoint: boolean; int8?: boolean }) {
  let h = x;
  for (let i = 0; i < n; i++) {
    const hin = h;
    const body = () => {
      const w = opts.int8 ? dequantizeInGraph(quantizeWeight(weight(`w${i}`), [D, D], 'int8'), `w${i}`) : K.constant(weight(`w${i}`), [D, D], 'float32', `w${i}`);
      const lora = K.matmul(K.matmul(hin, K.transpose(a)), K.transpose(b));
      return K.add(hin, K.tanh(K.add(K.linear(hin, w), lora)));
    };
    h = opts.checkpoint ? recompute(body) : body();
  }
  return h;
}

async function gradients(build: (checkpoint: boolean) => { inputs: K.Tensor[]; loss: K.Tensor; params: K.Tensor[] }, feeds: Record<string, K.HostTensor>, checkpoint: boolean) {
  const { inputs, loss, params } = build(checkpoint);
  const gs = K.grad(loss, params);
  const g = K.compileGraph(inputs, { loss, ...Object.fromEntries(gs.map((t, i) => [`g${i}`, t])) });
  const out = await (await runtime().load(g)).run(feeds);
  return { out, graph: g };
}

function maxRelDiff(a: Float32Array, b: Float32Array) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num = Math.max(num, Math.abs(a[i] - b[i])); den = Math.max(den, Math.abs(b[i])); }
  return num / den;
}

describe('recomputation (gradient checkpointing)', () => {
  it('gradients through recomputed blocks match finite differences', async () => {
    const worst = await gradCheck((x, a, b) => chain(x, a, b, 3, { checkpoint: true }), [
      { shape: [4, D] }, { shape: [2, D], data: rand(2 * D, 0.5) }, { shape: [D, 2], data: rand(2 * D, 0.5) },
    ]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('a quantised base read through after(codes, layer input): gradients reach the LoRA parameters only', async () => {
    const rows = 32, cols = 48;
    const base = new K.HostWeights(new Map([['layer.weight', { dtype: 'float32', shape: [rows, cols], data: weight('q', rows, cols) }]]));
    let reads = 0;
    const worst = await gradCheck((x, down, up) => {
      const b = new K.Builder(new QuantizedWeights(base, { scheme: 'int8', minElements: 1 }), (_info, h) => K.matmul(K.matmul(h, K.transpose(down)), K.transpose(up)));
      b.gradientCheckpointing = true;
      const y = b.block(() => K.tanh(b.linear('layer', x, cols, rows, false)));
      // The weight is gated on the layer's input: an 'after' op reads the packed codes.
      reads = K.topoOrder([y]).filter((t) => t.source.kind === 'op' && t.source.op === 'after').length;
      return y;
    }, [{ shape: [3, cols] }, { shape: [2, cols], data: rand(2 * cols, 0.3) }, { shape: [rows, 2], data: rand(2 * rows, 0.3) }]);
    expect(reads).toBe(1);
    expect(worst).toBeLessThan(2e-2);
  });

  it('int8 blocks: the same loss and gradients with and without recomputation', async () => {
    const build = (checkpoint: boolean) => {
      const x = K.input('x', [4, D]), a = K.input('a', [2, D]), b = K.input('b', [D, 2]);
      const y = chain(x, a, b, 4, { checkpoint, int8: true });
      return { inputs: [x, a, b], loss: K.reduceSum(K.mul(y, y)), params: [x, a, b] };
    };
    const feeds: Record<string, K.HostTensor> = {
      x: { dtype: 'float32', shape: [4, D], data: rand(4 * D) },
      a: { dtype: 'float32', shape: [2, D], data: rand(2 * D, 0.5) },
      b: { dtype: 'float32', shape: [D, 2], data: rand(2 * D, 0.5) },
    };
    const plain = await gradients(build, feeds, false);
    const ckpt = await gradients(build, feeds, true);
    expect(ckpt.out.loss.data[0]).toBe(plain.out.loss.data[0]);
    for (const k of ['g0', 'g1', 'g2']) expect(maxRelDiff(ckpt.out[k].data as Float32Array, plain.out[k].data as Float32Array)).toBeLessThan(1e-5);
  });

  it('tiny UNet with LoRA on every attention projection: gradients equal with gradientCheckpointing on', async () => {
    const cfg = tinyConfig(256);
    const rank = 2;
    const context = rand(77 * 64, 1);
    const build = (checkpoint: boolean) => {
      const params: K.Tensor[] = [];
      const inputs: K.Tensor[] = [];
      const b = new K.Builder(new K.RandomWeights(11, 0.15), (info, x) => {
        if (info.kind !== 'linear' || !/attn\d\.to_(q|k|v|out\.0)$/.test(info.module)) return undefined;
        const down = K.input(`${info.module}.down`, [rank, info.inFeatures]);
        const up = K.input(`${info.module}.up`, [info.outFeatures, rank]);
        params.push(down, up);
        inputs.push(down, up);
        return K.matmul(K.matmul(x, K.transpose(down)), K.transpose(up));
      });
      b.gradientCheckpointing = checkpoint;
      const sample = K.input('sample', [1, 4, 8, 8]);
      const pred = unet(b, cfg.unet, { sample, timestep: K.constant([500], [1]), context: K.constant(context, [1, 77, 64]) });
      return { inputs: [sample, ...inputs], loss: K.reduceSum(K.mul(pred, pred)), params: [sample, ...params] };
    };
    const probe = build(false);
    const feeds: Record<string, K.HostTensor> = {};
    const rng = new Rng('unet-ckpt');
    for (const t of probe.inputs) feeds[(t.source as { name: string }).name] = { dtype: 'float32', shape: [...t.shape], data: rng.fillNormal(new Float32Array(t.size), 0, 0.3) };
    const plain = await gradients(build, feeds, false);
    const ckpt = await gradients(build, feeds, true);
    expect(probe.params.length).toBeGreaterThan(8);
    expect(Math.abs((ckpt.out.loss.data[0] as number) - (plain.out.loss.data[0] as number))).toBeLessThan(1e-6 * Math.abs(plain.out.loss.data[0] as number));
    for (let i = 0; i < probe.params.length; i++) {
      expect(maxRelDiff(ckpt.out[`g${i}`].data as Float32Array, plain.out[`g${i}`].data as Float32Array)).toBeLessThan(1e-4);
    }
  });

  it('ORT keeps the recomputed blocks: the optimised model holds each block twice, dequantisation included', async () => {
    const n = 5;
    const optimised = async (checkpoint: boolean) => {
      const x = K.input('x', [4, D]), a = K.input('a', [2, D]), b = K.input('b', [D, 2]);
      const y = chain(x, a, b, n, { checkpoint, int8: true });
      const [ga, gb] = K.grad(K.reduceSum(K.mul(y, y)), [a, b]);
      return modelNodes(await optimizedModel(K.compileGraph([x, a, b], { ga, gb }).bytes));
    };
    const plain = await optimised(false);
    const ckpt = await optimised(true);
    // The rebuilt weights: DequantizeLinear nodes whose codes are computed at run time (read through
    // the gradient-gated Reshape) rather than the initializer, and the frozen linear layers (Gemm,
    // possibly fused) that multiply by them — one of each per block, none without recomputation. Had
    // CSE merged the copies with the forward pass, they would read the initializer.
    const rebuilt = (nodes: InspectedNode[]) => {
      const made = new Set(nodes.flatMap((m) => m.outputs));
      const dq = nodes.filter((m) => m.opType === 'DequantizeLinear' && made.has(m.inputs[0]));
      const weights = new Set(dq.flatMap((m) => m.outputs));
      const gemms = nodes.filter((m) => /Gemm|MatMul/.test(m.opType) && m.inputs.some((i) => weights.has(i)));
      return { dequant: dq.length, gemmsReading: new Set(gemms.map((m) => m.inputs.find((i) => weights.has(i)))).size };
    };
    expect(rebuilt(plain)).toEqual({ dequant: 0, gemmsReading: 0 });
    expect(rebuilt(ckpt).dequant).toBeGreaterThanOrEqual(n);
    expect(rebuilt(ckpt).gemmsReading).toBeGreaterThanOrEqual(n);
    // The forward pass keeps its own n dequantisations of the initializers.
    const forwardDequant = (nodes: InspectedNode[]) => new Set(nodes.filter((m) => m.opType === 'DequantizeLinear').map((m) => m.inputs[0])).size;
    expect(forwardDequant(ckpt)).toBe(forwardDequant(plain) + n);
  });
});
