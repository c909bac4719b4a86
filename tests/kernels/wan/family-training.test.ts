// The tiny Wan trains through the generic family training graph the Train node builds (not the Wan-only
// one): the flow loss on a fixed clip batch falls over AdamW steps with gradient checkpointing, and with
// DOP the preservation term starts at zero (adapter off = base) and the graph stays finite; I2V feeds its
// first-frame condition.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { buildTrainGraph } from '../../../kernels/families/training-graph';
import { familyAdapters } from '../../../kernels/families/adapters';
import { tinyWanConfig, wanFamily } from '../../../kernels/wan/family';
import { Rng } from '../../../kernels/random';

const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());
const nameOf = (t: K.Tensor) => (t.source as { name: string }).name;

describe.each([['T2V', false], ['I2V', true]] as const)('tiny Wan %s through the family training graph', (_v, i2v) => {
  it('the loss falls on a fixed clip batch (gradient checkpointing on); DOP\'s preservation term starts at 0', async () => {
    const cfg = tinyWanConfig({ i2v });
    const adapters = familyAdapters(wanFamily, cfg, { rank: 4, alpha: 4, targets: { preset: 'attention_ff' }, trainTextEncoder: false });
    const g = buildTrainGraph({
      family: wanFamily, config: cfg, denoiserWeights: new K.RandomWeights(31, 0.05), adapters, batch: 2, latentSize: [3, 4, 4],
      gradientCheckpointing: true, preservationMultiplier: 1,
    });
    expect(g.timestepDtype).toBe('float32');
    expect(g.inputs.map(nameOf)).toEqual(expect.arrayContaining(['latents', 'noise', 'timesteps', 'context', ...(i2v ? ['condition', 'pres_condition'] : []), 'pres_latents']));
    const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, extraOutputs: g.extra, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
    await ts.init(adapters.denoiser.initialValues(5));
    const rng = new Rng(8);
    const batch: Record<string, K.HostTensor> = {};
    for (const t of g.inputs) {
      const n = nameOf(t);
      const size = t.shape.reduce((a, b) => a * b, 1);
      batch[n] = { dtype: 'float32', shape: [...t.shape], data: /timesteps$/.test(n) ? Float32Array.from([0.35, 0.8]) : rng.fork(n).fillNormal(new Float32Array(size)) };
    }
    const first = await ts.step([batch], 2e-2, 1);
    const v = (r: typeof first, k: string) => r.extra[k].data[0] as number;
    expect(v(first, 'loss_preservation')).toBeCloseTo(0, 6);
    let last = first;
    for (let s = 2; s <= 30; s++) last = await ts.step([batch], 2e-2, s);
    expect(Number.isFinite(last.loss)).toBe(true);
    expect(v(last, 'loss_preservation')).toBeGreaterThan(0);
    expect(v(last, 'loss_main')).toBeLessThan(v(first, 'loss_main') * 0.9);
  }, 180_000);
});
