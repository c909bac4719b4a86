// The Sampler node's `scheduler` choice on FLUX: the built-in tiny klein renders other pixels with karras
// than with its own schedule (auto), the same pixels again for the same choice; a scheduler a model does
// not step on is refused before anything is compiled, naming the scheduler widget — by the Sampler and by
// Train's sample strip when it is set up, which samples on the chosen scheduler as the Sampler does.
import { describe, it, expect, beforeAll } from 'vitest';
import loadModelNode from '../../nodes/load-model';
import samplerNode, { samplerSettingsNode } from '../../nodes/sampler';
import { trainingSampler } from '../../nodes/training/samples';
import { checkSchedulerChoice } from '../../nodes/sampling/sampler-choice';
import { BUILTIN_TINY_FLUX } from '../../nodes/models/builtin';
import type { AdapterSpec, ClipValue, ImagesValue, ModelValue, SamplerSettings, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { writeTinyCheckpoint } from './tiny-model';
import { ATTENTION_LORA } from './training/tiny-model';
import { randomWeights } from './training-fixture';

const { ctx } = nodeContext(undefined, '9');
type Loaded = { model: ModelValue; clip: ClipValue; vae: VaeValue };
const load = async (checkpoint: string) => (await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx })).outputs as Loaded;
const sample = async (inputs: Loaded, w: Record<string, unknown>) => (await samplerNode.execute({
  inputs, widgets: samplerNode.widgets.parse({ prompts: 'a red star on a green background', steps: 4, cfg: 4, seed: 3, sampler: 'euler', ...w }), ctx,
})).outputs.images as ImagesValue;
const pixels = (r: ImagesValue) => Buffer.from(r.images[0]!.data);

let klein: Loaded;
beforeAll(async () => { klein = await load(BUILTIN_TINY_FLUX); }, 120_000);

describe('Sampler: the scheduler widget on FLUX', () => {
  it('defaults to auto, the model\'s own schedule', () => {
    expect(samplerNode.widgets.parse({}).scheduler).toBe('auto');
  });

  it('karras renders the built-in tiny klein differently from its own schedule; the same choice gives the same pixels', async () => {
    const auto = pixels(await sample(klein, {}));
    const karras = pixels(await sample(klein, { scheduler: 'karras' }));
    expect(karras.byteLength).toBeGreaterThan(0);
    expect(karras.equals(auto)).toBe(false);
    expect(pixels(await sample(klein, { scheduler: 'karras' })).equals(karras)).toBe(true);
    // UniPC steps on the scheduler's levels too.
    expect(pixels(await sample(klein, { sampler: 'unipc', scheduler: 'beta' })).equals(pixels(await sample(klein, { sampler: 'unipc' })))).toBe(false);
  }, 180_000);

  it('a scheduler the model does not step on is refused naming the widget', async () => {
    const sd = await load(await writeTinyCheckpoint(ctx.paths.models));
    await expect(sample(sd, { sampler: 'ddim', scheduler: 'karras' })).rejects.toThrow(/^scheduler: Stable Diffusion 1\.x's ddim sampler steps on its own timesteps and takes auto or normal, not 'karras'/);
    // A family that names no schedulers steps on its own schedule alone.
    const own = { ...klein.model, family: { ...klein.model.family, schedulers: undefined } };
    expect(() => checkSchedulerChoice(own, 'euler', 'karras')).toThrow(/^scheduler: FLUX\.2 \[klein\] steps on auto, not 'karras' \(set the Sampler or Sampler Settings node's scheduler widget\)/);
    expect(() => checkSchedulerChoice(own, 'euler', 'auto')).not.toThrow();
  }, 120_000);

  it('Train\'s sample strip refuses the choice when it is set up, before any step', async () => {
    const sd = await load(await writeTinyCheckpoint(ctx.paths.models));
    const settings = (await samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({ prompts: 'a red star', sampler: 'ddim', scheduler: 'beta' }), ctx })).outputs.settings as SamplerSettings;
    const spec = {} as AdapterSpec; // never read: the refusal comes first
    expect(() => trainingSampler(sd.model, sd.clip, sd.vae, spec, settings)).toThrow(/^scheduler: Stable Diffusion 1\.x's ddim sampler .* not 'beta'/);
    expect(trainingSampler(klein.model, klein.clip, klein.vae, spec, { ...settings, sampler: 'euler' })).toBeTypeOf('function');
  }, 120_000);

  it('Train\'s sample strip samples on the chosen scheduler too', async () => {
    const settings = (await samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({ prompts: 'a red star', sampler: 'euler', steps: 4, cfg: 4 }), ctx })).outputs.settings as SamplerSettings;
    const weights = randomWeights(ATTENTION_LORA, klein.model);
    const strip = async (scheduler: string) => Buffer.from((await trainingSampler(klein.model, klein.clip, klein.vae, ATTENTION_LORA, { ...settings, scheduler })(0, weights, {} as never, () => {})).png);
    const auto = await strip('auto');
    expect((await strip('exponential')).equals(auto)).toBe(false);
    expect((await strip('auto')).equals(auto)).toBe(true);
  }, 180_000);
});
