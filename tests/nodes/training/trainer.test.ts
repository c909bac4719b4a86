// The training loop on a random-weight tiny SD model and the demo dataset: it trains, checkpoints,
// resumes bit-identically after an interrupt, and continues from a TRAINING state.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd, type TrainSettings } from '../../../nodes/training/trainer';
import { listCheckpoints } from '../../../kernels/train/checkpoint';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import { repoRoot } from '../../../server/paths';
import { ATTENTION_LORA, loopSettings, tinyRandomModel } from './tiny-model';
import { nodeContext } from '../context';

const parts = tinyRandomModel();
let dataset: Dataset;
let optimizer: OptimizerValue;
const adapter = ATTENTION_LORA;
const settings: TrainSettings = loopSettings({ steps: 6, saveEvery: 2 });
const dir = () => mkdtempSync(join(tmpdir(), 'lg-train-'));

beforeAll(async () => {
  dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
  const { ctx } = nodeContext();
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
});

const inputs = () => ({ ...parts, datasets: [dataset], adapter, optimizer });

describe('SD LoRA training loop', () => {
  it('trains, writes checkpoints every N steps, and moves the zero-initialised up weights', async () => {
    const cache = dir(), ckpt = dir();
    const progress: number[] = [];
    const r = await trainSd(inputs(), settings, { checkpointDir: ckpt, cacheDir: cache, id: 'a', progress: (p) => { if (p.data.loss !== undefined) progress.push(p.data.loss as number); } });
    expect(r.training.step).toBe(6);
    expect(progress).toHaveLength(6);
    expect(progress.every(Number.isFinite)).toBe(true);
    expect(listCheckpoints(ckpt).map((c) => c.step)).toEqual([2, 4, 6]);
    const up = Object.entries(r.training.weights).find(([k]) => k.endsWith('.lora_up.weight'))![1].data as Float32Array;
    expect(up.some((v) => v !== 0)).toBe(true);
    expect(r.training.lossHistory.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.training.metadata.ss_num_train_images).toBe('24');
  });

  it('an interrupted run resumes from its last checkpoint and ends bit-identical to an uninterrupted one', async () => {
    const cache = dir();
    const full = await trainSd(inputs(), { ...settings, steps: 7, saveEvery: 0 }, { checkpointDir: dir(), cacheDir: cache, id: 'full' });
    const ckpt = dir();
    let done = 0;
    await expect(trainSd(inputs(), { ...settings, steps: 7, saveEvery: 2 }, {
      checkpointDir: ckpt, cacheDir: cache, id: 'cut',
      progress: (p) => { if (p.data.loss !== undefined && ++done === 5) throw new Error('interrupted'); },
    })).rejects.toThrow('interrupted');
    expect(listCheckpoints(ckpt).map((c) => c.step)).toEqual([2, 4]);
    const resumed = await trainSd(inputs(), { ...settings, steps: 7, saveEvery: 2 }, { checkpointDir: ckpt, cacheDir: cache, id: 'cut' });
    expect(resumed.resumedFrom).toBe(4);
    for (const [k, v] of Object.entries(full.training.weights)) expect(resumed.training.weights[k].data, k).toEqual(v.data);
    expect(resumed.training.lossHistory).toEqual(full.training.lossHistory);
  });

  it('continues from a TRAINING state: 3 + 3 steps chained equals a state at step 6 with the optimizer carried over', async () => {
    const cache = dir();
    const a = await trainSd(inputs(), { ...settings, steps: 3 }, { checkpointDir: dir(), cacheDir: cache, id: 'a' });
    const b = await trainSd({ ...inputs(), training: a.training }, { ...settings, steps: 3, seed: 4 }, { checkpointDir: dir(), cacheDir: cache, id: 'b' });
    expect(b.training.step).toBe(6);
    expect(b.training.optimizerSteps).toBe(6);
    expect(b.training.lossHistory).toHaveLength(6);
    expect(b.training.weights).not.toBe(a.training.weights);
    // The input state is untouched.
    expect(a.training.step).toBe(3);
    await expect(trainSd({ ...inputs(), adapter: { ...adapter, rank: 8 }, training: a.training }, settings, { checkpointDir: dir(), cacheDir: cache, id: 'c' }))
      .rejects.toThrow(/other LoRA Target settings/);
  });
});

describe('DOP in the training loop', () => {
  it('adds a preservation loss that starts at zero (adapter off = on at init) and trains', async () => {
    const { preservationCaption } = await import('../../../nodes/training/regularizer');
    expect(preservationCaption('a red sks on a blue background', 'sks', 'shape')).toBe('a red shape on a blue background');
    expect(preservationCaption('sksx sks, sks', 'sks', 'star')).toBe('sksx star, star');
    const reg = { kind: 'regularizer' as const, preservationMultiplier: 1, classWord: 'shape', blankPrompt: true, differentialGuidance: 0, byteSize: () => 0 };
    const seen: Record<string, number>[] = [];
    const r = await trainSd({ ...inputs(), regularizer: reg }, { ...settings, steps: 3, saveEvery: 0 }, {
      checkpointDir: dir(), cacheDir: dir(), id: 'dop', progress: (p) => { if (p.data.loss !== undefined) seen.push(p.data as Record<string, number>); },
    });
    expect(r.training.step).toBe(3);
    expect(seen).toHaveLength(3);
    expect(seen.every((s) => Number.isFinite(s.loss))).toBe(true);
    // Zero up to float rounding: the adapted and base UNets differ only by an exact-zero delta at init.
    expect(seen[0].preservationLoss).toBeLessThan(1e-9);
    expect(seen[2].preservationLoss).toBeGreaterThan(0);
    expect(seen[0].loss).toBeCloseTo(seen[0].mainLoss, 6);
  });
});

describe('regularization images among the datasets', () => {
  it('weights their loss by priorLossWeight (0 silences regularization batches)', async () => {
    const regSet = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-reg'), isRegularization: true, resolutions: [64] });
    const losses: number[] = [];
    await trainSd({ ...inputs(), datasets: [dataset, regSet] }, { ...settings, steps: 8, saveEvery: 0, priorLossWeight: 0 }, {
      checkpointDir: dir(), cacheDir: dir(), id: 'reg', progress: (p) => { if (p.data.loss !== undefined) losses.push(p.data.loss as number); },
    });
    expect(losses.filter((l) => l === 0).length).toBeGreaterThan(0);
    expect(losses.filter((l) => l > 0).length).toBeGreaterThan(0);
  });
});
