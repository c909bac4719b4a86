// FLUX.2 [dev] through the nodes: Load Model takes a tiny dev-architecture transformer with its Mistral
// text encoder chosen on the textEncoder widget (the encoder lives in text_encoders/, its tokenizer.json
// beside it), and the Sampler's cfg is the embedded guidance: previews at 4 (BFL's default) and at 1
// differ, the same scale gives the same pixels.
import { describe, it, expect } from 'vitest';
import { relative } from 'node:path';
import loadModelNode from '../../nodes/load-model';
import samplerNode from '../../nodes/sampler';
import type { ClipValue, ImagesValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { writeTinyDev } from '../kernels/flux/tiny-dev-files';
import { nodeContext } from './context';

const { ctx } = nodeContext(undefined, '14');
type Loaded = { model: ModelValue; clip: ClipValue; vae: VaeValue };

describe('Load Model + Sampler: FLUX.2 [dev]', () => {
  it('loads with the Mistral chosen on textEncoder and previews with cfg as the embedded guidance', async () => {
    const f = await writeTinyDev(ctx.paths.models);
    const rel = (p: string) => relative(ctx.paths.models, p);
    const loaded = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: rel(f.transformer), textEncoder: rel(f.textEncoder), vae: rel(f.vae) }), ctx });
    expect(loaded.ui?.family).toBe('flux2');
    const m = loaded.outputs as Loaded;
    const sample = async (cfg: number) => Buffer.from(((await samplerNode.execute({
      inputs: m, widgets: samplerNode.widgets.parse({ prompts: 'a red circle', steps: 2, cfg, seed: 3, sampler: 'euler', width: 64, height: 64 }), ctx,
    })).outputs.images as ImagesValue).images[0]!.data);
    const four = await sample(4);
    expect(four.byteLength).toBeGreaterThan(0);
    expect(four.equals(await sample(1))).toBe(false);
    expect(four.equals(await sample(4))).toBe(true);
  }, 120_000);
});
