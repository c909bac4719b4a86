// The memory pre-flight as the Train node meets it: with a small LORAGRAPH_MEMORY_LIMIT_MB the training
// loop refuses before its first step, naming each setting that would lower memory on its node (only
// those not already used), and without a limit it reports the estimate the node shows. Load Model's
// precision and Train's gradientCheckpointing resolve `auto` by model size.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd, type TrainSettings } from '../../../nodes/training/trainer';
import { listCheckpoints } from '../../../kernels/train/checkpoint';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import type { ModelValue } from '../../../nodes/sockets';
import { describeEstimate } from '../../../nodes/training/memory-advice';
import { denoiserParameters, resolveCheckpointing, resolvePrecision, withPrecision } from '../../../nodes/models/precision';
import { PrecisionWeights } from '../../../kernels/nn/precision';
import { sdxlFamily } from '../../../kernels/sdxl/family';
import { SDXL_BASE } from '../../../kernels/sdxl/config';
import { repoRoot } from '../../../server/paths';
import { ATTENTION_LORA, loopSettings, tinyRandomModel } from './tiny-model';
import { nodeContext } from '../context';

const parts = tinyRandomModel();
let dataset: Dataset;
let optimizer: OptimizerValue;
const adapter = ATTENTION_LORA;
const settings: TrainSettings = loopSettings({});
const dir = () => mkdtempSync(join(tmpdir(), 'lg-preflight-'));
const before = process.env.LORAGRAPH_MEMORY_LIMIT_MB;
afterEach(() => { if (before === undefined) delete process.env.LORAGRAPH_MEMORY_LIMIT_MB; else process.env.LORAGRAPH_MEMORY_LIMIT_MB = before; });

beforeAll(async () => {
  dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
  const { ctx } = nodeContext();
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
});

describe('Train memory pre-flight', () => {
  it('refuses before the first step under a small LORAGRAPH_MEMORY_LIMIT_MB, naming every setting to change on its node', async () => {
    process.env.LORAGRAPH_MEMORY_LIMIT_MB = '40';
    const ckpt = dir();
    const err: Error = await trainSd({ ...parts, datasets: [dataset], adapter, optimizer }, settings, { checkpointDir: ckpt, cacheDir: dir(), id: 'refuse' }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    for (const part of [
      'Training batch 2 at 64×64 needs an estimated', '40 MiB is available (LORAGRAPH_MEMORY_LIMIT_MB)',
      'turn on gradientCheckpointing on the Train node (now off)', 'set precision to bf16 or fp16 on Load Model (now fp32)',
      'a Quantize node between Load Model and Train with unet nf4 or int8 (now none)', 'lower batchSize on the Train node (now 2',
      'lower the resolution on the Dataset (now 64×64)',
    ]) expect(err.message).toContain(part);
    expect(listCheckpoints(ckpt)).toEqual([]); // no step ran
  });

  it('names only what is left to change when checkpointing, bf16 and batch 1 are already set', async () => {
    process.env.LORAGRAPH_MEMORY_LIMIT_MB = '40';
    const model = withPrecision(parts.model, 'bf16', dir());
    expect(model.denoiser).toBeInstanceOf(PrecisionWeights);
    const err: Error = await trainSd({ ...parts, model, datasets: [dataset], adapter, optimizer }, { ...settings, batchSize: 1, gradientCheckpointing: true },
      { checkpointDir: dir(), cacheDir: dir(), id: 'refuse-2' }).catch((e) => e);
    expect(err.message).toContain('Training batch 1 at 64×64 needs an estimated');
    expect(err.message).toContain('Quantize node');
    expect(err.message).toContain('resolution on the Dataset');
    for (const gone of ['gradientCheckpointing', 'precision to', 'batchSize']) expect(err.message).not.toContain(gone);
  });

  it('without a limit it trains and returns the estimate the Train node shows', async () => {
    delete process.env.LORAGRAPH_MEMORY_LIMIT_MB;
    const r = await trainSd({ ...parts, datasets: [dataset], adapter, optimizer }, settings, { checkpointDir: dir(), cacheDir: dir(), id: 'fits' });
    expect(r.training.step).toBe(2);
    const e = r.memory!;
    expect(e.total).toBeGreaterThan(40 * 2 ** 20);
    expect(e.total).toBe(e.weights + e.inputs + e.activations + e.runtime);
    expect(describeEstimate(e)).toMatch(/^memory: estimated peak \d+(\.\d+)? (MiB|GiB) \(weights /);
  });

  it('auto precision and checkpointing: bf16 and on from a billion denoiser parameters (SDXL), fp32 and off below (the tiny model)', () => {
    const sdxl = { ...parts.model, family: sdxlFamily, config: SDXL_BASE } as unknown as ModelValue;
    const sdxlParams = denoiserParameters(sdxl);
    expect(sdxlParams).toBeGreaterThan(2.5e9); // SDXL's UNet: 2.57 B
    expect(denoiserParameters(parts.model)).toBeLessThan(1e8);
    expect(resolvePrecision('auto', sdxlParams)).toBe('bf16');
    expect(resolvePrecision('auto', denoiserParameters(parts.model))).toBe('fp32');
    expect(resolvePrecision('fp16', sdxlParams)).toBe('fp16');
    expect(resolveCheckpointing('auto', sdxl)).toBe(true);
    expect(resolveCheckpointing('auto', parts.model)).toBe(false);
    expect(resolveCheckpointing('on', parts.model)).toBe(true);
    expect(resolveCheckpointing('off', sdxl)).toBe(false);
  });
});
