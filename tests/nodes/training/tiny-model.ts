// A random-weight tiny SD model as MODEL/CLIP/VAE values (the same value constructors and encoders
// Load Model uses), for trainer tests that must not depend on the pretrained asset.
import { join } from 'node:path';
import { RandomWeights } from '../../../kernels';
import { tinyConfig } from '../../../kernels/sd/config';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { sd1Family } from '../../../kernels/sd/sd1-family';
import { clipValue, modelValue, vaeValue } from '../../../nodes/models/values';
import type { AdapterSpec, ModelSource } from '../../../nodes/sockets';
import type { TrainSettings } from '../../../nodes/training/trainer';
import { trainSettings } from './settings';
import { repoRoot } from '../../../server/paths';

export function tinyRandomModel(seed = 1) {
  const config = tinyConfig();
  const tokenizer = ClipTokenizer.fromFolder(join(repoRoot, 'assets/tiny/tokenizer'));
  const source: ModelSource = { path: 'test:random', label: 'random-tiny', family: 'sd1', id: `random-${seed}`, config };
  const bytes = () => 1e6;
  return {
    model: modelValue(sd1Family, source, config, new RandomWeights(seed, 0.05), 'none', bytes),
    clip: clipValue(sd1Family, source, config, [{ part: 'text_encoder', weights: new RandomWeights(seed + 1, 0.05), tokenizer }], 1, 'none', bytes),
    vae: vaeValue(sd1Family, source, config, new RandomWeights(seed + 2, 0.05), bytes),
    config,
  };
}

/** Rank-4 LoRA on the attention layers: the trainer tests' adapter. */
export const ATTENTION_LORA: AdapterSpec = {
  kind: 'adapter', algo: 'LoRA', rank: 4, alpha: 4, convRank: 4, convAlpha: 4, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'attention', include: [], exclude: [], trainTextEncoder: false, byteSize: () => 64,
};

/** The trainer tests' settings (2 steps of batch 2, seed 3, every checkpoint kept; otherwise Train's defaults), with `over` applied. */
export const loopSettings = (over: Partial<TrainSettings>): TrainSettings => trainSettings({ steps: 2, batchSize: 2, seed: 3, maxSavesToKeep: 0, ...over });
