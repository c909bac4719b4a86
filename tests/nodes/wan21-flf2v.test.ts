// Wan 2.1 FLF2V (first and last frame) end to end on a tiny FLF2V-shaped model written as ComfyUI lays it
// out (diffusion_models/, text_encoders/, vae/, clip_vision/), random weights: Load Model detects it by
// img_emb.emb_pos; its condition is the VAE latent of [first, black…, last] behind a mask marking frame 0
// and the last pixel frame, with CLIP features of both frames (2 × 257 tokens), so the last frame changes
// the denoiser's prediction (a diffusers-named file samples the same clip); the Sampler takes an end image (endImage or lastFrame), and
// without one samples from the first frame alone (ComfyUI's WanFirstLastFrameToVideo without end_image), while other models refuse one; the training loop trains a LoRA on 5-frame clips, on both
// frames or (Train's flf2vCondition) on the first frame only, as I2V: mask on latent frame 0, the first
// frame's 257 CLIP tokens; Save LoRA writes ComfyUI's names (k_img/v_img included) and Load LoRA reads back
// the same weights.
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import * as K from '../../kernels';
import { loadSafetensors, writeSafetensors, type TensorToWrite } from '../../kernels/io/safetensors';
import { buildUnigramTokenizerJson } from '../../kernels/text/unigram-tokenizer-json';
import { WAN21_FLF2V_14B_FAMILY, tinyWan21Flf2vConfig, tinyWan21I2vConfig, wanFamily, type WanFamilyConfig } from '../../kernels/wan/family';
import { modelLabel } from '../../kernels/families/contract';
import { wanToDiffusers } from '../../kernels/wan/keys';
import { Rng } from '../../kernels/random';
import loadModelNode from '../../nodes/load-model';
import saveLoraNode from '../../nodes/save-lora';
import loadLoraNode from '../../nodes/load-lora';
import { samplerNode } from '../../nodes/sampler';
import optimizerNode, { type OptimizerValue } from '../../nodes/optimizer';
import { latentConditioningEncoder } from '../../nodes/models/encoders';
import { buildDataset, defaultDatasetSettings } from '../../nodes/data/dataset';
import { trainSd } from '../../nodes/training/trainer';
import { trainSettings } from './training/settings';
import type { AdapterSpec, ClipValue, ImagesValue, ModelValue, TrainingValue, VaeValue } from '../../nodes/sockets';
import { repoRoot } from '../../server/paths';
import { nodeContext } from './context';

const cfg = tinyWan21Flf2vConfig();
const CORPUS = ['a red circle moving left on a blue background', 'a green star spinning', 'a ball bouncing'];
const TRANSFORMER = 'diffusion_models/wan2.1-tiny-flf2v.safetensors';
const I2V = 'diffusion_models/wan2.1-tiny-i2v.safetensors';
const DIFFUSERS = 'diffusion_models/wan2.1-tiny-flf2v-diffusers-names.safetensors';

function partWeights(c: WanFamilyConfig, part: string, seed: number): Map<string, K.HostTensor> {
  const rw = new K.RandomWeights(seed, 0.08);
  wanFamily.parts(c).find((p) => p.id === part)!.trace(new K.Builder(rw));
  return rw.tensors;
}
const file = (m: Map<string, K.HostTensor>) => new Map([...m].map(([k, t]) => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array } as TensorToWrite]));
const transformer = partWeights(cfg, 'transformer', 3);

const { ctx } = nodeContext();
type Loaded = { model: ModelValue; clip: ClipValue; vae: VaeValue };
const load = async (checkpoint = TRANSFORMER) => {
  const r = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx });
  return { ...(r.outputs as Loaded), text: r.ui!.text as string[] };
};
let flf: Loaded & { text: string[] };

/** A 64×64 frame: a square of `fg` on `bg`. */
async function frame(name: string, fg: number[], bg: number[]) {
  const px = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < 64 * 64; i++) px.set((i % 64) > 16 && (i % 64) < 44 && i / 64 > 16 && i / 64 < 44 ? fg : bg, i * 3);
  writeFileSync(join(ctx.paths.input, name), await sharp(px, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer());
}

