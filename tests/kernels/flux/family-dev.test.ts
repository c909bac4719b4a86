// FLUX.2 [dev] through the ModelFamily contract: full-size parts (guidance embedding, Mistral layers 1–30),
// LoRA targets and names as for klein; a tiny dev-architecture model written as ComfyUI keeps it
// (diffusion model, Mistral text encoder chosen as Load Model's textEncoder widget does, ae, tokenizer.json
// beside the encoder) loads, previews with the Sampler's scale as its embedded guidance, and trains LoRA
// steps at guidance 1; a Qwen3 chosen for dev is refused naming the file.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { FLUX2_DEV_FAMILY, flux2Family, tinyFlux2Config, tinyFlux2DevConfig } from '../../../kernels/flux/family';
import { fluxTransformerShapes } from '../../../kernels/flux/shapes';
import { FLUX2_DEV } from '../../../kernels/flux/config';
import { FamilyPipeline } from '../../../kernels/families/pipeline';
import { familyAdapters } from '../../../kernels/families/adapters';
import { buildTrainGraph } from '../../../kernels/families/training-graph';
import { fluxLoraDelta, fluxTargetSpec, readFluxLora, writeFluxLora, FLUX_LORA_FORMATS, type FluxLoraModule } from '../../../kernels/flux/lora';
import { selectTargets } from '../../../kernels/adapters/targets';
import { Rng } from '../../../kernels/random';
import { fakeCall } from './flow-reference';
import { writeTinyDev } from './tiny-dev-files';

const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

describe('FLUX.2 [dev] at full size, without weights', () => {
  it('transformer with guidance_in (32 B parameters), Mistral layers up to 30, context [512, 15360] plus a guidance input', () => {
    const c = FLUX2_DEV_FAMILY;
    const shapes = Object.fromEntries(flux2Family.parts(c).map((p) => { const r = new K.ShapeRecorder(); p.trace(new K.Builder(r)); return [p.id, r.shapes]; }));
    expect(shapes.transformer.get('guidance_in.in_layer.weight')).toEqual([6144, 256]);
    expect(shapes.transformer.get('txt_in.weight')).toEqual([6144, 15360]);
    expect(fluxTransformerShapes(FLUX2_DEV).parameterCount).toBe(32_223_281_152);
    expect(shapes.text_encoder.get('model.layers.29.mlp.gate_proj.weight')).toEqual([32768, 5120]);
    expect(shapes.text_encoder.has('model.layers.30.input_layernorm.weight')).toBe(false);
    expect(shapes.text_encoder.has('model.layers.0.self_attn.q_norm.weight')).toBe(false);
    expect(flux2Family.conditioning(c)).toEqual([{ name: 'context', shape: [512, 15360], source: 'text' }, { name: 'guidance', shape: [1], source: 'sample' }]);
    expect(flux2Family.modelspecArchitectureOf!(c)).toBe('Flux.2-dev');
  });

  it('LoRA targets as for klein: ai-toolkit\'s 8·8 + 48·2 = 160 modules, BFL names under kohya\'s lora_unet', () => {
    const b = new K.Builder(new K.ShapeRecorder());
    flux2Family.parts(FLUX2_DEV_FAMILY)[0].trace(b);
    const targets = b.modules.filter(flux2Family.presetFilter!('attention_ff')!);
    expect(targets).toHaveLength(160);
    expect(targets[0].module).toBe('double_blocks.0.img_attn.qkv');
    expect(targets.at(-1)!.module).toBe('single_blocks.47.linear2');
    expect(flux2Family.loraComponents(FLUX2_DEV_FAMILY)[0]).toMatchObject({ part: 'transformer', kohyaPrefix: 'lora_unet' });
  });
});

