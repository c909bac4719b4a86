// The training loop on a random-weight tiny SDXL: training both text encoders (token ids of two
// tokenizers, `ids` and `ids_2`) with the UNet, with DOP (the preservation pass gets its own size/crop
// conditioning) and flips; the te1/te2 up weights move, and a rerun with the same seed is bit-identical.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RandomWeights } from '../../../kernels';
import { sdxlFamily, tinySdxlConfig } from '../../../kernels/sdxl';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd } from '../../../nodes/training/trainer';
import { trainSettings } from './settings';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import { clipValue, modelValue, vaeValue } from '../../../nodes/models/values';
import type { AdapterSpec, ModelSource } from '../../../nodes/sockets';
import type { RegularizerValue } from '../../../nodes/training/regularizer';
import { repoRoot } from '../../../server/paths';
import { nodeContext } from '../context';

const cfg = tinySdxlConfig();
const tokDir = join(repoRoot, 'assets/tiny/tokenizer');
const source: ModelSource = { path: 'test:random-sdxl', label: 'random-tiny-sdxl', family: 'sdxl', id: 'random-sdxl', config: cfg };
const bytes = () => 1e6;
const parts = {
  model: modelValue(sdxlFamily, source, cfg, new RandomWeights(1, 0.05), 'none', bytes),
  clip: clipValue(sdxlFamily, source, cfg, [
    { part: 'text_encoder', weights: new RandomWeights(2, 0.05), tokenizer: ClipTokenizer.fromFolder(tokDir) },
    { part: 'text_encoder_2', weights: new RandomWeights(3, 0.05), tokenizer: ClipTokenizer.fromFolder(tokDir, { padToken: '!' }) },
  ], 1, 'none', bytes),
  vae: vaeValue(sdxlFamily, source, cfg, new RandomWeights(4, 0.05), bytes),
};
const adapter: AdapterSpec = {
  kind: 'adapter', algo: 'LoRA', rank: 2, alpha: 2, convRank: 2, convAlpha: 2, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'attention', include: [], exclude: [], trainTextEncoder: true, byteSize: () => 64,
};
const regularizer: RegularizerValue = { kind: 'regularizer', preservationMultiplier: 0.5, classWord: 'shape', blankPrompt: false, differentialGuidance: 0, byteSize: () => 64 };
const settings = trainSettings({ steps: 3, batchSize: 2, seed: 5, minSnrGamma: 5 });
const dir = () => mkdtempSync(join(tmpdir(), 'lg-train-sdxl-'));
let dataset: Dataset;
let optimizer: OptimizerValue;

beforeAll(async () => {
  dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64], flipX: true });
  const { ctx } = nodeContext();
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-2 }), ctx })).outputs.optimizer as OptimizerValue;
});

describe('SDXL LoRA training loop', () => {
  it('trains the UNet and both text encoders with DOP; a rerun is bit-identical', async () => {
    const run = () => trainSd({ ...parts, datasets: [dataset], adapter, optimizer, regularizer }, settings, { checkpointDir: dir(), cacheDir: dir(), id: 'sdxl' });
    const a = await run();
    const w = a.training.weights;
    const moved = (prefix: string) => Object.entries(w).some(([k, t]) => k.startsWith(prefix) && k.endsWith('lora_up.weight') && (t.data as Float32Array).some((v) => v !== 0));
    expect(moved('lora_unet_')).toBe(true);
    expect(moved('lora_te1_')).toBe(true);
    expect(moved('lora_te2_')).toBe(true);
    expect(a.training.lossHistory).toHaveLength(3);
    expect(a.training.lossHistory.every((p) => Number.isFinite(p.loss))).toBe(true);
    const b = await run();
    for (const [k, t] of Object.entries(w)) expect(b.training.weights[k].data, k).toEqual(t.data);
  }, 600_000);
});
