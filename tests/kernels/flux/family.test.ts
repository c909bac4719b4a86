// FLUX.2 [klein] through the ModelFamily contract: full-size parts traced without weights, presets and
// LoRA names, the tiny config's text → denoise → VAE path in ORT, the preview sampler's call layout,
// and loading ComfyUI-style separate files found beside the transformer.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { vaeToLdm } from '../../../kernels/sd/keys/single-file';
import { flux2Family, tinyFlux2Config, TINY_QWEN3_FIRST_ADDED_ID } from '../../../kernels/flux/family';
import { fluxTransformer, jointPositions } from '../../../kernels/flux/transformer';
import { fluxTransformerShapes } from '../../../kernels/flux/shapes';
import { FLUX1_DEV, FLUX2_DEV } from '../../../kernels/flux/config';
import { buildByteLevelBpeTokenizerJson } from '../../../kernels/flux/bpe-tokenizer-json';
import { Qwen3PromptTokenizer } from '../../../kernels/flux/qwen3-tokenizer';
import { toTokens, fromTokens } from '../../../kernels/flux/vae';
import { ropeTables } from '../../../kernels/dit';
import { runtime, rand } from '../gradcheck';

afterAll(() => runtime().close());
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

describe('flux2Family', () => {
  it('full size: traced parts give klein 9B (201 tensors), Qwen3-8B layers and the FLUX.2 VAE with its statistics', () => {
    const c = flux2Family.configs.full;
    const shapes = Object.fromEntries(flux2Family.parts(c).map((p) => { const r = new K.ShapeRecorder(); p.trace(new K.Builder(r)); return [p.id, r.shapes]; }));
    expect(shapes.transformer.size).toBe(201);
    expect(shapes.text_encoder.get('model.layers.26.mlp.gate_proj.weight')).toEqual([12288, 4096]);
    expect(shapes.vae.get('bn.running_var')).toEqual([128]);
    expect(flux2Family.conditioning(c)).toEqual([{ name: 'context', shape: [512, 12288], source: 'text' }]);
    expect(flux2Family.latentFormat(c)).toMatchObject({ channels: 128, spatialCompression: 16 });
  });

  it('presets and LoRA names: attention+ff is ai-toolkit\'s 112 modules; fused qkv has no single diffusers name', () => {
    const c = flux2Family.configs.full;
    const r = new K.ShapeRecorder();
    const b = new K.Builder(r);
    flux2Family.parts(c)[0].trace(b);
    expect(b.modules.filter(flux2Family.presetFilter!('attention_ff')!)).toHaveLength(112);
    expect(b.modules.filter(flux2Family.presetFilter!('attention')!)).toHaveLength(32);
    const [comp, te] = flux2Family.loraComponents(c);
    expect(te).toMatchObject({ part: 'text_encoder', kohyaPrefix: 'lora_te1' });
    expect(comp).toMatchObject({ part: 'transformer', kohyaPrefix: 'lora_unet', peftPrefix: 'transformer' });
    expect(comp.modulePath!.peft!('double_blocks.0.img_attn.proj')).toBe('transformer_blocks.0.attn.to_out.0');
    expect(comp.modulePath!.peft!('single_blocks.3.linear1')).toBe('single_transformer_blocks.3.attn.to_qkv_mlp_proj');
    expect(comp.modulePath!.peft!('double_blocks.0.img_attn.qkv')).toBeUndefined();
  });

  it('tiny: text ids → context, pixels → 128-channel latents → velocity → pixels, in ORT', async () => {
    const c = tinyFlux2Config();
    const w = new K.RandomWeights(4, 0.05);
    const stats = new Map([['bn.running_mean', ht([128], rand(128, 0.1))], ['bn.running_var', ht([128], rand(128).map((v) => Math.abs(v) + 0.5))]]);
    const vaeWeights: K.WeightSource = { get: (p, s) => (stats.has(p) ? new K.HostWeights(stats).get(p, s) : w.get(p, s)) };
    const tok = new Qwen3PromptTokenizer(buildByteLevelBpeTokenizerJson(['a red circle'], 50, { firstAddedId: TINY_QWEN3_FIRST_ADDED_ID }), {}, c.text.maxLength);
    expect(tok.padId).toBe(c.padId);
    const ids = K.input('ids', [1, c.text.maxLength], 'int64');
    const px = K.input('px', [1, 3, 64, 64]);
    const t = K.input('t', [1]);
    const cond = flux2Family.encodeText([new K.Builder(w)], c, [ids], { clipSkip: 1 });
    const latents = flux2Family.vaeEncode(new K.Builder(vaeWeights), c, px);
    // Tokens per side: 64 px through the VAE's 2^(blocks − 1) and 2×2 patches (8 for the tiny's 4× VAE).
    const g = 64 / 2 ** c.vae.blockOutChannels.length;
    expect(latents.shape).toEqual([1, 128, g, g]);
    const v = flux2Family.denoise(new K.Builder(w), c, { sample: latents, timestep: t, cond });
    // The contract's denoiser is the transformer on tokens at t / 1000.
    const direct = fromTokens(fluxTransformer(new K.Builder(w), c.transformer, {
      img: toTokens(latents), txt: cond.context, timesteps: K.mul(t, 1 / 1000),
      rope: ropeTables(jointPositions(c.transformer, c.text.maxLength, g, g), c.transformer.axesDim, c.transformer.theta),
    }), g, g);
    const out = flux2Family.vaeDecode(new K.Builder(vaeWeights), c, v);
    const s = await runtime().load(K.compileGraph([ids, px, t], { v, direct, out }));
    const r = await s.run({
      ids: { dtype: 'int64', shape: [1, c.text.maxLength], data: BigInt64Array.from(tok.tokenize('a red circle', { maxLength: c.text.maxLength }).ids.map(BigInt)) },
      px: ht([1, 3, 64, 64], rand(3 * 64 * 64)), t: ht([1], Float32Array.of(700)),
    });
    expect(r.out.shape).toEqual([1, 3, 64, 64]);
    expect(r.v.data).toEqual(r.direct.data);
  });

  it('preview sampling: every call batches uncond + cond at t·1000; cfg 1 keeps the conditional half', async () => {
    const c = tinyFlux2Config();
    const ts: number[] = [];
    const call = async (x: Float32Array, timestep: number) => { ts.push(timestep); return Float32Array.from(x, (_, i) => (i < x.length / 2 ? 0 : 1)); };
    const base = { sampler: 'euler', steps: 4, seed: 1, latentShape: [128, 2, 2], batch: 1, scheduler: 'auto' };
    const a = await flux2Family.sample(call, c, { ...base, cfgScale: 1 });
    expect(ts[0]).toBe(1000);
    expect(ts).toHaveLength(4);
    const b = await flux2Family.sample(call, c, { ...base, cfgScale: 3 });
    // velocity 1 (cfg 1) or 3 (cfg 3) from t = 1 to 0: the results differ by 2 everywhere.
    a.forEach((v, i) => expect(v - b[i]).toBeCloseTo(2, 5));
  });

  it('loads a transformer file with its Qwen3, VAE and tokenizer.json found beside it', async () => {
    const c = tinyFlux2Config();
    const dir = mkdtempSync(join(tmpdir(), 'flux2-family-'));
    const collect = (i: number) => { const w = new K.RandomWeights(i, 0.1); flux2Family.parts(c)[i].trace(new K.Builder(w)); return w.tensors; };
    const put = (file: string, m: Map<string, K.HostTensor>, rename = (k: string) => k, md: Record<string, string> = {}) =>
      writeSafetensors(join(dir, file), Object.fromEntries([...m].map(([k, t]): [string, TensorToWrite] => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])), md);
    await put('klein-tiny.safetensors', collect(0));
    await put('qwen3-tiny.safetensors', collect(1), (k) => k.replace(/^model\./, ''), { loragraph_text_max_length: String(c.text.maxLength) });
    const vae = collect(2);
    await put('ae.safetensors', vae, (k) => (k.startsWith('bn.') ? k : vaeToLdm(c.vae, k)), { loragraph_vae_norm_groups: String(c.vae.normGroups) });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(buildByteLevelBpeTokenizerJson(['a red circle'], 50, { firstAddedId: TINY_QWEN3_FIRST_ADDED_ID })));
    const m = await flux2Family.load(join(dir, 'klein-tiny.safetensors'));
    expect(m.config.transformer).toEqual({ ...c.transformer, name: m.config.transformer.name });
    expect(m.config.text).toEqual({ ...c.text, name: m.config.text.name });
    expect(m.config.vae).toEqual(c.vae);
    expect(m.config.padId).toBe(c.padId);
    expect(m.config.sampleSize).toBe(c.sampleSize);
    expect(m.textEncoders[0].tokenizer.tokenize('a red circle', { maxLength: 8 }).ids).toHaveLength(8);
    const count = (t: Map<string, K.HostTensor>) => [...t.values()].reduce((n, x) => n + x.data.length, 0);
    expect(m.params).toEqual({ transformer: count(collect(0)), text_encoder: count(collect(1)), vae: count(vae) });
    m.close();
  });

  it('refuses FLUX.1 transformers by name; FLUX.2 [dev] asks for its Mistral text encoder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flux2-refuse-'));
    // A one-block miniature with the variant's switches (detection reads names and shapes, not values).
    const miniature = async (file: string, cfg: typeof FLUX2_DEV) => {
      const mini = { ...cfg, hiddenSize: 32, numHeads: 2, depthDouble: 1, depthSingle: 1, contextDim: 8, axesDim: cfg.generation === 2 ? [4, 4, 4, 4] : [4, 6, 6], pooledDim: cfg.pooledDim ? 4 : 0 };
      const shapes = fluxTransformerShapes(mini).tensors;
      await writeSafetensors(join(dir, file), Object.fromEntries([...shapes].map(([k, s]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) }])));
    };
    await miniature('dev.safetensors', FLUX2_DEV);
    await expect(flux2Family.load(join(dir, 'dev.safetensors'))).rejects.toThrow(/dev\.safetensors: no Mistral Small 3 text encoder/);
    await miniature('flux1.safetensors', FLUX1_DEV);
    await expect(flux2Family.load(join(dir, 'flux1.safetensors'))).rejects.toThrow(/FLUX\.1 transformer/);
  });
});
