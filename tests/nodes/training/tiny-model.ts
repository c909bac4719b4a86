// A random-weight tiny SD model as MODEL/CLIP/VAE values (the same value constructors and encoders
// Load Model uses), for trainer tests that must not depend on the pretrained asset.
import { join } from 'node:path';
import { RandomWeights } from '../../../kernels';
import { tinyConfig } from '../../../kernels/sd/config';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { sd1Family } from '../../../kernels/sd/sd1-family';
import { clipValue, modelValue, vaeValue } from '../../../nodes/models/values';
import type { ModelSource } from '../../../nodes/sockets';
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
