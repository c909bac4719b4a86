// Adapters are numerically right: finite-difference gradient checks of LoRA, LoCon and LoKr; a fresh
// LoRA (up = 0) leaves the model unchanged; merged weights reproduce the adapter; strength scales it.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { AdapterSet, loraModule, lokrModule, mergeAdapter, type AdapterModule, type AdapterSetOptions } from '../../../kernels/adapters';
import { Rng } from '../../../kernels/random';
import { gradCheck, runtime } from '../gradcheck';
import { tinyModel, IMAGE, imageData, randomValues } from './tiny-model';

afterAll(() => runtime().close());
const TOL = 2e-2;
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

/** Gradient check of one module's delta w.r.t. its input and every adapter tensor. */
async function checkModule(m: AdapterModule, xShape: number[]) {
  const keys = m.params.map((p) => p.key);
  const f = (x: K.Tensor, ...ps: K.Tensor[]) => m.delta(x, (k) => ps[keys.indexOf(k)]);
  return gradCheck(f, [{ shape: xShape }, ...m.params.map((p) => ({ shape: p.shape }))]);
}

describe('adapter gradients (finite differences)', () => {
  const lin = { kind: 'linear' as const, module: 'blk.to_q', inFeatures: 6, outFeatures: 4 };
  const conv3 = { kind: 'conv' as const, module: 'conv', inChannels: 3, outChannels: 4, kernel: [3, 3] as [number, number], stride: 2, padding: 1, groups: 1 };
  it('LoRA on a linear layer', async () => {
    expect(await checkModule(loraModule('l', lin, { rank: 2, alpha: 1 }), [2, 3, 6])).toBeLessThan(TOL);
  });
  it('LoCon on a strided 3×3 conv', async () => {
    expect(await checkModule(loraModule('c', conv3, { rank: 2, alpha: 4 }), [1, 3, 5, 5])).toBeLessThan(TOL);
  });
  it('LoKr on a linear layer (w1 decomposed, w2 low-rank)', async () => {
    const big = { ...lin, inFeatures: 16, outFeatures: 12 };
    const m = lokrModule('k', big, { rank: 1, alpha: 2, factor: 2, decomposeBoth: true });
    expect(m.params.map((p) => p.key.split('.')[1])).toEqual(['lokr_w1', 'lokr_w2_a', 'lokr_w2_b']); // w1 2×2: rank 1 is not < 2/2
    expect(await checkModule(m, [2, 16])).toBeLessThan(TOL);
    const both = lokrModule('k2', { ...big, inFeatures: 64, outFeatures: 64 }, { rank: 1, factor: 8, decomposeBoth: true });
    expect(both.params.map((p) => p.key.split('.')[1])).toEqual(['lokr_w1_a', 'lokr_w1_b', 'lokr_w2_a', 'lokr_w2_b']);
    expect(await checkModule(both, [2, 64])).toBeLessThan(TOL);
  });
  it('LoKr on a 3×3 conv (full w2 and low-rank w2)', async () => {
    const c = { ...conv3, inChannels: 4, outChannels: 6, stride: 1 };
    expect(await checkModule(lokrModule('kc', c, { rank: 4, fullMatrix: true }), [1, 4, 4, 4])).toBeLessThan(TOL);
    const low = lokrModule('kl', { ...c, inChannels: 8, outChannels: 16 }, { rank: 1, factor: 2 });
    expect(low.params.map((p) => p.shape)).toEqual([[2, 2], [8, 1], [1, 4 * 9]]);
    expect(await checkModule(low, [1, 8, 4, 4])).toBeLessThan(TOL);
  });
});

/** Runs the tiny model on the base weights, optionally with an adapter (inference hook + strength). */
async function runModel(weights: K.WeightSource, adapter?: { set: AdapterSet; values: Record<string, K.HostTensor>; strength: number }) {
  const x = K.input('x', IMAGE);
  const y = tinyModel(new K.Builder(weights, adapter?.set.hook({ training: false })), x);
  const params = adapter ? Object.values(adapter.set.params) : [];
  const inputs = [x, ...params, ...(adapter ? adapter.set.extraInputs : [])];
  const s = await runtime().load(K.compileGraph(inputs, { y }));
  const feeds: Record<string, K.HostTensor> = { x: ht(IMAGE, imageData()), ...(adapter ? { ...adapter.values, ...AdapterSet.multiplierFeed(adapter.strength) } : {}) };
  return (await s.run(feeds)).y.data as Float32Array;
}

const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

function builtSet(o: AdapterSetOptions) {
  const set = new AdapterSet(o);
  tinyModel(new K.Builder(new K.ShapeRecorder(), set.hook({ training: false })), K.input('x', IMAGE));
  return set;
}

