// The Timestep Schedule's dynamic shift takes μ from the batch's own token count: the trainer tells the
// schedule the latent grid of each batch (a tiny FLUX.2 [klein] at 64 px → 8×8 tokens), and the drawn
// noise levels follow that μ rather than the node's resolution widget.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd } from '../../../nodes/training/trainer';
import { trainSettings } from './settings';
import loadModelNode from '../../../nodes/load-model';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import timestepScheduleNode, { type ScheduleValue } from '../../../nodes/timestep-schedule';
import type { ClipValue, ModelValue, VaeValue } from '../../../nodes/sockets';
import { repoRoot } from '../../../server/paths';
import { nodeContext } from '../context';
import { writeTinyKlein } from '../flux-tiny-model';
import { Rng } from '../../../kernels/random';
import { adapterSpec } from '../training-fixture';

const { ctx } = nodeContext(undefined, '3');
let model: ModelValue, clip: ClipValue, vae: VaeValue, dataset: Dataset, optimizer: OptimizerValue;

beforeAll(async () => {
  const { checkpoint } = await writeTinyKlein(ctx.paths.models);
  ({ model, clip, vae } = (await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx })).outputs as { model: ModelValue; clip: ClipValue; vae: VaeValue });
  dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
}, 120_000);

describe('dynamic shift in training', () => {
  it('the trainer passes each batch\'s latent token count to the schedule', async () => {
    const schedule = (await timestepScheduleNode.execute({ inputs: {}, widgets: timestepScheduleNode.widgets.parse({ timestepType: 'shift', dynamicShift: true, resolution: 1024 }), ctx })).outputs.schedule as ScheduleValue;
    const seen: (number | undefined)[] = [];
    const recording: ScheduleValue = { ...schedule, sample: (rng, count, step, seqLen) => { seen.push(seqLen); return schedule.sample(rng, count, step, seqLen); } };
    const settings = trainSettings({ steps: 2, seed: 3, cacheLatents: false, cacheTextEmbeddings: false });
    const dir = () => mkdtempSync(join(tmpdir(), 'lg-dynshift-'));
    await trainSd({ model, clip, vae, datasets: [dataset], adapter: (await adapterSpec(ctx, { preset: 'attention', rank: 4 }, model)).spec, optimizer, schedule: recording }, settings, { checkpointDir: dir(), cacheDir: dir(), id: 'dynshift' });
    // 64 px through the tiny klein's VAE (×4; the real one ×8) and 2×2 patches: 8 × 8 tokens per image.
    expect(seen).toEqual([64, 64]);
    // And the count changes the draw: μ at 64 tokens shifts far less than at the widget's 1024 px (4096 tokens).
    const atBatch = schedule.sample(new Rng(1), 4000, 1, 64);
    const atWidget = schedule.sample(new Rng(1), 4000, 1);
    const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(atBatch)).toBeLessThan(mean(atWidget) - 0.05);
  }, 180_000);
});
