// FLUX.2 [klein] end to end through the nodes: Load Model detects a tiny klein written as ComfyUI-style
// separate files (BFL transformer, Qwen3, ae, tokenizer.json), LoRA Target picks ai-toolkit's modules, a few
// real LoRA steps train them, Save LoRA writes ai-toolkit (its default), kohya and diffusers files, and
// Load LoRA reads each back to the same samples as the live adapter.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { relative } from 'node:path';
import * as K from '../../kernels';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { tinyFlux2Config } from '../../kernels/flux/family';
import { buildTrainGraph } from '../../kernels/families/training-graph';
import { Rng } from '../../kernels/random';
import loadModelNode from '../../nodes/load-model';
import saveLoraNode from '../../nodes/save-lora';
import loadLoraNode from '../../nodes/load-lora';
import { adapterSetsFor } from '../../nodes/models/adapters';
import { resolveLoraFormat } from '../../nodes/models/lora-file';
import { sd1Family } from '../../kernels/sd/sd1-family';
import { renderSamples } from '../../nodes/sampling/render';
import type { ClipValue, LoraFileValue, ModelValue, SamplerSettings, TrainingValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { writeTinyKlein } from './flux-tiny-model';
import { adapterSpec, trainingValue } from './training-fixture';

const { ctx } = nodeContext(undefined, '7');
const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());

let model: ModelValue, clip: ClipValue, vae: VaeValue;
let loadText: string[];
beforeAll(async () => {
  const checkpoint = (await writeTinyKlein(ctx.paths.models)).checkpoint;
  const r = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx });
  ({ model, clip, vae } = r.outputs as { model: ModelValue; clip: ClipValue; vae: VaeValue });
  loadText = (r.ui as { text: string[] }).text;
}, 120_000);

/** A few AdamW steps of the spec's LoRA on random latents and text features: weights a real run would give. */
async function trainFewSteps(spec: TrainingValue['adapter']): Promise<Record<string, K.HostTensor>> {
  const c = model.config as ReturnType<typeof tinyFlux2Config>;
  const adapters = adapterSetsFor(spec, model);
  const g = buildTrainGraph({ family: model.family, config: c, denoiserWeights: model.denoiser, adapters, batch: 1, latentSize: [4, 4] });
  const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
  await ts.init(adapters.denoiser.initialValues(3));
  const rng = new Rng(9);
  const ht = (shape: number[], r: Rng): K.HostTensor => ({ dtype: 'float32', shape, data: r.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))) });
  const feed = { latents: ht([1, 128, 4, 4], rng.fork('x')), noise: ht([1, 128, 4, 4], rng.fork('n')), timesteps: { dtype: 'float32' as const, shape: [1], data: Float32Array.of(0.6) }, context: ht([1, c.text.maxLength, c.transformer.contextDim], rng.fork('c')) };
  const losses: number[] = [];
  for (let s = 1; s <= 4; s++) losses.push((await ts.step([feed], 5e-2, s)).loss);
  expect(losses[3]).toBeLessThan(losses[0]);
  const values = await ts.read(false);
  await ts.dispose();
  return Object.fromEntries(Object.entries(values).filter(([k]) => k.startsWith('lora_')));
}

const settings: SamplerSettings = {
  kind: 'sampler_settings', prompts: [{ prompt: 'a red star on a green background' }], negativePrompt: '', seed: 3, walkSeed: false,
  steps: 3, cfg: 4, sampler: 'euler', scheduler: 'auto', width: 0, height: 0, loraStrength: 1, byteSize: () => 0,
};
const render = async (t: TrainingValue) => (await renderSamples({ model, clip, vae, settings, adapter: { spec: t.adapter, weights: t.weights } }))[0];

