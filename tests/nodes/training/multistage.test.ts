// Multistage training in the training loop, on two random-weight tiny models standing in for a pair of
// experts (the loop is family-generic; the Wan CLI test runs the real thing): the experts alternate
// every switchEvery steps with their own LoRA and optimizer state, only the expert in training has ORT
// sessions loaded, each expert's timesteps stay in its band, untrained experts keep their initial
// weights, and a run cut off in either stage resumes bit-identical to an uninterrupted one.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd } from '../../../nodes/training/trainer';
import { trainSettings } from './settings';
import { multistagePlan, stageSampling } from '../../../nodes/training/multistage';
import { sampleTimesteps } from '../../../kernels/schedules/timestep-sampling';
import { Rng } from '../../../kernels/random';
import { Runtime, type HostTensor } from '../../../kernels';
import { listCheckpoints } from '../../../kernels/train/checkpoint';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import type { AdapterSpec } from '../../../nodes/sockets';
import { repoRoot } from '../../../server/paths';
import { tinyRandomModel } from './tiny-model';
import { nodeContext } from '../context';

const high = tinyRandomModel(1);
const low = tinyRandomModel(5);
let dataset: Dataset;
let optimizer: OptimizerValue;
const adapter: AdapterSpec = {
  kind: 'adapter', algo: 'LoRA', rank: 4, alpha: 4, convRank: 4, convAlpha: 4, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'attention', include: [], exclude: [], trainTextEncoder: false, byteSize: () => 64,
};
const settings = trainSettings({ steps: 6, seed: 3, maxSavesToKeep: 0, multistage: { trainStages: 'both', switchEvery: 2, boundary: 0.875 } });
const dir = () => mkdtempSync(join(tmpdir(), 'lg-multistage-'));
const inputs = () => ({ model: high.model, lowNoiseModel: low.model, clip: high.clip, vae: high.vae, datasets: [dataset], adapter, optimizer });

beforeAll(async () => {
  dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
  const { ctx } = nodeContext();
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
});

const upWeights = (w: Readonly<Record<string, HostTensor>>) => Object.entries(w).filter(([k]) => k.endsWith('lora_up.weight')).flatMap(([, v]) => Array.from(v.data as Float32Array));

