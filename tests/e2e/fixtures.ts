// A data folder with a random-weight tiny SD checkpoint in models/, for end-to-end runs of the real
// nodes that must not depend on the pretrained asset; and what the FLUX CLI tests share: seeded model
// parts written as the files users download, the shapes dataset, the CLI run and the falling loss.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { expect } from 'vitest';
import * as K from '../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../kernels/io/safetensors';
import { loadCheckpoint, listCheckpoints } from '../../kernels/train/checkpoint';
import { saveSingleFile } from '../../kernels/sd/save';
import { tinyConfig } from '../../kernels/sd/config';
import { repoRoot } from '../../server/paths';

export async function dataDirWithRandomTiny(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lg-e2e-'));
  mkdirSync(join(dir, 'models'), { recursive: true });
  let s = 7;
  await saveSingleFile(join(dir, 'models', 'tiny-random.safetensors'), tinyConfig(), (_c, name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    const isNorm = /norm.*\.weight$|ln_.*weight$|layer_norm.*weight$/.test(name);
    for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; a[i] = isNorm ? 1 : (s / 2 ** 32 - 0.5) * 0.1; }
    return a;
  }, { dtype: 'F16' });
  return dir;
}

/** A small training graph in API form: model → dataset → LoRA → Train (→ Train) → Save. */
export function trainGraph(o: { steps?: number; secondSteps?: number; saveEvery?: number; ema?: boolean; optimizer?: string; lr?: number; secondLr?: number } = {}) {
  const g: Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title: string } }> = {
    '1': { class_type: 'LoadModel', inputs: { checkpoint: 'tiny-random.safetensors' } },
    '2': { class_type: 'Dataset', inputs: { folder: 'demo-star', triggerWord: 'sks', resolution: '64' } },
    '3': { class_type: 'LoraTarget', inputs: { rank: 4, alpha: 4, targetPreset: 'attention' } },
    '4': { class_type: 'Optimizer', inputs: { optimizer: o.optimizer ?? 'AdamW', learningRate: o.lr ?? 1e-3 } },
    '5': {
      class_type: 'Train', _meta: { title: 'Train A' },
      inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['2', 0]], adapter: ['3', 0], optimizer: ['4', 0], steps: o.steps ?? 6, batchSize: 2, saveEvery: o.saveEvery ?? 0, maxSavesToKeep: 2, ema: o.ema ?? false, emaDecay: 0.9 },
    },
    '6': { class_type: 'SaveLora', inputs: { training: [o.secondSteps ? '8' : '5', 0], name: 'e2e', dtype: 'fp32', useEma: o.ema ?? false } },
  };
  if (o.secondSteps) {
    g['7'] = { class_type: 'Optimizer', inputs: { optimizer: 'AdamW', learningRate: o.secondLr ?? 5e-4 }, _meta: { title: 'Optimizer B' } };
    g['8'] = {
      class_type: 'Train', _meta: { title: 'Train B' },
      inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['2', 0]], adapter: ['3', 0], optimizer: ['7', 0], training: ['5', 0], steps: o.secondSteps, batchSize: 2 },
    };
  }
  return g;
}

// ---- DiT families through the CLI ---------------------------------------------------------------------

/**
 * The FLUX CLI tests' graph: Load Model → Dataset (the shapes folder) → LoRA Target (ai-toolkit's FLUX
 * targets) → Timestep Schedule → Train → Save LoRA (ai-toolkit) → Sampler; each test names its model,
 * Train extras, LoRA name and Sampler settings.
 */
