// A data folder with a random-weight tiny SD checkpoint in models/, for end-to-end runs of the real
// nodes that must not depend on the pretrained asset.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveSingleFile } from '../../kernels/sd/save';
import { tinyConfig } from '../../kernels/sd/config';

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
