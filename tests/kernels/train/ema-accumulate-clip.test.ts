// TrainStep with the new optimizers: the in-graph EMA equals kernels/schedules' host EMA; gradient
// accumulation over 2 micro-batches equals one double batch with Prodigy (shared state) and AdamW8bit
// (uint8 state); clipping scales SGD's step; resume from read() continues identically; a LoRA trains.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { adamw8bit, prodigy, sgd, lion, type Optimizer } from '../../../kernels/optim';
import { emaInit, emaStep, type EmaConfig } from '../../../kernels/schedules';
import { AdapterSet } from '../../../kernels/adapters';
import { perSampleLoss, batchLoss } from '../../../kernels/losses';
import * as R from '../optim/reference';

const rt = new K.Runtime({ threads: 1 });
afterAll(() => rt.close());
const init = () => { const p = R.initial(); return { W: R.f32([R.OUT, R.IN], p.W), b: R.f32([R.OUT], p.b) }; };

function problem(rows: number) {
  const x = K.input('x', [rows, R.IN]), y = K.input('y', [rows, R.OUT]);
  const W = K.input('W', [R.OUT, R.IN]), b = K.input('b', [R.OUT]);
  return { inputs: [x, y], params: { W, b }, loss: K.reduceMean(K.square(K.sub(K.add(K.linear(x, W), b), y))) };
}
const feed = (from: number, to: number) => ({
  x: R.f32([to - from, R.IN], R.X.subarray(from * R.IN, to * R.IN)),
  y: R.f32([to - from, R.OUT], R.Y.subarray(from * R.OUT, to * R.OUT)),
});

describe('EMA', () => {
  it('matches the host reference (diffusers warmup, update-after delay) step by step', async () => {
    const ema: EmaConfig = { decay: 0.95, warmup: 'diffusers', updateAfterStep: 2 };
    const ts = await K.TrainStep.create(rt, { ...problem(R.ROWS), optimizer: K.adamw(), ema });
    await ts.init(init());
    let host = emaInit({ W: Float32Array.from(R.initial().W), b: Float32Array.from(R.initial().b) });
    for (let s = 1; s <= 12; s++) {
      await ts.step([feed(0, R.ROWS)], 2e-2, s);
      const p = await ts.read(false);
      host = emaStep(host, { W: p.W.data as Float32Array, b: p.b.data as Float32Array }, ema);
      const g = await ts.readEma();
      for (const k of ['W', 'b'] as const) {
        const a = g[k].data as Float32Array, h = host.average[k];
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - h[i])).toBeLessThan(1e-6);
      }
    }
    const last = await ts.read(false);
    expect((await ts.readEma()).W.data).not.toEqual(last.W.data); // it lags the weights
    expect(Object.keys(await ts.read(true))).toContain('ema:W');
    await ts.dispose();
  });
});

