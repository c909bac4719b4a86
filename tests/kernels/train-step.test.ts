// A whole training step (forward, loss, backward, clip, AdamW) as one ONNX graph with resident state.
import { describe, it, expect } from 'vitest';
import * as K from '../../kernels';

const r = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

function mlp(batch: number) {
  const x = K.input('x', [batch, 8]);
  const y = K.input('y', [batch, 1]);
  const w1 = K.input('w1', [8, 32]);
  const w2 = K.input('w2', [32, 1]);
  const loss = K.reduceMean(K.square(K.sub(K.matmul(K.tanh(K.matmul(x, w1)), w2), y)));
  return { x, y, w1, w2, loss };
}
const init = { w1: ht([8, 32], r(256, 1)), w2: ht([32, 1], r(32, 2)) };
const xs = r(16 * 8, 3);
const ys = Float32Array.from({ length: 16 }, (_, i) => Math.cos(i));

async function run200(threads: number) {
  const rt = new K.Runtime({ threads });
  const m = mlp(16);
  const ts = await K.TrainStep.create(rt, { inputs: [m.x, m.y], params: { w1: m.w1, w2: m.w2 }, loss: m.loss, optimizer: K.adamw(), maxGradNorm: 1 });
  await ts.init(init);
  const losses: number[] = [];
  for (let s = 1; s <= 200; s++) losses.push((await ts.step([{ x: ht([16, 8], xs), y: ht([16, 1], ys) }], 1e-2, s)).loss);
  const final = await ts.read(false);
  await rt.close();
  return { losses, final };
}

describe('train step', () => {
  it('a 200-step fixed-seed run reproduces its loss curve bit for bit', async () => {
    const a = await run200(2);
    const b = await run200(2);
    expect(a.losses[199]).toBeLessThan(a.losses[0] * 0.2);
    expect(Float64Array.from(b.losses)).toEqual(Float64Array.from(a.losses));
    expect(b.final.w1.data).toEqual(a.final.w1.data);
  });

  it('gradient accumulation over 2 micro-batches equals one batch of twice the size', async () => {
    const rt = new K.Runtime({ threads: 1 });
    const full = mlp(16);
    const half = mlp(8);
    const one = await K.TrainStep.create(rt, { inputs: [full.x, full.y], params: { w1: full.w1, w2: full.w2 }, loss: full.loss, optimizer: K.adamw() });
    const two = await K.TrainStep.create(rt, { inputs: [half.x, half.y], params: { w1: half.w1, w2: half.w2 }, loss: half.loss, optimizer: K.adamw(), accumulation: 2 });
    await one.init(init);
    await two.init(init);
    for (let s = 1; s <= 5; s++) {
      const a = await one.step([{ x: ht([16, 8], xs), y: ht([16, 1], ys) }], 1e-2, s);
      const b = await two.step([
        { x: ht([8, 8], xs.slice(0, 64)), y: ht([8, 1], ys.slice(0, 8)) },
        { x: ht([8, 8], xs.slice(64)), y: ht([8, 1], ys.slice(8)) },
      ], 1e-2, s);
      expect(b.loss).toBeCloseTo(a.loss, 5);
      expect(b.gradNorm).toBeCloseTo(a.gradNorm, 4);
    }
    const pa = (await one.read(false)).w1.data as Float32Array;
    const pb = (await two.read(false)).w1.data as Float32Array;
    for (let i = 0; i < pa.length; i++) expect(Math.abs(pa[i] - pb[i])).toBeLessThan(1e-5);
    await rt.close();
  });

  it('max grad norm scales the update: with a tiny clip the step is proportionally smaller', async () => {
    // Plain SGD-like check through AdamW's first step is scale-free, so test the clip itself.
    const rt = new K.Runtime({ threads: 1 });
    const g = K.input('g', [4]);
    const { grads, norm } = K.clipByGlobalNorm([g], 1);
    const s = await rt.load(K.compileGraph([g], { out: grads[0], norm }));
    const big = await s.run({ g: ht([4], Float32Array.from([3, 4, 0, 0])) });
    expect(big.norm.data[0]).toBeCloseTo(5, 5);
    expect(Array.from(big.out.data as Float32Array).map((v) => +v.toFixed(4))).toEqual([0.6, 0.8, 0, 0]);
    const small = await s.run({ g: ht([4], Float32Array.from([0.3, 0.4, 0, 0])) });
    expect(Array.from(small.out.data as Float32Array).map((v) => +v.toFixed(4))).toEqual([0.3, 0.4, 0, 0]);
    await rt.close();
  });

  it('steps compiled for two batch shapes share one set of parameters and optimizer state', async () => {
    const rt = new K.Runtime({ threads: 1 });
    const big = mlp(16);
    const small = mlp(8);
    const a = await K.TrainStep.create(rt, { inputs: [big.x, big.y], params: { w1: big.w1, w2: big.w2 }, loss: big.loss, optimizer: K.adamw() });
    const b = await K.TrainStep.create(rt, { inputs: [small.x, small.y], params: { w1: small.w1, w2: small.w2 }, loss: small.loss, optimizer: K.adamw(), shareStateWith: a });
    await a.init(init);
    await a.step([{ x: ht([16, 8], xs), y: ht([16, 1], ys) }], 1e-2, 1);
    const afterA = await a.read();
    await b.step([{ x: ht([8, 8], xs.slice(0, 64)), y: ht([8, 1], ys.slice(0, 8)) }], 1e-2, 2);
    const viaA = await a.read();
    const viaB = await b.read();
    expect(viaA.w1.data).toEqual(viaB.w1.data);
    expect(viaA['w1:m'].data).not.toEqual(afterA['w1:m'].data);
    const x = K.input('x', [4, 8]);
    const wide = K.input('w1', [8, 16]);
    await expect(K.TrainStep.create(rt, { inputs: [x], params: { w1: wide }, loss: K.reduceSum(K.matmul(x, wide)), optimizer: K.adamw(), shareStateWith: a }))
      .rejects.toThrow(/different parameters/);
    await rt.close();
  });
});