beforeAll(async () => {
  const models = ctx.paths.models;
  for (const d of ['diffusion_models', 'text_encoders', 'vae', 'clip_vision']) mkdirSync(join(models, d), { recursive: true });
  const meta = { loragraph_num_heads: String(cfg.transformer.numHeads), loragraph_text_length: String(cfg.textLength) };
  await writeSafetensors(join(models, TRANSFORMER), file(transformer), meta);
  // The same weights in diffusers' names (emb_pos → condition_embedder.image_embedder.pos_embed).
  await writeSafetensors(join(models, DIFFUSERS), new Map([...file(transformer)].map(([k, t]) => [wanToDiffusers(k), t])), meta);
  // The same model without emb_pos is 2.1 I2V.
  await writeSafetensors(join(models, I2V), file(new Map([...transformer].filter(([k]) => k !== 'img_emb.emb_pos'))), meta);
  await writeSafetensors(join(models, 'text_encoders', 'umt5-tiny.safetensors'), file(partWeights(cfg, 'text_encoder', 5)));
  writeFileSync(join(models, 'text_encoders', 'umt5-tiny.tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(CORPUS)));
  await writeSafetensors(join(models, 'vae', 'wan-tiny-vae.safetensors'), file(partWeights(cfg, 'vae', 6)));
  const tower = new Map([...partWeights(cfg, 'clip_vision', 7)].map(([k, t]) => [k.replace(/^clip_vision\./, ''), t]));
  await writeSafetensors(join(models, 'clip_vision', 'clip_vision_tiny.safetensors'), file(tower), { loragraph_num_heads: String(cfg.clipVision!.numHeads) });
  mkdirSync(ctx.paths.input, { recursive: true });
  await frame('square.png', [245, 225, 50], [135, 50, 170]);
  await frame('inverse.png', [40, 60, 230], [230, 240, 220]);
  flf = await load();
}, 120_000);

/** A 5-frame 64×64 clip in [−1, 1]: random frames, the last one replaced by `last` when given. */
function clip5(last?: Float32Array): Float32Array {
  const plane = 64 * 64;
  const data = new Rng(2).fillNormal(new Float32Array(3 * 5 * plane)).map((v) => Math.tanh(v));
  if (last) for (let c = 0; c < 3; c++) data.set(last.subarray(c * plane, (c + 1) * plane), (c * 5 + 4) * plane);
  return data;
}

describe('Wan 2.1 FLF2V: detection and conditioning', () => {
  it('Load Model reads it as FLF2V (emb_pos), the same file without emb_pos as I2V; the 14B release is labelled Wan 2.1 FLF2V 14B', async () => {
    expect((flf.model.config as WanFamilyConfig).transformer).toMatchObject({ firstLastFrame: true, clipImageDim: 16, inChannels: 12 });
    expect(wanFamily.conditioning(flf.model.config as WanFamilyConfig).find((c) => c.name === 'clip')!.shape).toEqual([514, 16]);
    const i2v = await load(I2V);
    expect((i2v.model.config as WanFamilyConfig).transformer.firstLastFrame).toBe(false);
    expect(modelLabel(wanFamily, WAN21_FLF2V_14B_FAMILY)).toBe('Wan 2.1 FLF2V 14B');
    expect(WAN21_FLF2V_14B_FAMILY.sampleSize).toBe(720);
  }, 60_000);

  it('the condition marks frame 0 and the last pixel frame (last channel of the last latent frame); the last frame changes the condition and the second 257 CLIP tokens only', async () => {
    const enc = latentConditioningEncoder(wanFamily, flf.model.config, flf.vae.weights, 'flf')!;
    expect(enc.names).toEqual(['condition', 'clip']);
    const a = await enc.encode({ dims: [1, 3, 5, 64, 64], data: clip5() });
    expect(a.condition.dims).toEqual([8, 2, 8, 8]);
    expect(a.clip.dims).toEqual([514, 16]);
    // Mask [4, 2 latent frames, 8, 8]: frame 0 known in all 4 channels; latent frame 1 holds pixel frames 1–4, only 4 (the last) known.
    const maskAt = (ch: number, f: number) => a.condition.data[(ch * 2 + f) * 64];
    expect([0, 1, 2, 3].map((ch) => maskAt(ch, 0))).toEqual([1, 1, 1, 1]);
    expect([0, 1, 2, 3].map((ch) => maskAt(ch, 1))).toEqual([0, 0, 0, 1]);
    const b = await enc.encode({ dims: [1, 3, 5, 64, 64], data: clip5(new Float32Array(3 * 64 * 64).fill(0.7)) });
    const tokens = (t: Float32Array, from: number, to: number) => Array.from(t.subarray(from * 16, to * 16));
    expect(tokens(b.clip.data, 0, 257)).toEqual(tokens(a.clip.data, 0, 257));
    expect(tokens(b.clip.data, 257, 514)).not.toEqual(tokens(a.clip.data, 257, 514));
    // Latent frame 1 of the image latent (channels 4–7) holds the last frame; frame 0 does not change.
    const latentFrame = (t: Float32Array, f: number) => [4, 5, 6, 7].flatMap((ch) => Array.from(t.subarray((ch * 2 + f) * 64, (ch * 2 + f + 1) * 64)));
    expect(latentFrame(b.condition.data, 0)).toEqual(latentFrame(a.condition.data, 0));
    expect(latentFrame(b.condition.data, 1)).not.toEqual(latentFrame(a.condition.data, 1));

    // First frame only (FLF2V as I2V): the mask marks latent frame 0 alone, the image branch gets the first
    // frame's 257 tokens (the same as with both frames), and the last frame changes nothing.
    const firstOnly = wanFamily.firstFrameOnly!(flf.model.config as WanFamilyConfig);
    expect(wanFamily.takesLastFrame!(firstOnly)).toBe(false);
    expect(wanFamily.conditioning(firstOnly).find((c) => c.name === 'clip')!.shape).toEqual([257, 16]);
    const one = latentConditioningEncoder(wanFamily, firstOnly, flf.vae.weights, 'flf-first-only')!;
    const c = await one.encode({ dims: [1, 3, 5, 64, 64], data: clip5() });
    expect(c.condition.dims).toEqual([8, 2, 8, 8]);
    expect(c.clip.dims).toEqual([257, 16]);
    expect([0, 1, 2, 3].map((ch) => c.condition.data[(ch * 2) * 64])).toEqual([1, 1, 1, 1]);
    expect([0, 1, 2, 3].map((ch) => c.condition.data[(ch * 2 + 1) * 64])).toEqual([0, 0, 0, 0]);
    expect(tokens(c.clip.data, 0, 257)).toEqual(tokens(a.clip.data, 0, 257));
    expect(latentFrame(c.condition.data, 0)).toEqual(latentFrame(a.condition.data, 0));
    const d = await one.encode({ dims: [1, 3, 5, 64, 64], data: clip5(new Float32Array(3 * 64 * 64).fill(0.7)) });
    expect(Array.from(d.condition.data)).toEqual(Array.from(c.condition.data));
    expect(Array.from(d.clip.data)).toEqual(Array.from(c.clip.data));
    expect(() => wanFamily.firstFrameOnly!(tinyWan21I2vConfig())).toThrow(/takes no last frame/);
  }, 60_000);
});

describe('Wan 2.1 FLF2V: sampling with a start and an end image', () => {
  const sample = async (w: Record<string, unknown>, inputs: Record<string, unknown> = {}, model: Loaded = flf) => {
    const r = await samplerNode.execute({
      inputs: { model: model.model, clip: model.clip, vae: model.vae, ...inputs } as never,
      widgets: samplerNode.widgets.parse({ prompts: CORPUS[0], seed: 3, steps: 2, cfg: 4, sampler: 'euler', numFrames: 5, startImage: 'square.png', ...w }), ctx,
    });
    const video = (r.outputs.images as ImagesValue).images[0]!.video!;
    expect(video.frames.length).toBe(5);
    return Buffer.concat(video.frames);
  };

  it('the end image changes the clip (the denoiser sees the last frame); lastFrame IMAGES stands in for endImage', async () => {
    const toSquare = await sample({ endImage: 'square.png' });
    const toInverse = await sample({ endImage: 'inverse.png' });
    expect(toSquare.equals(toInverse)).toBe(false);
    const png = await sharp(join(ctx.paths.input, 'inverse.png')).png().toBuffer();
    const viaInput = await sample({}, { lastFrame: { images: [{ mime: 'image/png', data: new Uint8Array(png), label: 'inverse' }], byteSize: () => png.length } });
    expect(viaInput.equals(toInverse)).toBe(true);
    // diffusers' names read as the same model.
    expect((await sample({ endImage: 'inverse.png' }, {}, await load(DIFFUSERS))).equals(toInverse)).toBe(true);
  }, 120_000);

  it('without an end image samples from the first frame alone (FLF2V as I2V); an end image on a model that takes none is refused', async () => {
    const firstOnly = await sample({});
    expect(await sample({})).toEqual(firstOnly);
    // Neither of the clips that end on an image: the condition has no last frame and the image branch only the first frame's tokens.
    expect(firstOnly.equals(await sample({ endImage: 'square.png' }))).toBe(false);
    expect(firstOnly.equals(await sample({ endImage: 'inverse.png' }))).toBe(false);
    await expect(sample({ endImage: 'square.png' }, {}, await load(I2V))).rejects.toThrow(/^endImage: .*takes no last frame .*clear endImage/);
  }, 120_000);
});

const adapter: AdapterSpec = {
  kind: 'adapter', algo: 'LoRA', rank: 4, alpha: 4, convRank: 4, convAlpha: 4, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'attention', include: [], exclude: [], trainTextEncoder: false, byteSize: () => 64,
};

describe('Wan 2.1 FLF2V: training and its LoRA', () => {
  let training: TrainingValue;
  it('the training loop trains a LoRA on 5-frame clips, each conditioned on its first and last frames', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'lg-flf2v-clips-'));
    for (const f of ['bounce-01.mp4', 'bounce-01.txt']) copyFileSync(join(repoRoot, 'assets/demo-video', f), join(folder, f));
    const dataset = await buildDataset({ ...defaultDatasetSettings, folder, resolutions: [64], numFrames: 5, videoModel: true });
    const optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
    const settings = trainSettings({ steps: 2, seed: 3, cacheLatents: false });
    const dir = () => mkdtempSync(join(tmpdir(), 'lg-flf2v-train-'));
    const r = await trainSd({ ...flf, datasets: [dataset], adapter, optimizer }, settings, { checkpointDir: dir(), cacheDir: dir(), id: 'flf2v' });
    expect(r.training.step).toBe(2);
    expect(r.training.lossHistory.map((l) => l.loss).every(Number.isFinite)).toBe(true);
    // The LoRA moved: some lora_up (zero at the start) is no longer zero.
    expect(Object.entries(r.training.weights).some(([k, t]) => k.endsWith('lora_up.weight') && (t.data as Float32Array).some((v) => v !== 0))).toBe(true);
    training = r.training;
  }, 180_000);

  it('Train\'s flf2vCondition "first frame only" trains the same clips conditioned on the first frame alone', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'lg-flf2v-clips-'));
    for (const f of ['bounce-01.mp4', 'bounce-01.txt']) copyFileSync(join(repoRoot, 'assets/demo-video', f), join(folder, f));
    const dataset = await buildDataset({ ...defaultDatasetSettings, folder, resolutions: [64], numFrames: 5, videoModel: true });
    const optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
    const dir = () => mkdtempSync(join(tmpdir(), 'lg-flf2v-train-'));
    const r = await trainSd({ ...flf, datasets: [dataset], adapter, optimizer }, trainSettings({ steps: 2, seed: 3, cacheLatents: false, flf2vCondition: 'first frame only' }), { checkpointDir: dir(), cacheDir: dir(), id: 'flf2v-first-only' });
    expect(r.training.step).toBe(2);
    const losses = r.training.lossHistory.map((l) => l.loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    // Same seed, batches, noise and timesteps as the run on both frames: only the condition differs, and with it the loss.
    expect(losses).not.toEqual(training.lossHistory.map((l) => l.loss));
  }, 180_000);

  it('Save LoRA writes ComfyUI\'s Wan names (ai-toolkit: diffusion_model.blocks.N.cross_attn.k_img) and Load LoRA reads the same weights back', async () => {
    const saved = await saveLoraNode.execute({ inputs: { training }, widgets: saveLoraNode.widgets.parse({ name: 'flf2v', fileName: '{name}', format: 'ai-toolkit', dtype: 'fp32' }), ctx });
    const path = (saved.outputs.loraFile as { path: string }).path;
    const keys = [...(await loadSafetensors(path)).tensors.keys()];
    expect(keys).toContain('diffusion_model.blocks.0.cross_attn.k_img.lora_A.weight');
    expect(keys).toContain('diffusion_model.blocks.1.self_attn.q.lora_B.weight');
    const back = (await loadLoraNode.execute({ inputs: { model: flf.model }, widgets: loadLoraNode.widgets.parse({ loraFile: `output/${relative(ctx.paths.output, path)}` }), ctx })).outputs.training as TrainingValue;
    expect(Object.keys(back.weights).sort()).toEqual(Object.keys(training.weights).sort());
    for (const [k, t] of Object.entries(training.weights)) {
      const got = back.weights[k]!.data as Float32Array;
      const want = t.data as Float32Array;
      expect(got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i]!)), 0), k).toBeLessThan(1e-6);
    }
  }, 60_000);
});
