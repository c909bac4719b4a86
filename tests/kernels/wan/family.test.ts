// wanFamily through the family contract: full-size parts and text features traced without weights; a
// tiny Wan written in ComfyUI's layout (diffusion_models/, text_encoders/ + tokenizer.json, vae/) is
// detected by the registry, loaded, and predicts through the contract exactly what the transformer
// predicts from the same weights; a diffusers-named transformer file predicts the same; a 2.2 A14B pair
// of expert files loads either expert and opens the other only when asked; a diffusers folder's
// transformer_2 is the low-noise expert; the I2V condition is the mask plus the first frame's latent;
// the generic training graph takes it sized by the clip.
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { familyOfCheckpoint } from '../../../kernels/families/registry';
import { buildTrainGraph } from '../../../kernels/families/training-graph';
import { familyAdapters } from '../../../kernels/families/adapters';
import { buildUnigramTokenizerJson } from '../../../kernels/text/unigram-tokenizer-json';
import {
  WAN21_I2V_14B_FAMILY, WAN21_T2V_1_3B_FAMILY, WAN22_I2V_A14B_FAMILY, WAN22_T2V_A14B_FAMILY, WAN22_TI2V_5B_FAMILY, tinyWanConfig, wanExpertConfig, wanFamily,
  type WanFamilyConfig,
} from '../../../kernels/wan/family';
import { wanToDiffusers } from '../../../kernels/wan/keys';
import { wanRope, wanTransformer, tokenGrid } from '../../../kernels/wan/transformer';
import { WAN21_VAE, wanVaeDecode, wanVaeEncode } from '../../../kernels/wan/vae';
import { diffusersVaeToWan } from '../../../kernels/wan/vae-keys';
import { Rng } from '../../../kernels/random';
import { loadModel } from '../../../nodes/models/load';

const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());
const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const count = (b: K.Builder, f: (b: K.Builder) => void) => { const rec = new K.ShapeRecorder(); f(new K.Builder(rec)); let n = 0; for (const s of rec.shapes.values()) n += s.reduce((a, x) => a * x, 1); return n; };

