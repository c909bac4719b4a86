// Save LoRA → file → Load LoRA round trips: the saved kohya file reads back (readLoraValues) to the
// in-memory weights and samples the same images for LoRA, LoCon and LoKr; diffusers files too (alpha folded);
// metadata carries the keys tools read; files of another base model or non-LoRA files are refused by name.
import { describe, it, expect, beforeAll } from 'vitest';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import saveLoraNode from '../../nodes/save-lora';
import loadLoraNode from '../../nodes/load-lora';
import { adapterSetsFor } from '../../nodes/models/adapters';
import { renderSamples } from '../../nodes/sampling/render';
import { readLoraValues } from '../../kernels/sd/lora';
import { loadSafetensors, writeSafetensors } from '../../kernels/io/safetensors';
import type { ClipValue, LoraFileValue, ModelValue, SamplerSettings, TrainingValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { adapterSpec, loadTiny, randomWeights, trainingValue } from './training-fixture';

const { ctx } = nodeContext(undefined, '9');
(ctx as { workflow?: unknown }).workflow = { '1': { type: 'LoadModel', inputs: {} } };
let model: ModelValue, clip: ClipValue, vae: VaeValue;
beforeAll(async () => { ({ model, clip, vae } = await loadTiny(ctx)); });

const settings: SamplerSettings = {
  kind: 'sampler_settings', prompts: [{ prompt: 'a red star on a green background' }], negativePrompt: '', seed: 5, walkSeed: false,
  steps: 3, cfg: 5, sampler: 'euler', scheduler: 'auto', width: 0, height: 0, loraStrength: 1, byteSize: () => 0,
};
const render = (t: TrainingValue) => renderSamples({ model, clip, vae, settings, adapter: { spec: t.adapter, weights: t.weights } });
const save = async (t: TrainingValue, w: Record<string, unknown>) => (await saveLoraNode.execute({ inputs: { training: t }, widgets: saveLoraNode.widgets.parse(w), ctx }));
/** Load LoRA reads models/… as ComfyUI's models/loras, and output/… where Train and Save LoRA write. */
const load = async (file: string) => {
  const loraFile = file.startsWith(ctx.paths.output) ? `output/${relative(ctx.paths.output, file)}` : relative(ctx.paths.models, file);
  return loadLoraNode.execute({ inputs: { model }, widgets: loadLoraNode.widgets.parse({ loraFile }), ctx });
};

function maxDiff(a: Uint8Array, b: Uint8Array) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('Save LoRA and Load LoRA', () => {
  for (const [algo, widgets] of [
    ['LoRA', { networkType: 'LoRA', rank: 4, alpha: 2, trainTextEncoder: true }],
    ['LoCon', { networkType: 'LoCon', rank: 4, alpha: 8, convRank: 2, convAlpha: 1 }],
    ['LoKr', { networkType: 'LoKr', rank: 4, alpha: 2, targetPreset: 'attention' }],
  ] as const) {
    it(`${algo}: the saved kohya file reads back to the same weights and the same images`, async () => {
      const { spec } = await adapterSpec(ctx, widgets, model);
      const t = trainingValue(spec, model, randomWeights(spec, model));
      const r = await save(t, { name: `test-${algo}`, fileName: '{name}-{step}', dtype: 'fp32' });
      const file = r.outputs.loraFile as LoraFileValue;
      expect(file.path).toBe(join(ctx.paths.output, `test-${algo}-000120.safetensors`));
      expect(r.ui!.bytes).toBe(statSync(file.path).size);

      const back = await readLoraValues(file.path, { unet: adapterSetsFor(spec, model).denoiser, textEncoder: adapterSetsFor(spec, model).text[0] });
      expect(back.unused).toEqual([]);
      for (const [k, v] of Object.entries(t.weights)) expect(back.values[k].data, k).toEqual(v.data);
      const meta = back.metadata;
      expect(meta.ss_network_module).toBe(algo === 'LoKr' ? 'lycoris.kohya' : 'networks.lora');
      expect(meta.ss_network_dim).toBe('4');
      expect(meta.ss_base_model_version).toBe('sd_v1');
      // The modelspec block as sd-scripts writes it (ModelSpec 1.0.1): LoKr is labelled …/lora there too.
      expect(meta['modelspec.sai_model_spec']).toBe('1.0.1');
      expect(meta['modelspec.architecture']).toBe('stable-diffusion-v1/lora');
      expect(meta['modelspec.implementation']).toBe('diffusers');
      expect(meta['modelspec.prediction_type']).toBe('epsilon');
      expect(meta['modelspec.resolution']).toBe('64x64');
      expect(meta['modelspec.date']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
      expect(meta.ss_resolution).toBe('(64, 64)');
      expect(meta.ss_network_alpha).toBe(algo === 'LoCon' ? '8' : '2');
      expect(meta.loragraph_format).toBe('kohya');
      expect(meta.ss_steps).toBe('120');
      expect(JSON.parse(meta.ss_tag_frequency)).toEqual({ star: { star: 16 } });
      expect(JSON.parse(meta.loragraph_workflow)).toEqual({ '1': { type: 'LoadModel', inputs: {} } });
      if (algo !== 'LoRA') expect(JSON.parse(meta.ss_network_args)).toMatchObject(algo === 'LoKr' ? { algo: 'lokr' } : { conv_dim: '2', conv_alpha: '1' });

      const loaded = (await load(file.path)).outputs.training as TrainingValue;
      expect(loaded.adapter.algo).toBe(algo);
      expect(loaded.step).toBe(120);
      expect(loaded.adapter.trainTextEncoder).toBe(algo === 'LoRA');
      const [a] = await render(t);
      const [b] = await render(loaded);
      expect(maxDiff(a.rgb, b.rgb)).toBeLessThanOrEqual(1);
      const [base] = await renderSamples({ model, clip, vae, settings });
      expect(maxDiff(a.rgb, base.rgb)).toBeGreaterThan(8); // the adapter does change the image
    });
  }

  it('diffusers format: the layout ComfyUI and diffusers both load, alpha folded, loads back to the same images', async () => {
    const { spec } = await adapterSpec(ctx, { networkType: 'LoRA', rank: 4, alpha: 1, trainTextEncoder: true }, model);
    const t = trainingValue(spec, model, randomWeights(spec, model, 3));
    const file = (await save(t, { name: 'diffusers', format: 'diffusers', dtype: 'fp32' })).outputs.loraFile as LoraFileValue;
    expect(file.format).toBe('diffusers');
    const saved = await loadSafetensors(file.path);
    const keys = [...saved.tensors.keys()];
    expect(keys.some((k) => /^unet\.down_blocks\.0\..*\.attn1\.processor\.to_q_lora\.down\.weight$/.test(k))).toBe(true);
    expect(keys.some((k) => /^text_encoder\.text_model\..*\.lora_linear_layer\.up\.weight$/.test(k))).toBe(true);
    expect(keys.some((k) => k.endsWith('.alpha'))).toBe(false);
    // Alpha is folded into the weights, so the metadata says alpha = dim (scale 1): nothing scales twice.
    expect(saved.metadata.loragraph_format).toBe('diffusers');
    expect(saved.metadata.ss_network_alpha).toBe(saved.metadata.ss_network_dim);
    expect(saved.metadata.loragraph_alpha).toMatch(/^folded into the up weights \(trained with alpha 1 over dim 4\)/);
    const loaded = (await load(file.path)).outputs.training as TrainingValue;
    const [a] = await render(t);
    const [b] = await render(loaded);
    expect(maxDiff(a.rgb, b.rgb)).toBeLessThanOrEqual(1);
  });

  it('fp16 and bf16 files are half the size; EMA weights are saved when asked', async () => {
    const { spec } = await adapterSpec(ctx, { rank: 4 }, model);
    const w = randomWeights(spec, model);
    const ema = randomWeights(spec, model, 99);
    const t = trainingValue(spec, model, w, { ema });
    const f32 = (await save(t, { name: 'a', dtype: 'fp32' })).outputs.loraFile as LoraFileValue;
    const f16 = (await save(t, { name: 'b', dtype: 'fp16', useEma: true })).outputs.loraFile as LoraFileValue;
    const bf16 = (await save(t, { name: 'c', dtype: 'bf16' })).outputs.loraFile as LoraFileValue;
    expect(statSync(f16.path).size).toBeLessThan(statSync(f32.path).size * 0.6);
    expect(statSync(bf16.path).size).toBeLessThan(statSync(f32.path).size * 0.6);
    expect((await loadSafetensors(bf16.path)).tensors.values().next().value!.dtype).toBe('BF16');
    const back = (await load(f16.path)).outputs.training as TrainingValue;
    const k = Object.keys(ema).find((key) => key.endsWith('lora_down.weight'))!;
    expect(Math.abs(back.weights[k].data[0] as number - (ema[k].data[0] as number))).toBeLessThan(1e-2);
    await expect(save(trainingValue(spec, model, w), { useEma: true })).rejects.toThrow(/^useEma:/);
    await expect(save(t, { fileName: '../../x' })).rejects.toThrow(/^fileName: "..\/..\/x" gives no usable file name/);
    await expect(save(t, { fileName: '/etc/{name}' })).rejects.toThrow(/outside/);
    await expect(save(t, { fileName: '{name}-{epoch}' })).rejects.toThrow(/unknown placeholder \{epoch\}/);
  });

  it('refuses an SDXL LoRA, a checkpoint and a LoHa by name', async () => {
    const xl = join(ctx.paths.models, 'xl-lora.safetensors');
    await writeSafetensors(xl, { 'lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight': { dtype: 'F32', shape: [1, 4], data: new Float32Array(4) } }, { ss_base_model_version: 'sdxl_base_v1-0' });
    await expect(load(xl)).rejects.toThrow(/made for sdxl_base_v1-0, not Stable Diffusion 1\.x/);
    await expect(load(join(ctx.paths.models, 'tiny-random.safetensors'))).rejects.toThrow(/not a LoRA file — it looks like a Stable Diffusion 1\.x/);
    const loha = join(ctx.paths.models, 'loha.safetensors');
    await writeSafetensors(loha, { 'lora_unet_mid_block_attentions_0_proj_in.hada_w1_a': { dtype: 'F32', shape: [1, 4], data: new Float32Array(4) } });
    await expect(load(loha)).rejects.toThrow(/is LoHa/);
  });

  it('reads a LoRA from models/ (as ComfyUI) or output/ (trained here), and nowhere else', async () => {
    const { spec } = await adapterSpec(ctx, { networkType: 'LoRA', rank: 2, alpha: 2 }, model);
    const t = trainingValue(spec, model, randomWeights(spec, model));
    const saved = (await save(t, { name: 'where', dtype: 'fp32' })).outputs.loraFile as LoraFileValue;
    const inModels = join(ctx.paths.models, 'loras', basename(saved.path));
    mkdirSync(dirname(inModels), { recursive: true });
    copyFileSync(saved.path, inModels);
    const read = async (loraFile: string) => ((await loadLoraNode.execute({ inputs: { model }, widgets: loadLoraNode.widgets.parse({ loraFile }), ctx })).outputs.training as TrainingValue).weights;
    const fromOutput = await read(`output/${basename(saved.path)}`);
    const fromModels = await read(`loras/${basename(saved.path)}`);
    for (const [k, v] of Object.entries(t.weights)) {
      expect(fromOutput[k].data, k).toEqual(v.data);
      expect(fromModels[k].data, k).toEqual(v.data);
    }
    await expect(read('output/../../etc/passwd')).rejects.toThrow(/outside/);
  });
});