describe('adapters in a model', () => {
  const base = new K.RandomWeights(3, 0.3);
  const variants: [string, AdapterSetOptions][] = [
    ['LoRA + LoCon', { rank: 2, alpha: 1, convRank: 3, convAlpha: 1.5, targets: { preset: 'all_linear_conv' } }],
    ['LoKr', { algo: 'lokr', rank: 1, alpha: 0.5, factor: 2, targets: { preset: 'all_linear_conv' } }],
  ];

  it('a LoRA with up = 0 (its initial state) leaves the output exactly unchanged', async () => {
    const plain = await runModel(base);
    const set = builtSet(variants[0][1]);
    const withLora = await runModel(base, { set, values: set.initialValues(5), strength: 1 });
    expect(maxAbs(withLora, plain)).toBe(0);
    expect(Math.max(...plain.map(Math.abs))).toBeGreaterThan(1e-3);
  });

  for (const [name, opts] of variants) {
    it(`${name}: merged weights give the adapter's output; strength 0 is the base model`, async () => {
      const plain = await runModel(base);
      const set = builtSet(opts);
      const values = randomValues(set);
      const on = await runModel(base, { set, values, strength: 0.7 });
      const merged = await runModel(new K.HostWeights(mergeAdapter(base.tensors, set, values, 0.7)));
      const change = maxAbs(on, plain);
      expect(change).toBeGreaterThan(1e-2);
      expect(maxAbs(merged, on)).toBeLessThan(change * 1e-4);
      const off = await runModel(base, { set, values, strength: 0 });
      expect(maxAbs(off, plain)).toBeLessThan(1e-6);
    });

    it(`${name}: strength scales the layer's change linearly (last layer adapted only)`, async () => {
      const plain = await runModel(base);
      const set = builtSet({ ...opts, targets: { preset: 'all_linear_conv', include: ['conv_down'] } });
      const values = randomValues(set);
      const on = await runModel(base, { set, values, strength: 0.7 });
      const full = await runModel(base, { set, values, strength: 1 });
      const scaled = Float32Array.from(full, (v, i) => plain[i] + 0.7 * (v - plain[i]));
      expect(maxAbs(on, plain)).toBeGreaterThan(1e-2);
      expect(maxAbs(scaled, on)).toBeLessThan(1e-5);
    });
  }

  it('merging leaves the base map untouched and names a missing weight', () => {
    const set = builtSet(variants[0][1]);
    const values = randomValues(set);
    const before = (base.tensors.get('conv_in.weight')!.data as Float32Array).slice();
    mergeAdapter(base.tensors, set, values);
    expect(base.tensors.get('conv_in.weight')!.data).toEqual(before);
    const partial = new Map(base.tensors);
    partial.delete('conv_down.weight');
    expect(() => mergeAdapter(partial, set, values)).toThrow(/base weights lack 'conv_down.weight'/);
  });
});

describe('dropout masks', () => {
  it('training graphs read one mask per module, drawn reproducibly; an all-ones mask equals no dropout', async () => {
    const opts: AdapterSetOptions = { rank: 2, dropout: 0.25, targets: { preset: 'attention' } };
    const set = new AdapterSet(opts);
    const x = K.input('x', IMAGE);
    const y = tinyModel(new K.Builder(new K.RandomWeights(3, 0.3), set.hook({ training: true })), x);
    expect(set.dropoutInputs.map((t) => t.source.kind === 'input' && t.source.name)).toEqual([
      'dropout:lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q',
      'dropout:lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_k',
      'dropout:lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_v',
      'dropout:lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_out_0',
    ]);
    expect(set.dropoutInputs[0].shape).toEqual([2, 36, 2]);
    const a = set.dropoutFeeds(new Rng(9)), b = set.dropoutFeeds(new Rng(9));
    const m = a[Object.keys(a)[0]].data as Float32Array;
    expect(b[Object.keys(b)[0]].data).toEqual(m);
    const kept = m.filter((v) => v !== 0);
    expect(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
    expect(Math.abs(kept.length / m.length - 0.75)).toBeLessThan(0.12);

    const s = await runtime().load(K.compileGraph([x, ...Object.values(set.params), ...set.extraInputs], { y }));
    const values = randomValues(set);
    const ones = Object.fromEntries(Object.entries(a).map(([k, t]) => [k, { ...t, data: new Float32Array(t.data.length).fill(1) }]));
    const feeds = { x: ht(IMAGE, imageData()), ...values };
    const withOnes = (await s.run({ ...feeds, ...ones })).y.data as Float32Array;
    const withDrop = (await s.run({ ...feeds, ...a })).y.data as Float32Array;
    const infer = new AdapterSet(opts);
    tinyModel(new K.Builder(new K.ShapeRecorder(), infer.hook({ training: false })), K.input('x', IMAGE));
    const noDrop = await runModel(new K.RandomWeights(3, 0.3), { set: infer, values, strength: 1 });
    expect(maxAbs(withOnes, noDrop)).toBeLessThan(1e-6);
    expect(maxAbs(withDrop, noDrop)).toBeGreaterThan(1e-4);
  });

  it('LoKr refuses neuron dropout', () => {
    expect(() => new AdapterSet({ algo: 'lokr', rank: 2, dropout: 0.1 })).toThrow(/LoKr has no neuron dropout/);
  });
});