describe('full-size Wan configs through the family (no weights)', () => {
  it.each([
    ['2.1 T2V 1.3B: 1.419 B', WAN21_T2V_1_3B_FAMILY, 1_418_996_800], ['2.2 A14B expert: 14.29 B', WAN22_T2V_A14B_FAMILY, 14_288_491_584],
    ['2.1 I2V 14B: 16.39 B', WAN21_I2V_14B_FAMILY, 16_394_878_784], ['2.2 TI2V-5B: 5.00 B', WAN22_TI2V_5B_FAMILY, 4_999_787_712],
  ] as const)('%s parameters in the denoiser part', (_name, c: WanFamilyConfig, params) => {
    const part = wanFamily.parts(c).find((p) => p.role === 'denoiser')!;
    expect(count(new K.Builder(new K.ShapeRecorder()), (b) => part.trace(b))).toBe(params);
  });

  it('the VAE part traces every tensor of wan_2.1_vae (time convolutions included) and of wan2.2_vae', () => {
    const names = (c: WanFamilyConfig) => { const rec = new K.ShapeRecorder(); wanFamily.parts(c).find((p) => p.id === 'vae')!.trace(new K.Builder(rec)); return rec.shapes; };
    const v21 = names(WAN21_T2V_1_3B_FAMILY);
    expect(v21.get('encoder.downsamples.5.time_conv.weight')).toEqual([192, 192, 3, 1, 1]);
    expect(v21.get('encoder.downsamples.8.time_conv.weight')).toEqual([384, 384, 3, 1, 1]);
    expect(v21.get('decoder.upsamples.3.time_conv.weight')).toEqual([768, 384, 3, 1, 1]);
    expect(names(WAN22_TI2V_5B_FAMILY).get('decoder.upsamples.1.upsamples.3.time_conv.weight')).toEqual([2048, 1024, 3, 1, 1]);
  });

  it('umT5-XXL text features: ids [B, 512] → context [B, 512, 4096] (5.68 B parameters), without weights', () => {
    const rec = new K.ShapeRecorder();
    const cond = wanFamily.encodeText([new K.Builder(rec)], WAN22_I2V_A14B_FAMILY, [K.input('ids', [2, 512], 'int64')], { clipSkip: 1 });
    expect(cond.context.shape).toEqual([2, 512, 4096]);
    expect(rec.shapes.get('encoder.block.23.layer.0.SelfAttention.relative_attention_bias.weight')).toEqual([32, 64]);
    let n = 0; for (const s of rec.shapes.values()) n += s.reduce((a, x) => a * x, 1);
    expect((n / 1e9).toFixed(2)).toBe('5.68');
    expect(wanFamily.conditioning(WAN22_I2V_A14B_FAMILY)[0]).toEqual({ name: 'context', shape: [512, 4096], source: 'text' });
  });

  it('latent formats: 2.1 VAE 16 channels ×8 ×4, 2.2 VAE (TI2V-5B) 48 channels ×16 ×4; I2V condition sized by the clip', () => {
    expect(wanFamily.latentFormat(WAN21_T2V_1_3B_FAMILY)).toMatchObject({ channels: 16, spatialCompression: 8, temporalCompression: 4 });
    expect(wanFamily.latentFormat(WAN22_TI2V_5B_FAMILY)).toMatchObject({ channels: 48, spatialCompression: 16, temporalCompression: 4 });
    const cond = wanFamily.conditioning(WAN22_I2V_A14B_FAMILY, [16, 21, 60, 104]);
    expect(cond.find((c) => c.name === 'condition')).toEqual({ name: 'condition', shape: [20, 21, 60, 104], source: 'latent' });
    expect(wanFamily.conditioning(WAN21_I2V_14B_FAMILY).map((c) => c.name)).toEqual(['context', 'condition', 'clip']);
    // 2.1 I2V adds CLIP ViT-H/14's penultimate states of the first frame, its weights under the VAE value's clip_vision.
    const rec = new K.ShapeRecorder();
    const i2v21 = wanFamily.latentConditioning!(new K.Builder(rec), WAN21_I2V_14B_FAMILY, K.input('px', [1, 3, 5, 64, 64]));
    expect(i2v21.clip.shape).toEqual([1, 257, 1280]);
    expect(i2v21.condition.shape).toEqual([1, 20, 2, 8, 8]);
    expect(rec.shapes.get('clip_vision.vision_model.encoder.layers.30.mlp.fc1.weight')).toEqual([5120, 1280]);
    expect(rec.shapes.has('clip_vision.vision_model.encoder.layers.31.mlp.fc1.weight')).toBe(false);
    const vae = wanFamily.vaeEncode(new K.Builder(new K.ShapeRecorder()), WAN22_TI2V_5B_FAMILY, K.input('px', [1, 3, 9, 64, 96]));
    expect(vae.shape).toEqual([1, 48, 3, 4, 6]);
  });

  it('2.2 A14B configs name their expert and boundary (0.875 T2V, 0.900 I2V)', () => {
    expect(WAN22_T2V_A14B_FAMILY.experts).toEqual({ boundary: 0.875, active: 'high_noise' });
    const low = wanExpertConfig(WAN22_I2V_A14B_FAMILY, 'low_noise');
    expect(low.experts).toEqual({ boundary: 0.9, active: 'low_noise' });
    expect(wanFamily.configName(low)).toBe('wan2.2-i2v-a14b-low_noise');
    expect(() => wanExpertConfig(WAN21_T2V_1_3B_FAMILY, 'low_noise')).toThrow(/one denoiser/);
  });
});

// ---- tiny checkpoints on disk ------------------------------------------------------------------------

const root = mkdtempSync(join(tmpdir(), 'loragraph-wan-family-'));
const models = join(root, 'models');
const tiny = tinyWanConfig();
const CORPUS = ['a red circle moving left on a blue background', 'a green star spinning', 'a yellow square moving up'];

/** The weights every part of `c` asks for, random but fixed by `seed`. */
function partWeights(c: WanFamilyConfig, part: string, seed: number): Map<string, K.HostTensor> {
  const rw = new K.RandomWeights(seed, 0.08);
  wanFamily.parts(c).find((p) => p.id === part)!.trace(new K.Builder(rw));
  return rw.tensors;
}
const toFile = (m: Map<string, K.HostTensor>, rename: (k: string) => string = (k) => k): Record<string, TensorToWrite> =>
  Object.fromEntries([...m].map(([k, t]) => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]));
const HEADS = { loragraph_num_heads: String(tiny.transformer.numHeads) };

const weights = { high: partWeights(tiny, 'transformer', 3), low: partWeights(tiny, 'transformer', 4), text: partWeights(tiny, 'text_encoder', 5), vae: partWeights(tiny, 'vae', 6) };

