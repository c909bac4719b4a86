// The Sampler node's `sampler` choice on FLUX: unipc renders through the real pipeline (other pixels than
// euler's, same seed), and a choice the model's family does not offer is refused before anything is
// compiled, naming the sampler widget — DDIM on FLUX.2 [klein], UniPC on SD 1.x.
import { describe, it, expect, beforeAll } from 'vitest';
import loadModelNode from '../../nodes/load-model';
import samplerNode from '../../nodes/sampler';
import type { ClipValue, ImagesValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { writeTinyKlein } from './flux-tiny-model';
import { writeTinyCheckpoint } from './tiny-model';
import { samplerSettingsNode } from '../../nodes/sampler';
import { trainingSampler } from '../../nodes/training/samples';
import type { AdapterSpec, SamplerSettings } from '../../nodes/sockets';

const { ctx } = nodeContext(undefined, '8');
type Loaded = { model: ModelValue; clip: ClipValue; vae: VaeValue };
const load = async (checkpoint: string) => (await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx })).outputs as Loaded;
const sample = async (inputs: Loaded, sampler: string) => (await samplerNode.execute({
  inputs, widgets: samplerNode.widgets.parse({ prompts: 'a red star on a green background', steps: 3, cfg: 4, sampler, seed: 3 }), ctx,
})).outputs.images as ImagesValue;

let klein: Loaded;
beforeAll(async () => { klein = await load((await writeTinyKlein(ctx.paths.models)).checkpoint); }, 120_000);

describe('Sampler: the sampler widget on FLUX', () => {
  it('unipc renders a tiny klein through the pipeline, differently from euler', async () => {
    const unipc = await sample(klein, 'unipc');
    const euler = await sample(klein, 'euler');
    const [a, b] = [unipc.images[0]!.data, euler.images[0]!.data];
    expect(a.byteLength).toBeGreaterThan(0);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    // Same choice, same seed: the same pixels.
    expect(Buffer.from((await sample(klein, 'unipc')).images[0]!.data).equals(Buffer.from(a))).toBe(true);
  }, 120_000);

  it('a sampler the family does not offer is refused naming the widget', async () => {
    await expect(sample(klein, 'ddim')).rejects.toThrow(/^sampler: FLUX\.2 \[klein\] is a flow-matching model and samples with euler, unipc, not 'ddim' \(set the Sampler or Sampler Settings node's sampler widget\)/);
    await expect(sample(klein, 'euler_ancestral')).rejects.toThrow(/^sampler: FLUX\.2 \[klein\] .* not 'euler_ancestral'/);
    const sd = await load(await writeTinyCheckpoint(ctx.paths.models));
    await expect(sample(sd, 'unipc')).rejects.toThrow(/^sampler: Stable Diffusion 1\.x samples with euler, euler_ancestral, ddim, dpmpp_2m, not 'unipc'/);
  }, 120_000);

  it('Train\'s sample strip refuses the choice when it is set up, before any step', async () => {
    const settings = (await samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({ prompts: 'a red star', sampler: 'ddim' }), ctx })).outputs.settings as SamplerSettings;
    const spec = {} as AdapterSpec; // never read: the refusal comes first
    expect(() => trainingSampler(klein.model, klein.clip, klein.vae, spec, settings)).toThrow(/^sampler: FLUX\.2 \[klein\] is a flow-matching model and samples with euler, unipc, not 'ddim'/);
    expect(trainingSampler(klein.model, klein.clip, klein.vae, spec, { ...settings, sampler: 'unipc' })).toBeTypeOf('function');
  });
});