describe('FLUX.2 [klein] LoRA through Load Model, LoRA Target, Save LoRA and Load LoRA', () => {
  it('Load Model detects the tiny klein from its keys and finds its text encoder and VAE in the models folder', () => {
    expect(model.family.id).toBe('flux2');
    expect(loadText[0]).toMatch(/^FLUX\.2 \[klein\] · klein-tiny/);
    expect(loadText[1]).toMatch(/transformer .*M, text encoder .*M, VAE .*M parameters/);
  });

  it('trains, saves in ai-toolkit (auto), kohya and diffusers, and every file loads back to the same samples', async () => {
    const { spec, ui } = await adapterSpec(ctx, { rank: 4, alpha: 2 }, model);
    // ai-toolkit's default targets on the tiny klein: 8 per double block (qkv, proj, mlp.0, mlp.2 × 2 streams), 2 per single block.
    const tc = (model.config as ReturnType<typeof tinyFlux2Config>).transformer;
    expect((ui as { text: string[] }).text[1]).toMatch(new RegExp(` in ${tc.depthDouble * 8 + tc.depthSingle * 2} transformer modules$`));
    const t = trainingValue(spec, model, await trainFewSteps(spec), { metadata: { ss_resolution: '(64, 64)' } });
    const live = await render(t);
    const base = (await renderSamples({ model, clip, vae, settings }))[0];
    expect(Buffer.compare(Buffer.from(live.rgb), Buffer.from(base.rgb)), 'the trained LoRA changes the sample').not.toBe(0);

    const expected = {
      auto: { key: 'diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight', format: 'ai-toolkit' },
      kohya: { key: 'lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight', format: 'kohya' },
      diffusers: { key: 'transformer.transformer_blocks.0.attn.to_q.lora_A.weight', format: 'diffusers' },
    } as const;
    for (const [choice, want] of Object.entries(expected)) {
      const r = await saveLoraNode.execute({ inputs: { training: t }, widgets: saveLoraNode.widgets.parse({ name: `klein-${choice}`, format: choice, dtype: 'fp32' }), ctx });
      const file = r.outputs.loraFile as LoraFileValue;
      expect(file.format).toBe(want.format);
      const saved = await loadSafetensors(file.path);
      const keys = [...saved.tensors.keys()];
      expect(keys, choice).toContain(want.key);
      expect(keys.some((k) => k.endsWith('.alpha')), `${choice}: alpha tensors`).toBe(want.format === 'kohya');
      // ai-toolkit and diffusers fold alpha / rank into the up weights (scale 1, as their loaders apply them).
      expect(saved.metadata.ss_network_alpha).toBe(want.format === 'kohya' ? '2' : '4');
      expect(saved.metadata.ss_base_model_version).toBe('flux2_klein');
      expect(saved.metadata['modelspec.architecture']).toBe('Flux.2-klein/lora');
      expect(saved.metadata['modelspec.implementation']).toBe('https://github.com/black-forest-labs/flux2');
      expect(saved.metadata['modelspec.prediction_type']).toBeUndefined();
      expect((r.ui as { text: string[] }).text[1]).toMatch(want.format === 'ai-toolkit' ? /loads in ai-toolkit, ComfyUI, diffusers/ : /ComfyUI/);

      const loaded = (await loadLoraNode.execute({ inputs: { model }, widgets: loadLoraNode.widgets.parse({ loraFile: `output/${relative(ctx.paths.output, file.path)}` }), ctx })).outputs.training as TrainingValue;
      expect([...loaded.adapter.include].sort(), choice).toEqual(adapterSetsFor(spec, model).denoiser.modules.map((m) => m.info.module).sort());
      const back = await render(loaded);
      expect(Buffer.compare(Buffer.from(back.rgb), Buffer.from(live.rgb)), `${choice}: the loaded file samples as the live adapter`).toBe(0);
    }
  }, 600_000);

  it('refuses what FLUX files cannot hold, by name: ai-toolkit LoKr, an ai-toolkit file for an SD model', async () => {
    expect(() => resolveLoraFormat('ai-toolkit', sd1Family)).toThrow(/format: ai-toolkit files are written for DiT families \(FLUX\); Stable Diffusion 1\.x LoRAs are kohya or diffusers/);
    expect(resolveLoraFormat('auto', sd1Family)).toBe('kohya');
    const { spec } = await adapterSpec(ctx, { networkType: 'LoKr', rank: 4, alpha: 2 }, model);
    const t = trainingValue(spec, model, Object.fromEntries(adapterSetsFor(spec, model).denoiser.paramSpecs.map((p) => [p.key, { dtype: 'float32' as const, shape: [...p.shape], data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(0.01) }])));
    await expect(saveLoraNode.execute({ inputs: { training: t }, widgets: saveLoraNode.widgets.parse({ name: 'lokr', format: 'ai-toolkit' }), ctx })).rejects.toThrow(/ai-toolkit files hold no LoKr/);
    // kohya keeps LyCORIS names, which ComfyUI loads; auto picks it for LoKr.
    const r = await saveLoraNode.execute({ inputs: { training: t }, widgets: saveLoraNode.widgets.parse({ name: 'lokr', format: 'auto' }), ctx });
    expect((r.outputs.loraFile as LoraFileValue).format).toBe('kohya');
    expect([...(await loadSafetensors((r.outputs.loraFile as LoraFileValue).path)).tensors.keys()].some((k) => /^lora_unet_double_blocks_0_img_attn_qkv\.lokr_w1$/.test(k))).toBe(true);
  }, 120_000);
});