beforeAll(async () => {
  for (const d of ['diffusion_models', 'text_encoders', 'vae']) mkdirSync(join(models, d), { recursive: true });
  await writeSafetensors(join(models, 'diffusion_models', 'wan-tiny_t2v.safetensors'), toFile(weights.high, (k) => `model.diffusion_model.${k}`), HEADS);
  await writeSafetensors(join(models, 'diffusion_models', 'wan2.2-tiny_t2v_high_noise.safetensors'), toFile(weights.high), HEADS);
  await writeSafetensors(join(models, 'diffusion_models', 'wan2.2-tiny_t2v_low_noise.safetensors'), toFile(weights.low), HEADS);
  await writeSafetensors(join(models, 'diffusion_models', 'wan-tiny_diffusers_names.safetensors'), toFile(weights.high, wanToDiffusers), HEADS);
  await writeSafetensors(join(models, 'text_encoders', 'umt5-tiny.safetensors'), toFile(weights.text));
  writeFileSync(join(models, 'text_encoders', 'umt5-tiny.tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(CORPUS)));
  await writeSafetensors(join(models, 'vae', 'wan-tiny-vae.safetensors'), toFile(weights.vae));
  // A diffusers folder: transformer/, transformer_2/ and vae/ in diffusers names.
  const folder = join(root, 'Wan2.2-tiny-Diffusers');
  for (const d of ['transformer', 'transformer_2', 'text_encoder', 'tokenizer', 'vae']) mkdirSync(join(folder, d), { recursive: true });
  writeFileSync(join(folder, 'model_index.json'), JSON.stringify({ _class_name: 'WanPipeline', boundary_ratio: 0.8 }));
  await writeSafetensors(join(folder, 'transformer', 'diffusion_pytorch_model.safetensors'), toFile(weights.high, wanToDiffusers), HEADS);
  await writeSafetensors(join(folder, 'transformer_2', 'diffusion_pytorch_model.safetensors'), toFile(weights.low, wanToDiffusers), HEADS);
  await writeSafetensors(join(folder, 'text_encoder', 'model.safetensors'), toFile(weights.text));
  cpSync(join(models, 'text_encoders', 'umt5-tiny.tokenizer.json'), join(folder, 'tokenizer', 'tokenizer.json'));
  await writeSafetensors(join(folder, 'vae', 'diffusion_pytorch_model.safetensors'), toFile(weights.vae, (k) => diffusersVaeName(k, tiny.vae.numResBlocks + 1)));
});

/**
 * Wan → diffusers VAE names as diffusers' convert_vae renames them (restated from its rules: the encoder's
 * flat blocks, the decoder's grouped `resnetsPerLevel + 1` at a time, the last of each an upsampler).
 */
function diffusersVaeName(wan: string, resnetsPerLevel: number): string {
  const res = (r: string) => r.replace('residual.0.gamma', 'norm1.gamma').replace('residual.2.', 'conv1.').replace('residual.3.gamma', 'norm2.gamma').replace('residual.6.', 'conv2.').replace('shortcut.', 'conv_shortcut.');
  let m: RegExpMatchArray | null;
  if ((m = wan.match(/^conv([12])\.(.+)$/))) return `${m[1] === '1' ? 'quant_conv' : 'post_quant_conv'}.${m[2]}`;
  if ((m = wan.match(/^(encoder|decoder)\.conv1\.(.+)$/))) return `${m[1]}.conv_in.${m[2]}`;
  if ((m = wan.match(/^(encoder|decoder)\.head\.0\.gamma$/))) return `${m[1]}.norm_out.gamma`;
  if ((m = wan.match(/^(encoder|decoder)\.head\.2\.(.+)$/))) return `${m[1]}.conv_out.${m[2]}`;
  if ((m = wan.match(/^(encoder|decoder)\.middle\.1\.(.+)$/))) return `${m[1]}.mid_block.attentions.0.${m[2]}`;
  if ((m = wan.match(/^(encoder|decoder)\.middle\.([02])\.(.+)$/))) return `${m[1]}.mid_block.resnets.${m[2] === '0' ? 0 : 1}.${res(m[3])}`;
  if ((m = wan.match(/^encoder\.downsamples\.(\d+)\.(.+)$/))) return `encoder.down_blocks.${m[1]}.${res(m[2])}`;
  if ((m = wan.match(/^decoder\.upsamples\.(\d+)\.(.+)$/))) {
    const n = Number(m[1]), level = Math.floor(n / (resnetsPerLevel + 1)), r = n % (resnetsPerLevel + 1);
    return r === resnetsPerLevel ? `decoder.up_blocks.${level}.upsamplers.0.${m[2]}` : `decoder.up_blocks.${level}.resnets.${r}.${res(m[2])}`;
  }
  throw new Error(`no diffusers name for ${wan}`);
}

describe('Wan 2.1 VAE in diffusers names', () => {
  it('every wan_2.1_vae tensor reads back from its AutoencoderKLWan name (e.g. decoder.upsamples.4.shortcut ← up_blocks.1.resnets.0.conv_shortcut)', () => {
    const rec = new K.ShapeRecorder();
    const b = new K.Builder(rec);
    wanVaeEncode(b, WAN21_VAE, K.input('v', [1, 3, 1, 8, 8]));
    wanVaeDecode(b, WAN21_VAE, K.input('z', [1, 16, 1, 1, 1]));
    const names = [...rec.shapes.keys()];
    expect(names).toHaveLength(new Set(names).size);
    for (const w of names) expect(diffusersVaeToWan(diffusersVaeName(w, 3), 3), w).toBe(w);
    expect(diffusersVaeName('decoder.upsamples.4.shortcut.weight', 3)).toBe('decoder.up_blocks.1.resnets.0.conv_shortcut.weight');
    expect(diffusersVaeName('decoder.upsamples.11.time_conv.weight', 3)).toBe('decoder.up_blocks.2.upsamplers.0.time_conv.weight');
    expect(diffusersVaeToWan('encoder.down_blocks.5.time_conv.weight', 3)).toBe('encoder.downsamples.5.time_conv.weight');
    expect(diffusersVaeToWan('decoder.up_blocks.3.resnets.2.norm2.gamma', 3)).toBe('decoder.upsamples.14.residual.3.gamma');
    expect(diffusersVaeToWan('encoder.bogus.weight', 3)).toBeUndefined();
  });
});

const LAT = [1, tiny.transformer.outChannels, 2, 4, 4];
const rng = new Rng(21);
const x = rng.fork('x').fillNormal(new Float32Array(LAT.reduce((a, b) => a * b, 1)));

/** Prompt → context through the family's text encoder; context + x at t → prediction through `denoise`. */
async function predictThroughFamily(model: { config: WanFamilyConfig; denoiser: K.WeightSource; textEncoders: { weights: K.WeightSource; tokenizer: { tokenize(t: string, o: { maxLength: number }): { ids: ArrayLike<number> } } }[] }, prompt: string, t: number) {
  const c = model.config;
  const L = c.textLength;
  const ids = K.input('ids', [1, L], 'int64');
  const cond = wanFamily.encodeText([new K.Builder(model.textEncoders[0].weights)], c, [ids], { clipSkip: 1 });
  const text = await rt.load(K.compileGraph([ids], { context: cond.context }));
  const tok = Array.from(model.textEncoders[0].tokenizer.tokenize(prompt, { maxLength: L }).ids);
  const context = (await text.run({ ids: { dtype: 'int64', shape: [1, L], data: BigInt64Array.from(tok.map(BigInt)) } })).context;
  const xs = K.input('x', LAT), ts = K.input('t', [1]), ctx = K.input('context', [1, L, c.transformer.textDim]);
  const pred = wanFamily.denoise(new K.Builder(model.denoiser), c, { sample: xs, timestep: ts, cond: { context: ctx } });
  const s = await rt.load(K.compileGraph([xs, ts, ctx], { pred }));
  return { context, tok, pred: (await s.run({ x: f32(LAT, x), t: f32([1], Float32Array.of(t * 1000)), context })).pred.data as Float32Array };
}

/** The same prediction straight from the transformer with the weights in memory. */
async function predictDirect(w: Map<string, K.HostTensor>, context: K.HostTensor, t: number) {
  const src = new K.HostWeights(w);
  const xs = K.input('x', LAT), ts = K.input('t', [1]), ctx = K.input('context', context.shape);
  const pred = wanTransformer(new K.Builder(src), tiny.transformer, { latents: xs, context: ctx, timesteps: ts, rope: wanRope(tiny.transformer, tokenGrid(tiny.transformer, LAT)) });
  const s = await rt.load(K.compileGraph([xs, ts, ctx], { pred }));
  return (await s.run({ x: f32(LAT, x), t: f32([1], Float32Array.of(t)), context })).pred.data as Float32Array;
}

describe('tiny Wan checkpoints through the family', () => {
  it('ComfyUI layout: the registry detects Wan; load finds umT5, its tokenizer.json and the VAE; the contract predicts what the transformer does', async () => {
    const file = join(models, 'diffusion_models', 'wan-tiny_t2v.safetensors');
    expect((await familyOfCheckpoint(file)).family.id).toBe('wan');
    const m = await wanFamily.load(file);
    try {
      expect(m.config.transformer).toMatchObject({ dim: 48, numHeads: 4, numLayers: 2, inChannels: 4, textDim: 32 });
      expect(m.config.text).toMatchObject({ dModel: 32, numLayers: 2, numHeads: 4, vocabSize: 512 });
      expect(m.config.vae).toMatchObject({ base: 8, dimMult: [1, 2, 2, 2], numResBlocks: 1, temporalDownsample: [false, true, true], zDim: 4 });
      expect(m.config.experts).toBeUndefined();
      const { context, tok, pred } = await predictThroughFamily(m, '  a green   star spinning ', 0.6);
      // Trimmed to the real tokens (up to and including </s>) and zero-padded after them.
      const real = tok.indexOf(1) + 1;
      expect(real).toBeGreaterThan(1);
      const ctx = context.data as Float32Array;
      expect(maxAbs(ctx.slice(real * 32))).toBe(0);
      expect(maxAbs(ctx.slice(0, real * 32))).toBeGreaterThan(0);
      const want = await predictDirect(weights.high, context, 0.6);
      expect(maxAbs(want)).toBeGreaterThan(1e-3);
      expect(maxDiff(pred, want)).toBeLessThan(1e-5);
    } finally {
      m.close();
    }
  });

  it('Load Model\'s loader (weights as external data, models folder given): MODEL/CLIP/VAE of the Wan family; the VAE encodes a 9-frame clip and the text cache a caption', async () => {
    const loaded = await loadModel(join(models, 'diffusion_models', 'wan-tiny_t2v.safetensors'), { modelsDir: models });
    expect(loaded.family.id).toBe('wan');
    expect(loaded.params.transformer).toBe([...weights.high.values()].reduce((n, t) => n + t.data.length, 0));
    expect(loaded.vae.latentEncoder.supportsFrames).toBe(true);
    const px = new Rng(3).fillNormal(new Float32Array(3 * 9 * 32 * 32)).map((v) => Math.tanh(v));
    const [lat] = await loaded.vae.latentEncoder.encode({ dims: [1, 3, 9, 32, 32], data: px });
    expect(lat.dims).toEqual([4, 3, 4, 4]);
    expect(maxAbs(lat.data)).toBeGreaterThan(0);
    const [emb] = await loaded.clip.textEmbeddingEncoder.encode(['a red circle moving left']);
    expect(emb.dims).toEqual([64, 32]);
  });

  it('text encoder and VAE files chosen on Load Model are used instead of the ones found', async () => {
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    const otherText = partWeights(tiny, 'text_encoder', 15);
    await writeSafetensors(join(elsewhere, 'my-umt5.safetensors'), toFile(otherText));
    writeFileSync(join(elsewhere, 'my-umt5.tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(CORPUS)));
    await writeSafetensors(join(elsewhere, 'my-vae.safetensors'), toFile(weights.vae));
    const file = join(models, 'diffusion_models', 'wan-tiny_t2v.safetensors');
    expect(wanFamily.loadsSeparateFiles).toBe(true);
    const found = await wanFamily.load(file);
    const chosen = await wanFamily.load(file, { textEncoderFiles: [join(elsewhere, 'my-umt5.safetensors')], vaeFile: join(elsewhere, 'my-vae.safetensors') });
    try {
      const a = await predictThroughFamily(found, 'a red circle', 0.5), b = await predictThroughFamily(chosen, 'a red circle', 0.5);
      expect(maxDiff(a.context.data as Float32Array, b.context.data as Float32Array)).toBeGreaterThan(1e-4); // another umT5's features
    } finally {
      found.close(); chosen.close();
    }
  });

  it('previews: flow Euler or UniPC on the shifted schedule through the contract; other samplers are refused; 9-frame clips', async () => {
    expect(wanFamily.samplers).toEqual(['euler', 'unipc']);
    expect(wanFamily.sampleFrames!(tiny)).toBe(9);
    const run = { steps: 4, cfgScale: 3, seed: 1, latentShape: [4, 3, 2, 2], batch: 1, scheduler: 'auto' };
    const seen: number[] = [];
    // A model whose velocity is the sample itself (unconditional = conditional).
    const call = async (x: Float32Array, t: number) => { seen.push(t); return x; };
    for (const sampler of ['euler', 'unipc']) {
      const out = await wanFamily.sample(call, tiny, { ...run, sampler });
      expect(out).toHaveLength(48);
      expect(out.every(Number.isFinite)).toBe(true);
    }
    expect(seen[0]).toBeCloseTo(1000, 3); // Euler starts at σ = 1
    expect(Math.max(...seen)).toBeLessThanOrEqual(1000);
    await expect(wanFamily.sample(call, tiny, { ...run, sampler: 'dpmpp_2m' })).rejects.toThrow(/euler or unipc/);
  });

  it('a diffusers-named transformer file predicts the same', async () => {
    const a = await wanFamily.load(join(models, 'diffusion_models', 'wan-tiny_t2v.safetensors'));
    const b = await wanFamily.load(join(models, 'diffusion_models', 'wan-tiny_diffusers_names.safetensors'));
    try {
      const pa = await predictThroughFamily(a, 'a red circle moving left', 0.3);
      const pb = await predictThroughFamily(b, 'a red circle moving left', 0.3);
      expect(maxDiff(pa.pred, pb.pred)).toBe(0);
    } finally {
      a.close(); b.close();
    }
  });

  it('2.2 A14B expert files: either expert loads by config; the other is found by name and opened only when asked', async () => {
    const high = join(models, 'diffusion_models', 'wan2.2-tiny_t2v_high_noise.safetensors');
    const m = await wanFamily.load(high);
    try {
      expect(m.config.experts).toEqual({ boundary: 0.875, active: 'high_noise' });
      expect(m.expertFiles).toEqual({ high_noise: high, low_noise: join(models, 'diffusion_models', 'wan2.2-tiny_t2v_low_noise.safetensors') });
      const low = await wanFamily.load(high, { config: wanExpertConfig(m.config, 'low_noise') });
      try {
        const ph = await predictThroughFamily(m, 'a yellow square moving up', 0.9);
        const pl = await predictThroughFamily(low, 'a yellow square moving up', 0.9);
        expect(maxDiff(pl.pred, await predictDirect(weights.low, pl.context, 0.9))).toBeLessThan(1e-5);
        expect(maxDiff(ph.pred, pl.pred)).toBeGreaterThan(1e-3);
      } finally {
        low.close();
      }
      const opened = await m.openExpert('low_noise');
      try {
        expect(Array.from((opened.get('head.head.weight', [16, 48]) as K.Tensor).shape)).toEqual([16, 48]);
      } finally {
        opened.close();
      }
    } finally {
      m.close();
    }
  });

  it('diffusers folder: transformer/ is the high-noise expert, transformer_2/ the low-noise one, boundary_ratio from model_index.json; tokenizer/tokenizer.json; vae/ in AutoencoderKLWan names', async () => {
    const folder = join(root, 'Wan2.2-tiny-Diffusers');
    expect((await familyOfCheckpoint(folder)).family.id).toBe('wan');
    const plain = await wanFamily.load(folder);
    try {
      expect(plain.config.experts).toEqual({ boundary: 0.8, active: 'high_noise' }); // model_index.json's boundary_ratio
    } finally {
      plain.close();
    }
    const m = await wanFamily.load(folder, { config: { ...tiny, experts: { boundary: 0.875, active: 'low_noise' } } });
    try {
      expect(m.expertFiles?.low_noise).toBe(join(folder, 'transformer_2'));
      expect(m.config.vae).toMatchObject({ base: 8, dimMult: [1, 2, 2, 2], numResBlocks: 1, zDim: 4 });
      const p = await predictThroughFamily(m, 'a green star spinning', 0.2);
      expect(maxDiff(p.pred, await predictDirect(weights.low, p.context, 0.2))).toBeLessThan(1e-5);
      // The VAE decodes as the Wan-named file does.
      const z = K.input('z', [1, 4, 2, 2, 2]);
      const zData = new Rng(5).fillNormal(new Float32Array(32));
      const viaFolder = await rt.load(K.compileGraph([z], { px: wanFamily.vaeDecode(new K.Builder(m.vae), m.config, z) }));
      const direct = await rt.load(K.compileGraph([z], { px: wanVaeDecode(new K.Builder(new K.HostWeights(weights.vae)), tiny.vae, z) }));
      const a = (await viaFolder.run({ z: f32([1, 4, 2, 2, 2], zData) })).px.data as Float32Array, b = (await direct.run({ z: f32([1, 4, 2, 2, 2], zData) })).px.data as Float32Array;
      expect(maxAbs(b)).toBeGreaterThan(1e-3);
      expect(maxDiff(a, b)).toBeLessThan(1e-6);
    } finally {
      m.close();
    }
  });
});

describe('tiny I2V through the family', () => {
  const i2v = tinyWanConfig({ i2v: true });
  it('latentConditioning: mask 1 on the first latent frame, then the latent of the first frame followed by black frames', async () => {
    const vae = new K.RandomWeights(6, 0.08);
    const px = K.input('px', [1, 3, 9, 32, 32]);
    const cond = wanFamily.latentConditioning!(new K.Builder(vae), i2v, px).condition;
    expect(cond.shape).toEqual([1, 8, 3, 4, 4]);
    const firstOnly = K.input('first', [1, 3, 9, 32, 32]);
    const ref = wanVaeEncode(new K.Builder(vae), i2v.vae, firstOnly).latents;
    const data = new Rng(4).fillNormal(new Float32Array(3 * 9 * 32 * 32)).map((v) => Math.tanh(v));
    const black = data.map((v, i) => (i % (9 * 1024) < 1024 ? v : 0)); // frame 0 kept in each channel, the rest zero
    const s = await rt.load(K.compileGraph([px, firstOnly], { cond, ref }));
    const r = await s.run({ px: f32([1, 3, 9, 32, 32], data), first: f32([1, 3, 9, 32, 32], black) });
    const c = r.cond.data as Float32Array, ref4 = r.ref.data as Float32Array;
    const plane = 16, frames = 3;
    for (let ch = 0; ch < 4; ch++) for (let f = 0; f < frames; f++) for (let p = 0; p < plane; p++) expect(c[(ch * frames + f) * plane + p]).toBe(f === 0 ? 1 : 0);
    expect(maxDiff(c.slice(4 * frames * plane), ref4)).toBeLessThan(1e-5);
  });

  it('the generic training graph feeds the condition sized by the clip ([B, 8, F, h, w]) and its loss depends on it', async () => {
    const adapters = familyAdapters(wanFamily, i2v, { rank: 2, alpha: 2, targets: { preset: 'attention_ff' }, trainTextEncoder: false });
    expect(adapters.denoiser.modules).toHaveLength(i2v.transformer.numLayers * 10);
    const g = buildTrainGraph({ family: wanFamily, config: i2v, denoiserWeights: new K.RandomWeights(9, 0.08), adapters, batch: 1, latentSize: [2, 4, 4] });
    const nameOf = (t: K.Tensor) => (t.source as { name: string }).name;
    const byName = new Map(g.inputs.map((t) => [nameOf(t), t]));
    expect(byName.get('condition')?.shape).toEqual([1, 8, 2, 4, 4]);
    expect(byName.get('context')?.shape).toEqual([1, 64, 32]);
    const params = Object.values(g.params);
    const s = await rt.load(K.compileGraph([...g.inputs, ...params], { loss: g.loss }));
    const feeds: Record<string, K.HostTensor> = {};
    const r = new Rng(2);
    for (const t of g.inputs) feeds[nameOf(t)] = f32([...t.shape], nameOf(t) === 'timesteps' ? Float32Array.of(0.5) : r.fork(nameOf(t)).fillNormal(new Float32Array(t.shape.reduce((a, b) => a * b, 1))));
    for (const [k, v] of Object.entries(adapters.denoiser.initialValues(3))) feeds[k] = v;
    const a = (await s.run(feeds)).loss.data[0] as number;
    feeds.condition = f32([1, 8, 2, 4, 4], new Float32Array(8 * 32));
    const b = (await s.run(feeds)).loss.data[0] as number;
    expect(Number.isFinite(a) && Number.isFinite(b)).toBe(true);
    expect(Math.abs(a - b)).toBeGreaterThan(1e-6);
  });
});
