// Memory pre-flight: the liveness estimate counts what a hand count gives on a small graph, sees
// recomputation shrink the tiny UNet's activations, and TrainStep.create refuses a step that cannot
// fit in a small limit — before any ORT session — with a message naming the settings to change.
import { describe, it, expect } from 'vitest';
import * as K from '../../../kernels';
import { estimateGraphMemory, MemoryPreflightError } from '../../../kernels/train/memory';
import { tinyConfig } from '../../../kernels/sd/config';
import { sdAdapters } from '../../../kernels/sd/lora';
import { buildSdTrainGraph } from '../../../kernels/sd/training-graph';
import { Rng } from '../../../kernels/random';
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
    expect(e.activations).toBe(2 * 8 * 50 * 4);
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
    expect(off.activations / on.activations).toBeGreaterThan(2);
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
    await ts.init(adapters.unet.initialValues(new Rng('preflight')));
    await ts.dispose();
  });
});
