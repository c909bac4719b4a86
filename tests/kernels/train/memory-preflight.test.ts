// Memory pre-flight: the liveness estimate counts what a hand count gives on a small graph, sees
// recomputation shrink the tiny UNet's activations, and TrainStep.create refuses a step that cannot
// fit in a small limit — before any ORT session — with a message naming the settings to change;
// TrainStep.preflight is that same estimate without a step.
import { describe, it, expect } from 'vitest';
import * as K from '../../../kernels';
import { estimateGraphMemory, MemoryPreflightError } from '../../../kernels/train/memory';
import { tinyConfig } from '../../../kernels/sd/config';
import { sdAdapters } from '../../../kernels/sd/lora';
import { buildSdTrainGraph } from '../../../kernels/sd/training-graph';
import { QuantizedWeights } from '../../../kernels/quant/graph-weights';
import { PrecisionWeights } from '../../../kernels/nn/precision';
import { Rng } from '../../../kernels/random';
import { after } from '../../../kernels/ops/shape-and-reduce';
import { runtime } from '../gradcheck';

describe('memory pre-flight', () => {
  it('counts weights, inputs and the peak of live intermediates on a small graph', () => {
    const x = K.input('x', [8, 100]);
    const w = K.constant(new Float32Array(100 * 50), [100, 50], 'float32', 'w');
    const h = K.relu(K.matmul(x, w)); // [8,50] matmul, then relu: both live at the relu
    const y = K.reduceSum(K.mul(h, h));
    const e = estimateGraphMemory([y]);
    expect(e.weights).toBe(100 * 50 * 4);
    expect(e.inputs).toBe(8 * 100 * 4);
    // matmul out (1600 B) and relu out (1600 B) live together; then relu + mul; reshapes alias.
    expect(e.live).toBe(2 * 8 * 50 * 4);
    // ORT's arena rounds each buffer up to 256 bytes (1792 B) and lays them out in its first 1 MiB
    // region: two rounded buffers, then the relu output's slot reused by the product.
    expect(e.activations).toBe(2 * 1792);
  });

  it("follows ORT's allocation plan: a dead buffer waits for the next value of its shape, an activation writes over its input", () => {
    const MiB = 2 ** 20;
    const x = K.input('x', [1024, 256]); // 1 MiB
    const w = K.input('w', [256, 4096]);
    const a = K.exp(x); // 1 MiB, dead after its sum
    const s = K.reduceSum(a);
    const c = K.matmul(x, w); // 16 MiB, made while a is dead
    const d = K.exp(K.add(x, K.reduceSum(c))); // [1024, 256] again: ORT's plan hands it a's buffer
    const e = estimateGraphMemory([K.add(s, K.reduceSum(d))]); // one root: its inputs run in order
    // Alive at once: c (16 MiB) with its sum, then the sum and d's input; a was freed before c.
    expect(e.live).toBeLessThan(16.1 * MiB);
    // The plan kept a's buffer from its death to d: 17 MiB held while c exists.
    expect(e.planned).toBeGreaterThanOrEqual(17 * MiB);
    expect(e.planned).toBeLessThan(17.1 * MiB);
    // Sigmoid writes over its input when that is the input's last read: no second 16 MiB.
    const f = K.sigmoid(K.matmul(x, w));
    expect(estimateGraphMemory([K.reduceSum(f)]).planned).toBeLessThan(16.1 * MiB);
    const g = K.mul(K.exp(K.matmul(x, w)), 2); // Exp and Mul take new buffers (no in-place kernel)
    expect(estimateGraphMemory([K.reduceSum(g)]).planned).toBeGreaterThanOrEqual(32 * MiB);
    // Behind a gate (a Reshape to a computed shape) ORT's shape inference loses the dims, and a value
    // of unknown shape is never handed on: d gets a new buffer, so a's went back when it died.
    const ag = K.exp(after(x, w));
    const eg = estimateGraphMemory([K.add(K.reduceSum(ag), K.reduceSum(K.exp(K.add(x, K.reduceSum(K.matmul(x, w))))))]);
    expect(eg.planned).toBeLessThan(16.1 * MiB);
  });

  it("counts a linear's prepacked weight once for sampling and twice when the backward pass reads it too", () => {
    const x = K.input('x', [4, 64]);
    const w = K.constant(new Float32Array(32 * 64).fill(0.5), [32, 64], 'float32', 'w');
    const y = K.linear(x, w);
    expect(estimateGraphMemory([y]).weights).toBe(32 * 64 * 4); // ORT drops the original once packed
    const [gx] = K.grad(K.reduceSum(K.mul(y, y)), [x]); // dX = g·W reads the original as well
    const withBackward = estimateGraphMemory([gx]).weights; // plus a few scalars of the backward pass
    expect(withBackward).toBeGreaterThanOrEqual(2 * 32 * 64 * 4);
    expect(withBackward).toBeLessThan(2 * 32 * 64 * 4 + 1024);
  });

  it("counts the column buffer ORT's ConvTranspose takes for a conv input gradient on a run-time weight", () => {
    const x = K.input('x', [1, 96, 32, 32]);
    const w = K.input('w', [32, 96, 3, 3]); // made at run time (as a dequantised weight is): no flipped copy
    const y = K.conv2d(x, K.mul(w, 1), undefined, { padding: 1 });
    const [gx] = K.grad(K.reduceSum(y), [x]);
    const e = estimateGraphMemory([gx]);
    const columns = 96 * 9 * 32 * 32 * 4; // (input channels · taps) × gradient pixels, float32
    const values = (1 * 32 * 32 * 32 + 96 * 32 * 32 + 32 * 96 * 9) * 4; // y's gradient, dX, the weight
    expect(e.live).toBeGreaterThanOrEqual(columns);
    expect(e.live).toBeLessThanOrEqual(columns + 2 * values);
  });

  it('recomputation shrinks the estimated activations of the tiny UNet training step', () => {
    const cfg = tinyConfig(256);
    const estimate = (gradientCheckpointing: boolean) => {
      const adapters = sdAdapters(cfg, { rank: 4, alpha: 4, targets: { preset: 'attention' }, trainTextEncoder: false });
      const g = buildSdTrainGraph({ config: cfg, unetWeights: new K.RandomWeights(3), adapters, batch: 2, latentSize: [16, 16], gradientCheckpointing });
      const grads = K.grad(g.loss, Object.values(g.params));
      return estimateGraphMemory([g.loss, ...grads]);
    };
    const off = estimate(false), on = estimate(true);
    expect(Math.abs(on.weights / off.weights - 1)).toBeLessThan(0.01); // the rebuilt copies read a few small constants directly
    // What is alive at once shrinks more than twofold; the arena figure less, since ORT's plan keeps
    // dead buffers for later values of the same shape (the rebuilt blocks' values among them).
    expect(off.live / on.live).toBeGreaterThan(2);
    expect(on.activations).toBeLessThan(0.8 * off.activations);
  });

  it('bases below float32: weights are the stored bytes, and activations stay those of the float32 base', () => {
    const cfg = tinyConfig(256);
    const estimate = (base: 'fp32' | 'bf16' | 'int8' | 'nf4', gradientCheckpointing: boolean) => {
      const inner = new K.RandomWeights(3);
      const weights = base === 'fp32' ? inner : base === 'bf16' ? new PrecisionWeights(inner, { precision: 'bf16' }) : new QuantizedWeights(inner, { scheme: base });
      const adapters = sdAdapters(cfg, { rank: 4, alpha: 4, targets: { preset: 'attention' }, trainTextEncoder: false });
      const g = buildSdTrainGraph({ config: cfg, unetWeights: weights, adapters, batch: 2, latentSize: [16, 16], gradientCheckpointing });
      const stored = weights instanceof QuantizedWeights ? weights.summary().linear.quantBytes + weights.summary().conv.quantBytes
        : weights instanceof PrecisionWeights ? weights.storedBytes : 0;
      return { e: estimateGraphMemory([g.loss, ...K.grad(g.loss, Object.values(g.params))]), stored };
    };
    // The tiny UNet's largest float32 weight (a 64→64 3×3 conv); a resnet block has two, each also
    // flipped for its input gradient: at most four such live at once.
    const layer = 64 * 64 * 9 * 4;
    for (const rc of [false, true]) {
      const fp32 = estimate('fp32', rc).e;
      for (const base of ['bf16', 'int8', 'nf4'] as const) {
        const { e, stored } = estimate(base, rc);
        // Stored weights plus the float32 ones left alone (norms, biases, small layers) and shared tables.
        expect(e.weights).toBeGreaterThan(stored);
        expect(e.weights).toBeLessThan(stored + 0.5 * (fp32.weights - stored));
        // Without checkpointing the backward makes its own float32 copy of each weight (one at a time),
        // so the activations equal the float32 base's; with it, one block's weights come on top.
        if (!rc) expect(e.live).toBe(fp32.live);
        else expect(e.live - fp32.live).toBeLessThanOrEqual(4 * layer);
      }
    }
  });

  it('TrainStep.create refuses a step over the limit, naming resolution, batch, precision, quantisation and checkpointing', async () => {
    const cfg = tinyConfig(256);
    const adapters = sdAdapters(cfg, { rank: 4, alpha: 4, targets: { preset: 'attention' }, trainTextEncoder: false });
    const g = buildSdTrainGraph({ config: cfg, unetWeights: new K.RandomWeights(3), adapters, batch: 2, latentSize: [16, 16] });
    const spec = { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw() };
    const settings = { resolution: '128×128', batch: 2, precision: 'fp32', gradientCheckpointing: false };
    const err = await K.TrainStep.create(runtime(), { ...spec, memoryLimitBytes: 64 * 2 ** 20, memorySettings: settings }).catch((e) => e);
    expect(err).toBeInstanceOf(MemoryPreflightError);
    const msg = (err as Error).message;
    for (const word of ['64 MiB is available', 'resolution (now 128×128)', 'batch size (now 2)', 'precision to bf16 or fp16 (now fp32)', 'quantisation to int8 or nf4 (now none)', 'gradientCheckpointing (now off)']) expect(msg).toContain(word);
    // The same step with room to spare is made, and reports the estimate it checked.
    const ts = await K.TrainStep.create(runtime(), { ...spec, memoryLimitBytes: 16 * 2 ** 30 });
    expect(ts.memoryEstimate.total).toBeGreaterThan(64 * 2 ** 20);
    // TrainStep.preflight gives the same estimate without building the step (what benchmarks print for sizes they cannot run).
    expect(K.TrainStep.preflight(spec)).toEqual(ts.memoryEstimate);
    await ts.init(adapters.unet.initialValues(new Rng('preflight')));
    await ts.dispose();
  });
});
