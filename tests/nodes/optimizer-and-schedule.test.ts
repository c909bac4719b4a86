// The Optimizer and Timestep Schedule nodes: settings by the names kohya/ai-toolkit users know,
// values that create working optimizers and sample in range, and their previews.
import { describe, it, expect } from 'vitest';
import optimizerNode, { type OptimizerValue } from '../../nodes/optimizer';
import scheduleNode, { type ScheduleValue } from '../../nodes/timestep-schedule';
import { Rng } from '../../kernels/random';
import { nodeContext } from './context';

describe('Optimizer node', () => {
  it('offers every optimizer and scheduler with kohya defaults', () => {
    const info = optimizerNode.info();
    const opt = info.widgets.find((w) => w.name === 'optimizer')!;
    expect(opt.options).toEqual(['AdamW', 'AdamW8bit', 'Adafactor', 'Lion', 'Prodigy', 'SGD']);
    expect(info.widgets.find((w) => w.name === 'learningRate')!.default).toBe(1e-4);
    expect(info.widgets.find((w) => w.name === 'lrScheduler')!.options).toContain('cosine_with_restarts');
  });

  it('produces an optimizer value whose schedule follows warmup then cosine', async () => {
    const { ctx } = nodeContext();
    for (const name of ['AdamW', 'AdamW8bit', 'Adafactor', 'Lion', 'Prodigy', 'SGD']) {
      const r = await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ optimizer: name }), ctx });
      const v = r.outputs.optimizer as OptimizerValue;
      expect(v.create().state([2, 3])).toBeTypeOf('object');
    }
    const r = await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3, lrScheduler: 'cosine', warmupSteps: 10 }), ctx });
    const v = r.outputs.optimizer as OptimizerValue;
    expect(v.lrAt(0, 100)).toBe(0);
    expect(v.lrAt(5, 100)).toBeCloseTo(5e-4, 10);
    expect(v.lrAt(10, 100)).toBeCloseTo(1e-3, 10);
    expect(v.lrAt(55, 100)).toBeCloseTo(5e-4, 6);
  });
});

describe('Timestep Schedule node', () => {
  it('samples inside the min/max range and previews the histogram', async () => {
    const { ctx, previews } = nodeContext();
    const r = await scheduleNode.execute({ inputs: {}, widgets: scheduleNode.widgets.parse({ timestepType: 'linear', minTimestep: 200, maxTimestep: 600 }), ctx });
    const v = r.outputs.schedule as ScheduleValue;
    const t = v.sample(new Rng(1), 2000, 0);
    expect(Math.min(...t)).toBeGreaterThanOrEqual(0.2);
    expect(Math.max(...t)).toBeLessThanOrEqual(0.6);
    expect(previews[0].subarray(1, 4)).toEqual(new Uint8Array([0x50, 0x4e, 0x47]));
    expect(r.ui!.images![0].filename).toMatch(/\.png$/);
  });

  it('high_noise bias moves mass up; multistage alternates experts', async () => {
    const { ctx } = nodeContext();
    const mean = (a: Float64Array) => a.reduce((s, x) => s + x, 0) / a.length;
    const run = async (w: Record<string, unknown>) => (await scheduleNode.execute({ inputs: {}, widgets: scheduleNode.widgets.parse(w), ctx })).outputs.schedule as ScheduleValue;
    const balanced = await run({ timestepType: 'sigmoid' });
    const high = await run({ timestepType: 'sigmoid', timestepBias: 'high_noise' });
    expect(mean(high.sample(new Rng(2), 5000, 0))).toBeGreaterThan(mean(balanced.sample(new Rng(2), 5000, 0)) + 0.05);
    const multi = await run({ timestepType: 'linear', multistageBoundaries: '875', switchEvery: 2 });
    expect(Math.min(...multi.sample(new Rng(3), 500, 0))).toBeGreaterThanOrEqual(0.875);
    expect(Math.max(...multi.sample(new Rng(3), 500, 2))).toBeLessThan(0.875);
    await expect(run({ minTimestep: 500, maxTimestep: 400 })).rejects.toThrow(/minTimestep/);
    await expect(run({ multistageBoundaries: 'x' })).rejects.toThrow(/multistageBoundaries/);
  });
});