describe('multistage (two experts) training loop', () => {
  it('alternates experts every switchEvery steps, each with its own LoRA, with only the training expert\'s sessions loaded', async () => {
    const rt = new Runtime({ threads: 1 });
    const seen: { expert: string; sessions: number }[] = [];
    try {
      const r = await trainSd(inputs(), settings, {
        checkpointDir: dir(), cacheDir: dir(), id: 'ms', runtime: rt,
        progress: (p) => { if (p.data.loss !== undefined) seen.push({ expert: p.data.expert as string, sessions: rt.loadedSessions().count }); },
      });
      expect(seen.map((x) => x.expert)).toEqual(['high_noise', 'high_noise', 'low_noise', 'low_noise', 'high_noise', 'high_noise']);
      // One expert's training sessions at a time: each of the 2 switches released the other's.
      expect(new Set(seen.map((x) => x.sessions)).size).toBe(1);
      expect(rt.stats.released).toBe(2);
      const e = r.training.experts!;
      expect(Object.keys(e)).toEqual(['high_noise', 'low_noise']);
      expect(e.high_noise.optimizerSteps).toBe(4);
      expect(e.low_noise.optimizerSteps).toBe(2);
      expect(r.training.expertBoundary).toBe(0.875);
      const hi = upWeights(e.high_noise.weights), lo = upWeights(e.low_noise.weights);
      expect(hi.some((v) => v !== 0) && lo.some((v) => v !== 0)).toBe(true);
      expect(hi).not.toEqual(lo);
      // The top level is the first trained expert's.
      expect(r.training.weights).toBe(e.high_noise.weights);
    } finally {
      await rt.close();
    }
  });

  it('trains only the chosen stage; the other expert keeps its initial (zero-up) LoRA', async () => {
    const seen: string[] = [];
    const r = await trainSd(inputs(), { ...settings, steps: 3, multistage: { trainStages: 'low_noise', switchEvery: 1, boundary: 0.875 } }, {
      checkpointDir: dir(), cacheDir: dir(), id: 'low', progress: (p) => { if (p.data.loss !== undefined) seen.push(p.data.expert as string); },
    });
    expect(seen).toEqual(['low_noise', 'low_noise', 'low_noise']);
    expect(upWeights(r.training.experts!.high_noise.weights).every((v) => v === 0)).toBe(true);
    expect(upWeights(r.training.experts!.low_noise.weights).some((v) => v !== 0)).toBe(true);
    expect(r.training.weights).toBe(r.training.experts!.low_noise.weights);
  });

  it('a run cut off in either stage resumes from its checkpoint and ends bit-identical to an uninterrupted run', async () => {
    const cache = dir();
    const full = await trainSd(inputs(), settings, { checkpointDir: dir(), cacheDir: cache, id: 'full' });
    // Checkpoints every 2 steps; cut at step 3 (low-noise stage, last checkpoint 2) and step 5 (high-noise stage, last checkpoint 4).
    for (const cutAt of [3, 5]) {
      const ckpt = dir();
      let done = 0;
      await expect(trainSd(inputs(), { ...settings, saveEvery: 2 }, {
        checkpointDir: ckpt, cacheDir: cache, id: 'cut',
        progress: (p) => { if (p.data.loss !== undefined && ++done === cutAt) throw new Error('killed'); },
      })).rejects.toThrow('killed');
      expect(listCheckpoints(ckpt).at(-1)!.step).toBe(cutAt - 1);
      const resumed = await trainSd(inputs(), { ...settings, saveEvery: 2 }, { checkpointDir: ckpt, cacheDir: cache, id: 'cut' });
      expect(resumed.resumedFrom).toBe(cutAt - 1);
      for (const name of ['high_noise', 'low_noise']) {
        for (const [k, v] of Object.entries(full.training.experts![name].weights)) expect(resumed.training.experts![name].weights[k].data, `${name} ${k} (cut at ${cutAt})`).toEqual(v.data);
        expect(resumed.training.experts![name].optimizerSteps).toBe(full.training.experts![name].optimizerSteps);
      }
      expect(resumed.training.lossHistory).toEqual(full.training.lossHistory);
    }
  });

  it('continues a multistage TRAINING state in a chained run, and refuses to mix it with a one-model run', async () => {
    const cache = dir();
    const a = await trainSd(inputs(), { ...settings, steps: 4 }, { checkpointDir: dir(), cacheDir: cache, id: 'a' });
    const b = await trainSd({ ...inputs(), training: a.training }, { ...settings, steps: 2 }, { checkpointDir: dir(), cacheDir: cache, id: 'b' });
    expect(b.training.step).toBe(6);
    // Steps 0-1 high, 2-3 low, 4-5 high: the chained run trained the high-noise expert only.
    expect(b.training.experts!.high_noise.optimizerSteps).toBe(4);
    expect(b.training.experts!.low_noise.optimizerSteps).toBe(2);
    expect(b.training.experts!.low_noise.weights).toEqual(a.training.experts!.low_noise.weights);
    expect(b.training.experts!.high_noise.weights).not.toEqual(a.training.experts!.high_noise.weights);
    await expect(trainSd({ ...inputs(), lowNoiseModel: undefined, training: a.training }, settings, { checkpointDir: dir(), cacheDir: cache, id: 'c' }))
      .rejects.toThrow(/one LoRA per expert; connect the low-noise expert to lowNoiseModel/);
  });
});

describe('multistage plan', () => {
  it('narrows each expert\'s timesteps to its band (shifted flow sampling, as the family default)', () => {
    const plan = multistagePlan(high.model, low.model, { trainStages: 'both', switchEvery: 1, boundary: 0.9 })!;
    const flow = { kind: 'flow' as const, timestepScale: 1000, sampling: { kind: 'shift' as const, shift: 3 } };
    const hi = sampleTimesteps(new Rng(1), 2000, stageSampling(undefined, flow, plan.stages[0]));
    const lo = sampleTimesteps(new Rng(1), 2000, stageSampling(undefined, flow, plan.stages[1]));
    expect(Math.min(...hi)).toBeGreaterThanOrEqual(0.9);
    expect(Math.max(...lo)).toBeLessThan(0.9);
    expect(Math.min(...lo)).toBeLessThan(0.2);
  });

  it('says what is wrong with the inputs and widgets', () => {
    expect(multistagePlan(high.model, undefined, { trainStages: 'both', switchEvery: 1, boundary: 0 })).toBeUndefined();
    expect(() => multistagePlan(high.model, high.model, { trainStages: 'both', switchEvery: 1, boundary: 0.9 })).toThrow(/^lowNoiseModel: the same model/);
    // SD states no boundary: the widget must give one.
    expect(() => multistagePlan(high.model, low.model, { trainStages: 'both', switchEvery: 1, boundary: 0 })).toThrow(/^boundary: this model states no expert boundary/);
  });
});
