// Sampler and Sampler Settings: kohya prompt syntax, seeded reproducible images, compare mode (base model
// beside the adapter), EMA toggle, inline previews per image and the grid on the node.
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { samplerNode, samplerSettingsNode } from '../../nodes/sampler';
import { parsePrompts } from '../../nodes/sampling/prompts';
import type { ClipValue, ImagesValue, ModelValue, SamplerSettings, TrainingValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { adapterSpec, loadTiny, randomWeights, trainingValue } from './training-fixture';

const made = nodeContext();
const { ctx } = made;
let model: ModelValue, clip: ClipValue, vae: VaeValue, training: TrainingValue;
beforeAll(async () => {
  ({ model, clip, vae } = await loadTiny(ctx));
  const { spec } = await adapterSpec(ctx, { rank: 4 }, model);
  training = trainingValue(spec, model, randomWeights(spec, model), { ema: randomWeights(spec, model, 11) });
});

const sample = (w: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  samplerNode.execute({ inputs: { model, clip, vae, ...extra }, widgets: samplerNode.widgets.parse({ steps: 3, ...w }), ctx });
const images = (r: Awaited<ReturnType<typeof sample>>) => (r.outputs.images as ImagesValue).images;

describe('sample prompts', () => {
  it('reads kohya inline options and names bad ones', () => {
    expect(parsePrompts('a red star --n blurry, dark --d 7 --w 128 --h 64 --s 12 --l 5.5\n\n# comment\nplain')).toEqual([
      { prompt: 'a red star', negativePrompt: 'blurry, dark', seed: 7, width: 128, height: 64, steps: 12, cfg: 5.5 },
      { prompt: 'plain' },
    ]);
    expect(() => parsePrompts('ok\nx --q 3')).toThrow(/prompts line 2: unknown option --q/);
    expect(() => parsePrompts('x --d seven')).toThrow(/--d needs a number/);
    expect(() => parsePrompts('x --w 0')).toThrow(/--w needs a positive integer/);
  });

  it('Sampler Settings packages the widgets', async () => {
    const r = await samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({ prompts: 'a\nb --d 3', walkSeed: true }), ctx });
    const s = r.outputs.settings as SamplerSettings;
    expect(s.prompts).toEqual([{ prompt: 'a' }, { prompt: 'b', seed: 3 }]);
    expect(s).toMatchObject({ kind: 'sampler_settings', walkSeed: true, sampler: 'euler_ancestral', width: 0 });
    await expect(samplerSettingsNode.execute({ inputs: {}, widgets: samplerSettingsNode.widgets.parse({ prompts: '  \n' }), ctx })).rejects.toThrow(/^prompts:/);
  });
});

describe('Sampler node', () => {
  it('is reproducible under a seed, changes with it, and honours per-prompt size and seed', async () => {
    const a = images(await sample({ prompts: 'a red circle\na blue square --w 32 --h 64 --d 9', seed: 1 }));
    const b = images(await sample({ prompts: 'a red circle\na blue square --w 32 --h 64 --d 9', seed: 1 }));
    const c = images(await sample({ prompts: 'a red circle\na blue square --w 32 --h 64 --d 9', seed: 2 }));
    expect(a.map((i) => [i.width, i.height])).toEqual([[64, 64], [32, 64]]);
    expect(a[0].data).toEqual(b[0].data);
    expect(a[1].data).toEqual(b[1].data);
    expect(c[0].data).not.toEqual(a[0].data);
    expect(c[1].data).toEqual(a[1].data); // its own --d seed
    expect(a[1].label).toMatch(/seed 9/);
  });

  it('scheduler karras changes the noise levels of Euler and DPM++ 2M; auto is normal; DDIM keeps its even timesteps and refuses others', async () => {
    for (const sampler of ['euler', 'dpmpp_2m']) {
      const auto = images(await sample({ prompts: 'a red circle', seed: 1, sampler }));
      const karras = images(await sample({ prompts: 'a red circle', seed: 1, sampler, scheduler: 'karras' }));
      expect(karras[0].data, sampler).not.toEqual(auto[0].data);
      expect(images(await sample({ prompts: 'a red circle', seed: 1, sampler, scheduler: 'normal' }))[0].data, sampler).toEqual(auto[0].data);
    }
    const ddim = images(await sample({ prompts: 'a red circle', seed: 1, sampler: 'ddim' }));
    expect(images(await sample({ prompts: 'a red circle', seed: 1, sampler: 'ddim', scheduler: 'normal' }))[0].data).toEqual(ddim[0].data);
    await expect(sample({ prompts: 'a red circle', seed: 1, sampler: 'ddim', scheduler: 'karras' })).rejects.toThrow(/^scheduler: .* ddim sampler steps on its own timesteps/);
  });

  it('compare renders the base model beside the adapter; the base image equals a run without the adapter', async () => {
    const { previews } = made;
    const before = previews.length;
    const r = await sample({ prompts: 'a green star', compare: true, loraStrength: 1 }, { training });
    const [without, withLora] = images(r);
    expect(previews.length - before).toBe(2); // one preview per image as it arrives
    expect(without.label).toMatch(/without LoRA/);
    expect(withLora.label).toMatch(/LoRA 1/);
    const base = images(await sample({ prompts: 'a green star' }));
    expect(without.data).toEqual(base[0].data);
    expect(withLora.data).not.toEqual(without.data);
    const ref = r.ui!.images![0];
    expect(existsSync(join(ctx.paths.temp, ref.subfolder, ref.filename))).toBe(true);
    const ema = images(await sample({ prompts: 'a green star', useEma: true }, { training }));
    expect(ema[0].data).not.toEqual(withLora.data);
    const zero = images(await sample({ prompts: 'a green star', loraStrength: 0 }, { training }));
    expect(zero[0].data).toEqual(base[0].data);
  });

  it('names what is wrong with its inputs', async () => {
    await expect(sample({ compare: true })).rejects.toThrow(/^compare: connect a TRAINING or LORA_FILE/);
    await expect(sample({ useEma: true }, { training: { ...training, ema: undefined } })).rejects.toThrow(/^useEma:/);
  });
});