describe('accumulation, clipping and resume with the new optimizers', () => {
  const cases: [string, () => Optimizer, number][] = [
    ['Prodigy (shared d)', () => prodigy(), 1],
    ['AdamW8bit (uint8 moments)', () => adamw8bit({ min8bitSize: 64 }), 1e-2],
  ];
  for (const [name, make, lr] of cases) {
    it(`${name}: 2 micro-batches of 6 equal one batch of 12`, async () => {
      const one = await K.TrainStep.create(rt, { ...problem(12), optimizer: make() });
      const two = await K.TrainStep.create(rt, { ...problem(6), optimizer: make(), accumulation: 2 });
      await one.init(init());
      await two.init(init());
      for (let s = 1; s <= 6; s++) {
        const a = await one.step([feed(0, 12)], lr, s);
        const b = await two.step([feed(0, 6), feed(6, 12)], lr, s);
        expect(b.loss).toBeCloseTo(a.loss, 5);
      }
      const pa = await one.read(true), pb = await two.read(true);
      const wa = pa.W.data as Float32Array, wb = pb.W.data as Float32Array;
      for (let i = 0; i < wa.length; i++) expect(Math.abs(wa[i] - wb[i])).toBeLessThan(1e-4);
      await one.dispose(); await two.dispose();
    });
  }

  it('max grad norm: SGD moves by lr · maxNorm along the gradient direction when the norm is larger', async () => {
    const free = await K.TrainStep.create(rt, { ...problem(R.ROWS), optimizer: sgd() });
    const clipped = await K.TrainStep.create(rt, { ...problem(R.ROWS), optimizer: sgd(), maxGradNorm: 0.01 });
    await free.init(init()); await clipped.init(init());
    const a = await free.step([feed(0, R.ROWS)], 0.1, 1);
    const b = await clipped.step([feed(0, R.ROWS)], 0.1, 1);
    expect(b.gradNorm).toBeCloseTo(a.gradNorm, 5);
    expect(a.gradNorm).toBeGreaterThan(0.01);
    const start = R.initial();
    const fa = (await free.read(false)).W.data as Float32Array, fb = (await clipped.read(false)).W.data as Float32Array;
    const ratio = 0.01 / a.gradNorm;
    for (let i = 0; i < fa.length; i++) expect(fb[i] - start.W[i]).toBeCloseTo((fa[i] - start.W[i]) * ratio, 6);
    await free.dispose(); await clipped.dispose();
  });

  it('resume: read() then load() into a fresh step continues exactly (Prodigy shared state, Lion)', async () => {
    for (const make of [() => prodigy(), () => lion()]) {
      const lr = make().name === 'Prodigy' ? 1 : 1e-3;
      const full = await K.TrainStep.create(rt, { ...problem(R.ROWS), optimizer: make() });
      await full.init(init());
      for (let s = 1; s <= 6; s++) await full.step([feed(0, R.ROWS)], lr, s);
      const half = await K.TrainStep.create(rt, { ...problem(R.ROWS), optimizer: make() });
      await half.init(init());
      for (let s = 1; s <= 3; s++) await half.step([feed(0, R.ROWS)], lr, s);
      const saved = await half.read(true);
      if (make().name === 'Prodigy') expect(Object.keys(saved)).toEqual(expect.arrayContaining(['opt:d', 'opt:d_max', 'opt:d_numerator', 'W:p0']));
      const resumed = await K.TrainStep.create(rt, { ...problem(R.ROWS), optimizer: make() });
      await resumed.load(saved);
      for (let s = 4; s <= 6; s++) await resumed.step([feed(0, R.ROWS)], lr, s);
      expect((await resumed.read(false)).W.data).toEqual((await full.read(false)).W.data);
      const { W, ...rest } = saved;
      await expect(resumed.load(rest)).rejects.toThrow(/resume: checkpoint lacks 'W'/);
      for (const t of [full, half, resumed]) await t.dispose();
    }
  });
});

describe('LoRA training end to end', () => {
  it('a rank-2 LoRA on a frozen layer learns a low-rank change (loss falls 10×) with AdamW8bit', async () => {
    const x = K.input('x', [32, 16]), target = K.input('target', [32, 8]);
    const base = new K.RandomWeights(11, 0.2);
    const set = new AdapterSet({ rank: 2, alpha: 2, targets: { preset: 'all_linear' } });
    const pred = new K.Builder(base, set.hook()).linear('proj', x, 16, 8);
    const loss = batchLoss(perSampleLoss(pred, target));
    const ts = await K.TrainStep.create(rt, { inputs: [x, target], params: set.params, loss, optimizer: adamw8bit({ min8bitSize: 1 }) });
    await ts.init(set.initialValues('lora-e2e'));
    // The target is the frozen layer plus a rank-1 change, which a rank-2 LoRA can represent.
    const xs = Float32Array.from({ length: 32 * 16 }, (_, i) => Math.sin(i * 0.37));
    const Wb = base.tensors.get('proj.weight')!.data as Float32Array, bias = base.tensors.get('proj.bias')!.data as Float32Array;
    const u = Float32Array.from({ length: 8 }, (_, o) => Math.cos(o)), v = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i * 0.5) * 0.3);
    const ys = new Float32Array(32 * 8);
    for (let r = 0; r < 32; r++) for (let o = 0; o < 8; o++) {
      let acc = bias[o];
      for (let i = 0; i < 16; i++) acc += xs[r * 16 + i] * (Wb[o * 16 + i] + u[o] * v[i]);
      ys[r * 8 + o] = acc;
    }
    const losses: number[] = [];
    for (let s = 1; s <= 150; s++) losses.push((await ts.step([{ x: R.f32([32, 16], xs), target: R.f32([32, 8], ys) }], 3e-2, s)).loss);
    expect(losses[149]).toBeLessThan(losses[0] * 0.1);
    await ts.dispose();
  });
});
