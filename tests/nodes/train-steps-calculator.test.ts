// The Train node's steps calculator: repeats per image = steps × batch × grad accum / images, and a
// target repeats count turned into steps = ceil(images × repeats / (batch × grad accum)) — checked as
// formulas and by running the node on a random-weight tiny SD model (the step count it trains is read
// back from the TRAINING state).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import trainNode, { repeatsPerImage, stepsForEpochs, stepsForRepeats, trainingImageCount } from '../../nodes/train';
import optimizerNode from '../../nodes/optimizer';
import { buildDataset, defaultDatasetSettings } from '../../nodes/data/dataset';
import { repoRoot } from '../../server/paths';
import type { TrainingValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { adapterSpec, loadTiny } from './training-fixture';

describe('steps calculator', () => {
  it('repeats per image and steps for a target repeats count invert each other', () => {
    expect(repeatsPerImage(250, 2, 2, 20)).toBe(50);
    expect(stepsForRepeats(20, 50, 2, 2)).toBe(250);
    // The seed recipe: 24 images, 100 repeats, batch 1 → 2400 steps.
    expect(stepsForRepeats(24, 100, 1, 1)).toBe(2400);
    // ceil: 7 images × 3 repeats over batches of 4 is 5.25 → 6 steps, which shows each image 24/7 times.
    expect(stepsForRepeats(7, 3, 4, 1)).toBe(6);
    expect(repeatsPerImage(6, 4, 1, 7)).toBeCloseTo(24 / 7, 12);
    // Floating point must not add a step: 10 × 0.3 = 3.0000000000000004.
    expect(stepsForRepeats(10, 0.3, 1, 1)).toBe(3);
    expect(stepsForRepeats(3, 0.01, 8, 8)).toBe(1);
  });

  it('counts training images, not regularization ones, and refuses an empty count by name', () => {
    const d = (n: number, isRegularization: boolean) => ({ items: new Array(n).fill({}), isRegularization });
    expect(trainingImageCount([d(12, false), d(30, true), d(5, false)])).toBe(17);
    expect(() => stepsForRepeats(0, 10, 1, 1)).toThrow(/stepsFrom repeats.*no training images/);
    expect(() => stepsForRepeats(5, 0, 1, 1)).toThrow(/repeats: must be above 0/);
  });

  it('epochs count as the kohya_ss GUI counts them: images × Dataset repeats per epoch, doubled by a regularization dataset', () => {
    const d = (files: number, repeats: number, isRegularization = false) => ({ epochLength: files * repeats, isRegularization });
    // 20 images in a "10_name" folder, 5 epochs, batch 2: 20 × 10 × 5 / 2 = 500 steps.
    expect(stepsForEpochs([d(20, 10)], 5, 2, 1)).toBe(500);
    // Two folders with their own repeats; grad accum divides like batch.
    expect(stepsForEpochs([d(20, 10), d(6, 3)], 2, 2, 2)).toBe(Math.ceil((2 * (200 + 18)) / 4));
    // A regularization dataset doubles the steps whatever its own size (kohya pairs each image with one).
    expect(stepsForEpochs([d(20, 10), d(500, 1, true)], 5, 2, 1)).toBe(1000);
    // ceil: 7 images, 1 epoch, batch 4 → 2 steps.
    expect(stepsForEpochs([d(7, 1)], 1, 4, 1)).toBe(2);
    expect(() => stepsForEpochs([d(30, 1, true)], 1, 1, 1)).toThrow(/stepsFrom epochs.*no training images/);
    expect(() => stepsForEpochs([d(3, 1)], 1.5, 1, 1)).toThrow(/epochs: must be a whole number/);
  });

  it('the Train node trains ceil(images × repeats / (batch × accum)) steps and shows the repeats', async () => {
    const { ctx } = nodeContext();
    const { model, clip, vae } = await loadTiny(ctx);
    const dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
    const images = dataset.items.length;
    const optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer;
    const { spec } = await adapterSpec(ctx, { rank: 2, preset: 'attention' }, model);
    const widgets = trainNode.widgets.parse({ stepsFrom: 'repeats', repeats: 0.25, steps: 999, batchSize: 2, gradientAccumulation: 1, saveName: '', cacheLatents: true });
    const r = await trainNode.execute({ inputs: { model, clip, vae, datasets: [dataset], adapter: spec, optimizer } as never, widgets, ctx });
    const expected = Math.ceil((images * 0.25) / 2);
    expect((r.outputs.training as TrainingValue).step).toBe(expected);
    const shown = (expected * 2) / images;
    expect(r.ui?.text).toContainEqual(`${images} image(s) × ${Number.isInteger(shown) ? shown : shown.toFixed(2)} repeats = ${expected} steps × batch 2`);
    // stepsFrom epochs on a dataset whose images repeat 3 times: 1 epoch = ceil(images × 3 / 4) steps.
    const repeated = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64], repeats: 3 });
    const e = await trainNode.execute({
      inputs: { model, clip, vae, datasets: [repeated], adapter: spec, optimizer } as never, ctx,
      widgets: trainNode.widgets.parse({ stepsFrom: 'epochs', epochs: 1, steps: 999, batchSize: 4, saveName: '', cacheLatents: true }),
    });
    expect((e.outputs.training as TrainingValue).step).toBe(Math.ceil((images * 3) / 4));
  }, 120_000);
});