describe('FLUX.2 [dev] LoRA files', () => {
  it('all-linear LoRA, the guidance embedder included, reads back from ai-toolkit, kohya and diffusers names', () => {
    const t = tinyFlux2DevConfig().transformer;
    const rng = new Rng(3);
    const lora = new Map<string, FluxLoraModule>();
    for (const info of selectTargets(fluxTransformerShapes(t).modules, fluxTargetSpec('all_linear'))) {
      if (info.kind !== 'linear') continue;
      lora.set(info.module, { down: rng.fork(`${info.module}.d`).fillUniform(new Float32Array(2 * info.inFeatures), -1, 1), up: rng.fork(`${info.module}.u`).fillUniform(new Float32Array(info.outFeatures * 2), -1, 1), rank: 2, alpha: 1, inFeatures: info.inFeatures, outFeatures: info.outFeatures });
    }
    expect(lora.has('guidance_in.in_layer')).toBe(true);
    const names = { 'ai-toolkit': 'diffusion_model.guidance_in.in_layer.lora_A.weight', kohya: 'lora_unet_guidance_in_in_layer.lora_down.weight', diffusers: 'transformer.time_guidance_embed.guidance_embedder.linear_1.lora_A.weight' } as const;
    for (const format of FLUX_LORA_FORMATS) {
      const file = writeFluxLora(t, lora, format);
      expect(file.has(names[format as keyof typeof names]), format).toBe(true);
      const back = readFluxLora(t, file);
      expect([...back.keys()].sort()).toEqual([...lora.keys()].sort());
      for (const [k, m] of lora) {
        const a = fluxLoraDelta(m), b = fluxLoraDelta(back.get(k)!);
        expect(a.every((v, i) => Math.abs(v - b[i]) < 1e-5), `${format} ${k}`).toBe(true);
      }
    }
  });
});

