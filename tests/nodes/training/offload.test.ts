// Load Model's `offload: blocks` through the training loop: the SD tiny model trained block by block
// (kernels/train/offload.ts) gives the resident run's losses and LoRA weights, and the Load Model
// node puts the setting on its MODEL.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd, type TrainSettings } from '../../../nodes/training/trainer';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import loadModelNode from '../../../nodes/load-model';
import type { ModelValue } from '../../../nodes/sockets';
import { repoRoot } from '../../../server/paths';
import { ATTENTION_LORA, loopSettings, tinyRandomModel } from './tiny-model';
import { writeTinyCheckpoint } from '../tiny-model';
import { nodeContext } from '../context';

const parts = tinyRandomModel();
let dataset: Dataset;
let optimizer: OptimizerValue;
const adapter = ATTENTION_LORA;
const settings: TrainSettings = loopSettings({ steps: 3 });
const dir = () => mkdtempSync(join(tmpdir(), 'lg-offload-train-'));

beforeAll(async () => {
  dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
  const { ctx } = nodeContext();
  // SGD: Adam's m/√v would turn float32 round-off in near-zero gradients into whole-lr steps.
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ optimizer: 'SGD', learningRate: 0.5, weightDecay: 0 }), ctx })).outputs.optimizer as OptimizerValue;
});

describe('layer offloading in the training loop', () => {
  it('trains the tiny SD model block by block to the resident run\'s losses and weights', async () => {
    const cache = dir();
    const inputs = (model: ModelValue) => ({ ...parts, model, datasets: [dataset], adapter, optimizer });
    const resident = await trainSd(inputs(parts.model), settings, { checkpointDir: dir(), cacheDir: cache, id: 'resident' });
    const offloaded = await trainSd(inputs({ ...parts.model, offload: 'blocks' }), settings, { checkpointDir: dir(), cacheDir: cache, id: 'offloaded' });
    const [a, b] = [resident.training.lossHistory.map((p) => p.loss), offloaded.training.lossHistory.map((p) => p.loss)];
    expect(b).toHaveLength(3);
    b.forEach((l, i) => expect(Math.abs(l - a[i]) / a[i]).toBeLessThan(1e-4));
    let moved = 0;
    for (const [k, v] of Object.entries(resident.training.weights)) {
      const x = v.data as Float32Array, y = offloaded.training.weights[k].data as Float32Array;
      let d = 0, s = 0;
      for (let i = 0; i < x.length; i++) { d = Math.max(d, Math.abs(x[i] - y[i])); s = Math.max(s, Math.abs(x[i])); }
      expect(d / Math.max(s, 1e-12), k).toBeLessThan(1e-4);
      if (k.endsWith('.lora_up.weight') && s > 0) moved++;
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('Load Model puts offload on the MODEL and says so', async () => {
    const { ctx } = nodeContext();
    const name = await writeTinyCheckpoint(ctx.paths.models);
    const r = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: name, offload: 'blocks' }), ctx });
    expect((r.outputs.model as ModelValue).offload).toBe('blocks');
    expect(r.ui!.text!.join('\n')).toMatch(/layer offloading: blocks/);
    const plain = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: name }), ctx });
    expect((plain.outputs.model as ModelValue).offload).toBeUndefined();
    expect(() => loadModelNode.widgets.parse({ checkpoint: name, offload: 'layers' })).toThrow();
  });
});