export function fluxCliGraph(o: { loadModel: Record<string, unknown>; steps: number; train?: Record<string, unknown>; loraName: string; sampler: Record<string, unknown> }) {
  return {
    '1': { class_type: 'LoadModel', inputs: o.loadModel },
    '2': { class_type: 'Dataset', inputs: { folder: 'shapes', triggerWord: 'sks', resolution: '64' } },
    '3': { class_type: 'LoraTarget', inputs: { rank: 4, alpha: 4, targetPreset: 'attention_ff' } },
    '4': { class_type: 'Optimizer', inputs: { optimizer: 'AdamW', learningRate: 1e-2 } },
    // A narrow band of noise levels keeps the per-step loss comparable, so "it falls" is visible in few steps.
    '5': { class_type: 'TimestepSchedule', inputs: { timestepType: 'linear', minTimestep: 450, maxTimestep: 550 } },
    '6': {
      class_type: 'Train',
      inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['2', 0]], adapter: ['3', 0], optimizer: ['4', 0], schedule: ['5', 0], steps: o.steps, batchSize: 1, saveEvery: 0, saveName: '', ...o.train },
    },
    '7': { class_type: 'SaveLora', inputs: { training: ['6', 0], name: o.loraName, format: 'ai-toolkit', dtype: 'fp32' } },
    '8': { class_type: 'Sampler', inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], training: ['6', 0], steps: 3, ...o.sampler } },
  };
}

export const loragraphBin = join(repoRoot, 'bin', 'loragraph.js');

/** `loragraph run <file> --data-dir <data>`, waited for. */
export function runCli(data: string, file: string) {
  return spawnSync(loragraphBin, ['run', file, '--data-dir', data], { cwd: repoRoot, encoding: 'utf8', timeout: 600_000 });
}

/** The named tensors a part reads, seeded (norm scales 1, as a fresh model has them). */
export function seededTensors(build: (b: K.Builder) => void, seed: number): Map<string, K.HostTensor> {
  const w = new K.RandomWeights(seed, 0.06);
  build(new K.Builder(w));
  for (const [k, t] of w.tensors) if (/(^|\.)(scale|norm\.weight)$|_norm\.weight$|norm\d?\.weight$/.test(k) && !/conv/.test(k)) (t.data as Float32Array).fill(1);
  return w.tensors;
}

/** Writes tensors as F16 under the names `rename` gives them. */
export function writeF16(path: string, tensors: Map<string, K.HostTensor>, rename: (k: string) => string = (k) => k, metadata: Record<string, string> = {}) {
  return writeSafetensors(path, Object.fromEntries([...tensors].map(([k, t]): [string, TensorToWrite] => [rename(k), { dtype: 'F16', shape: t.shape, data: t.data as Float32Array }])), metadata);
}

/** datasets/shapes/: three 64² images of one red diamond on blue, green and white, captioned with [trigger]. */
export async function writeShapesDataset(dataDir: string): Promise<void> {
  const ds = join(dataDir, 'datasets', 'shapes');
  mkdirSync(ds, { recursive: true });
  const backgrounds: [string, [number, number, number]][] = [['blue', [40, 60, 200]], ['green', [40, 170, 60]], ['white', [240, 240, 240]]];
  for (const [name, bg] of backgrounds) {
    const s = 64, px = Buffer.alloc(s * s * 3);
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) px.set(Math.abs(x - 32) + Math.abs(y - 32) < 18 ? [220, 30, 30] : bg, (y * s + x) * 3);
    await sharp(px, { raw: { width: s, height: s, channels: 3 } }).png().toFile(join(ds, `${name}.png`));
    writeFileSync(join(ds, `${name}.txt`), `a red [trigger] on a ${name} background`);
  }
}

/** The checkpoint folders of the Train nodes that ran in a data folder. */
export const trainCheckpointDirs = (data: string) => readdirSync(join(data, 'cache')).filter((d) => d.startsWith('Train')).map((d) => join(data, 'cache', d, 'checkpoints')).filter(existsSync);

/** Every step's loss, from the newest checkpoint of the (only) Train node. */
export async function trainedLosses(data: string): Promise<number[]> {
  const [dir] = trainCheckpointDirs(data);
  const final = await loadCheckpoint(listCheckpoints(dir).at(-1)!.path);
  return (final.meta as { lossHistory: { step: number; loss: number }[] }).lossHistory.map((p) => p.loss);
}

/** The loss falls: the last quarter of the steps averages below 95% of the first quarter. */
export function expectLossFalls(losses: readonly number[]): void {
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const q = Math.floor(losses.length / 4);
  expect(mean(losses.slice(-q)), losses.map((l) => l.toFixed(4)).join(' ')).toBeLessThan(mean(losses.slice(0, q)) * 0.95);
}
