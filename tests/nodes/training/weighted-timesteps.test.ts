// ai-toolkit's `weighted` timestep type in training: the draw is linear's, and on a flow-matching model
// (the tiny FLUX.2 [klein]) each sample's loss is multiplied by ai-toolkit's table weight at its noise
// level; on a DDPM model (tiny SD) the loss is linear's. Proven on the first step, where the adapter is
// still at its zero start, so the two runs differ only by the weight.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd, type TrainSettings } from '../../../nodes/training/trainer';
import loadModelNode from '../../../nodes/load-model';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import timestepScheduleNode, { type ScheduleValue } from '../../../nodes/timestep-schedule';
import type { AdapterSpec, ClipValue, ModelValue, VaeValue } from '../../../nodes/sockets';
import { timestepLossWeight } from '../../../kernels/schedules/timestep-sampling';
import { repoRoot } from '../../../server/paths';
import { nodeContext } from '../context';
import { writeTinyKlein } from '../flux-tiny-model';
import { adapterSpec } from '../training-fixture';
import { ATTENTION_LORA, loopSettings, tinyRandomModel } from './tiny-model';

const { ctx } = nodeContext(undefined, '4');
let klein: { model: ModelValue; clip: ClipValue; vae: VaeValue; adapter: AdapterSpec };
let dataset: Dataset, optimizer: OptimizerValue;
// Seed 2 draws σ ≈ 0.745 first, where the weight is 1.35 (seed 3's σ ≈ 0.548 weighs 0.997, too close to 1 to tell).
const settings: TrainSettings = loopSettings({ steps: 1, batchSize: 1, seed: 2, cacheLatents: false, cacheTextEmbeddings: false });
const dir = () => mkdtempSync(join(tmpdir(), 'lg-weighted-'));

beforeAll(async () => {
  const { checkpoint } = await writeTinyKlein(ctx.paths.models);
  const parts = (await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx })).outputs as { model: ModelValue; clip: ClipValue; vae: VaeValue };
  klein = { ...parts, adapter: (await adapterSpec(ctx, { preset: 'attention', rank: 4 }, parts.model)).spec };
  dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
}, 120_000);

/** One step with a `timestepType` schedule: its loss and the noise level it drew. */
async function firstStep(parts: { model: ModelValue; clip: ClipValue; vae: VaeValue }, adapter: AdapterSpec, timestepType: string) {
  const schedule = (await timestepScheduleNode.execute({ inputs: {}, widgets: timestepScheduleNode.widgets.parse({ timestepType }), ctx })).outputs.schedule as ScheduleValue;
  const drawn: number[] = [];
  const recording: ScheduleValue = { ...schedule, sample: (rng, count, step, seqLen) => { const t = schedule.sample(rng, count, step, seqLen); drawn.push(...t); return t; } };
  const losses: number[] = [];
  await trainSd({ ...parts, datasets: [dataset], adapter, optimizer, schedule: recording }, settings, {
    checkpointDir: dir(), cacheDir: dir(), id: `weighted-${timestepType}`, progress: (p) => { if (p.data.loss !== undefined) losses.push(p.data.loss as number); },
  });
  expect(losses).toHaveLength(1);
  return { loss: losses[0], t: drawn[0] };
}

describe('weighted timesteps in training', () => {
  it('flow matching: the loss is linear\'s times ai-toolkit\'s weight at the drawn noise level', async () => {
    const linear = await firstStep(klein, klein.adapter, 'linear');
    const weighted = await firstStep(klein, klein.adapter, 'weighted');
    expect(weighted.t).toBe(linear.t);
    const w = timestepLossWeight('weighted', weighted.t);
    expect(Math.abs(w - 1)).toBeGreaterThan(0.01); // the check below would not notice a missing weight otherwise
    expect(weighted.loss / linear.loss).toBeCloseTo(w, 4);
  }, 180_000);

  it('DDPM: ai-toolkit weighs only flow-matching losses, so weighted trains exactly as linear', async () => {
    const sd = tinyRandomModel();
    const linear = await firstStep(sd, ATTENTION_LORA, 'linear');
    const weighted = await firstStep(sd, ATTENTION_LORA, 'weighted');
    expect(weighted.t).toBe(linear.t);
    expect(weighted.loss).toBe(linear.loss);
  }, 120_000);
});