describe('tiny FLUX.2 [dev]', () => {
  const c = tinyFlux2DevConfig();
  const written = writeTinyDev(mkdtempSync(join(tmpdir(), 'flux2-dev-')), c);

  it('loads with its Mistral chosen on Load Model: guidance embedding on, <pad> 11, the prompt left-padded to the encoder\'s length', async () => {
    const f = await written;
    // The text encoder is outside the transformer's folder: found only when chosen (textEncoderFiles).
    await expect(flux2Family.load(f.transformer, { vaeFile: f.vae })).rejects.toThrow(/no Mistral Small 3 text encoder .* found beside it/);
    const m = await flux2Family.load(f.transformer, { textEncoderFiles: [f.textEncoder], vaeFile: f.vae });
    expect(m.config.transformer).toMatchObject({ guidanceEmbed: true, contextDim: 48, hiddenSize: c.transformer.hiddenSize });
    expect(m.config.text).toEqual({ ...c.text, name: m.config.text.name });
    expect(m.config.padId).toBe(11);
    const ids = Array.from(m.textEncoders[0].tokenizer.tokenize('a red circle', { maxLength: c.text.maxLength }).ids);
    expect(ids).toHaveLength(64);
    expect(ids[0]).toBe(11);
    expect(ids.at(-1)).toBe(4); // [/INST]: the prompt ends the sequence, untruncated
    expect(m.params.text_encoder).toBeGreaterThan(0);
    m.close();
  });

  it('previews with the Sampler\'s scale as the embedded guidance: one prediction per step, and the scale changes the image', async () => {
    const { call, timesteps } = fakeCall();
    await flux2Family.sample(call, c, { sampler: 'euler', scheduler: 'auto', steps: 3, cfgScale: 4, seed: 1, latentShape: [128, 2, 2], batch: 1 });
    expect(timesteps).toHaveLength(3);
    expect(flux2Family.sampleConditioning(c, { originalSize: { width: 64, height: 64 }, cropTopLeft: { top: 0, left: 0 }, targetSize: { width: 64, height: 64 } }, { guidance: 4 }).guidance).toEqual(Float32Array.of(4));
    expect(flux2Family.sampleConditioning(c, { originalSize: { width: 64, height: 64 }, cropTopLeft: { top: 0, left: 0 }, targetSize: { width: 64, height: 64 } }).guidance).toEqual(Float32Array.of(1));
    const f = await written;
    const m = await flux2Family.load(f.transformer, { textEncoderFiles: [f.textEncoder], vaeFile: f.vae });
    const pipe = await FamilyPipeline.create(rt, { family: flux2Family, config: m.config, denoiser: m.denoiser, textEncoders: m.textEncoders, vae: m.vae }, { width: 64, height: 64 });
    const steps: number[] = [];
    const a = await pipe.generate({ prompt: 'a red circle', seed: 3, steps: 2, cfgScale: 4, onStep: (s) => steps.push(s) });
    const b = await pipe.generate({ prompt: 'a red circle', seed: 3, steps: 2, cfgScale: 1 });
    expect(steps).toHaveLength(2);
    expect(a.images[0]).toHaveLength(64 * 64 * 3);
    let diff = 0;
    a.images[0].forEach((v, i) => { diff += Math.abs(v - b.images[0][i]); });
    expect(diff).toBeGreaterThan(0);
    m.close();
  }, 60_000);

  it('LoRA on ai-toolkit\'s targets trains at guidance 1: two steps move the adapter, the loss stays finite', async () => {
    const f = await written;
    const m = await flux2Family.load(f.transformer, { textEncoderFiles: [f.textEncoder], vaeFile: f.vae });
    const adapters = familyAdapters(flux2Family, m.config, { rank: 4, targets: { preset: 'all_linear', include: fluxTargetSpec('ai_toolkit').include! }, trainTextEncoder: false });
    expect(adapters.denoiser.modules).toHaveLength(c.transformer.depthDouble * 8 + c.transformer.depthSingle * 2);
    const g = buildTrainGraph({ family: flux2Family, config: m.config, denoiserWeights: m.denoiser, adapters, batch: 1, latentSize: [4, 4] });
    expect(g.inputs.map((t) => (t.source as { name?: string }).name)).toContain('guidance');
    const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
    const init = adapters.denoiser.initialValues(1);
    await ts.init(init);
    const rng = new Rng(7);
    const geometry = { originalSize: { width: 64, height: 64 }, cropTopLeft: { top: 0, left: 0 }, targetSize: { width: 64, height: 64 } };
    const feed: Record<string, K.HostTensor> = {
      latents: ht([1, 128, 4, 4], rng.fork('x').fillNormal(new Float32Array(128 * 16))),
      noise: ht([1, 128, 4, 4], rng.fork('n').fillNormal(new Float32Array(128 * 16))),
      timesteps: ht([1], Float32Array.of(0.6)),
      context: ht([1, c.text.maxLength, 48], rng.fork('c').fillNormal(new Float32Array(c.text.maxLength * 48))),
      guidance: ht([1, 1], flux2Family.sampleConditioning(m.config, geometry).guidance),
    };
    const losses = [(await ts.step([feed], 1e-2, 1)).loss, (await ts.step([feed], 1e-2, 2)).loss];
    losses.forEach((l) => expect(Number.isFinite(l)).toBe(true));
    const after = await ts.read(false);
    const moved = Object.keys(init).some((k) => (after[k].data as Float32Array).some((v, i) => v !== (init[k].data as Float32Array)[i]));
    expect(moved).toBe(true);
    await ts.dispose();
    m.close();
  }, 60_000);

  it('ComfyUI\'s Mistral file carries its tokenizer (tekken_model): no tokenizer.json needed, the same ids', async () => {
    const f = await written;
    const g = await writeTinyDev(mkdtempSync(join(tmpdir(), 'flux2-dev-tekken-')), c, 'tekken_model');
    const withJson = await flux2Family.load(f.transformer, { textEncoderFiles: [f.textEncoder], vaeFile: f.vae });
    const embedded = await flux2Family.load(g.transformer, { textEncoderFiles: [g.textEncoder], vaeFile: g.vae });
    for (const p of ['a red circle', 'a green square on a blue background']) {
      expect(Array.from(embedded.textEncoders[0].tokenizer.tokenize(p, { maxLength: 64 }).ids)).toEqual(Array.from(withJson.textEncoders[0].tokenizer.tokenize(p, { maxLength: 64 }).ids));
    }
    withJson.close(); embedded.close();
  });

  it('a Qwen3 chosen as dev\'s text encoder is refused naming the file and both widths', async () => {
    const f = await written;
    const klein = tinyFlux2Config();
    const w = new K.RandomWeights(9, 0.1);
    flux2Family.parts(klein)[1].trace(new K.Builder(w));
    const qwen = join(mkdtempSync(join(tmpdir(), 'flux2-dev-qwen-')), 'qwen_3_tiny.safetensors');
    await writeSafetensors(qwen, Object.fromEntries([...w.tensors].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])));
    writeFileSync(qwen.replace(/\.safetensors$/, '.tokenizer.json'), '{}');
    await expect(flux2Family.load(f.transformer, { textEncoderFiles: [qwen], vaeFile: f.vae })).rejects.toThrow(/qwen_3_tiny\.safetensors: this Qwen3 gives 96 features per token .* takes 48 \(FLUX\.2 \[dev\]: Mistral Small 3/);
  });
});
