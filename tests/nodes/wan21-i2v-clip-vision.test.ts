// Wan 2.1 I2V's CLIP vision branch end to end on a tiny model written as ComfyUI lays it out
// (diffusion_models/, text_encoders/, vae/, clip_vision/): Load Model finds the CLIP vision file or takes
// the one chosen on its clipVision widget (Wan's own layout reads the same), refuses one of the wrong
// width or on a model without an image branch, and without one the first frame's features are refused
// naming the widget; the LoRA trains through the real training loop (with latents cached, the features are
// computed once per item) and on a fixed batch its loss falls with the frozen image features fed; the
// Sampler's start image changes the clip.
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as K from '../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../kernels/io/safetensors';
import { buildUnigramTokenizerJson } from '../../kernels/text/unigram-tokenizer-json';
import { tinyWan21I2vConfig, tinyWanConfig, wanFamily, type WanFamilyConfig } from '../../kernels/wan/family';
import { wanToDiffusers } from '../../kernels/wan/keys';
import { clipVisionKeyIn } from '../../kernels/vision/clip-vision-keys';
import { CLIP_VISION_TINY } from '../../kernels/vision/clip-vision';
import { buildTrainGraph } from '../../kernels/families/training-graph';
import { familyAdapters } from '../../kernels/families/adapters';
import { Rng } from '../../kernels/random';
import loadModelNode from '../../nodes/load-model';
import { samplerNode } from '../../nodes/sampler';
import optimizerNode, { type OptimizerValue } from '../../nodes/optimizer';
import { latentConditioningEncoder } from '../../nodes/models/encoders';
import { buildDataset, defaultDatasetSettings } from '../../nodes/data/dataset';
import { trainSd } from '../../nodes/training/trainer';
import { trainSettings } from './training/settings';
import type { AdapterSpec, ClipValue, ImagesValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { repoRoot } from '../../server/paths';
import { nodeContext } from './context';

const cfg = tinyWan21I2vConfig();
const CORPUS = ['a red circle moving left on a blue background', 'a green star spinning', 'a yellow square moving up'];
const TRANSFORMER = 'diffusion_models/wan2.1-tiny-i2v.safetensors';

/** The weights every part of `c` asks for, random but fixed by `seed`. */
function partWeights(c: WanFamilyConfig, part: string, seed: number): Map<string, K.HostTensor> {
  const rw = new K.RandomWeights(seed, 0.08);
  wanFamily.parts(c).find((p) => p.id === part)!.trace(new K.Builder(rw));
  return rw.tensors;
}
const f32 = (t: K.HostTensor): TensorToWrite => ({ dtype: 'F32', shape: t.shape, data: t.data as Float32Array });
const weights = {
  transformer: partWeights(cfg, 'transformer', 3), text: partWeights(cfg, 'text_encoder', 5), vae: partWeights(cfg, 'vae', 6),
  // Under the VAE value's clip_vision. scope; files hold them without it.
  clipVision: new Map([...partWeights(cfg, 'clip_vision', 7)].map(([k, t]) => [k.replace(/^clip_vision\./, ''), t])),
};
const CLIP_META = { loragraph_num_heads: String(cfg.clipVision!.numHeads) };

/** The tower's tensors in Wan's layout (visual.transformer.N.attn.to_qkv: q, k, v rows stacked). */
function wanLayout(tensors: Map<string, K.HostTensor>): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  const fused = new Map<string, K.HostTensor[]>();
  for (const [name, t] of tensors) {
    const k = clipVisionKeyIn('wan', name)!;
    const key = `visual.${k.key}`;
    if (k.qkvPart !== undefined) { const parts = fused.get(key) ?? []; parts[k.qkvPart] = t; fused.set(key, parts); continue; }
    if (k.transposed) {
      const [r, c] = t.shape, d = t.data as Float32Array;
      out.set(key, { dtype: 'F32', shape: [c, r], data: Float32Array.from({ length: d.length }, (_, i) => d[(i % r) * c + Math.floor(i / r)]) });
    } else out.set(key, { dtype: 'F32', shape: k.reshaped ? [1, ...(t.shape.length === 1 ? [1] : []), ...t.shape] : t.shape, data: t.data as Float32Array });
  }
  for (const [key, [q, k, v]] of fused) {
    const data = new Float32Array(3 * q.data.length);
    [q, k, v].forEach((t, i) => data.set(t.data as Float32Array, i * q.data.length));
    out.set(key, { dtype: 'F32', shape: [3 * q.shape[0], ...q.shape.slice(1)], data });
  }
  return out;
}

/** A ComfyUI models folder with the tiny Wan 2.1 I2V's parts; the CLIP vision file only when `withClipVision`. */
async function writeModels(models: string, withClipVision: boolean) {
  for (const d of ['diffusion_models', 'text_encoders', 'vae', 'clip_vision', 'elsewhere']) mkdirSync(join(models, d), { recursive: true });
  const file = (m: Map<string, K.HostTensor>) => new Map([...m].map(([k, t]) => [k, f32(t)]));
  await writeSafetensors(join(models, TRANSFORMER), file(weights.transformer), { loragraph_num_heads: String(cfg.transformer.numHeads), loragraph_text_length: String(cfg.textLength) });
  // A text-to-video model beside it, which has no image branch.
  await writeSafetensors(join(models, 'diffusion_models', 'wan-tiny-t2v.safetensors'), file(partWeights(tinyWanConfig(), 'transformer', 4)), { loragraph_num_heads: String(cfg.transformer.numHeads) });
  await writeSafetensors(join(models, 'text_encoders', 'umt5-tiny.safetensors'), file(weights.text));
  writeFileSync(join(models, 'text_encoders', 'umt5-tiny.tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(CORPUS)));
  await writeSafetensors(join(models, 'vae', 'wan-tiny-vae.safetensors'), file(weights.vae));
  if (!withClipVision) return;
  await writeSafetensors(join(models, 'clip_vision', 'clip_vision_tiny.safetensors'), file(weights.clipVision), CLIP_META);
  await writeSafetensors(join(models, 'elsewhere', 'wan_visual_tiny.safetensors'), wanLayout(weights.clipVision), CLIP_META);
  // A tower of the wrong width for this transformer's image branch (8, not 16).
  const narrow = new K.RandomWeights(9, 0.08);
  wanFamily.parts({ ...cfg, clipVision: CLIP_VISION_TINY }).find((p) => p.id === 'clip_vision')!.trace(new K.Builder(narrow));
  await writeSafetensors(join(models, 'elsewhere', 'narrow.safetensors'), new Map([...narrow.tensors].map(([k, t]) => [k.replace(/^clip_vision\./, ''), f32(t)])), CLIP_META);
}

const { ctx } = nodeContext();
const bare = nodeContext(mkdtempSync(join(tmpdir(), 'lg-wan21-no-clip-')));
type Loaded = { model: ModelValue; clip: ClipValue; vae: VaeValue };
const load = async (c: typeof ctx, w: Record<string, unknown> = {}) => {
  const r = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: TRANSFORMER, ...w }), ctx: c });
  return { ...(r.outputs as Loaded), text: r.ui!.text as string[] };
};
let wan: Loaded & { text: string[] };

/** A 64×64 start frame: a square of `fg` on `bg`. */
async function frame(dir: string, name: string, fg: number[], bg: number[]) {
  const px = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < 64 * 64; i++) px.set((i % 64) > 16 && (i % 64) < 44 && i / 64 > 16 && i / 64 < 44 ? fg : bg, i * 3);
  writeFileSync(join(dir, name), await sharp(px, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer());
}

beforeAll(async () => {
  await writeModels(ctx.paths.models, true);
  await writeModels(bare.ctx.paths.models, false);
  for (const dir of [ctx.paths.input, bare.ctx.paths.input]) {
    mkdirSync(dir, { recursive: true });
    await frame(dir, 'square.png', [245, 225, 50], [135, 50, 170]);
    await frame(dir, 'inverse.png', [40, 60, 230], [230, 240, 220]);
  }
  wan = await load(ctx);
}, 120_000);

/** The clip features of one 5-frame clip through a VAE value's latent conditioning. */
async function clipFeatures(vae: VaeValue, config: unknown) {
  const enc = latentConditioningEncoder(wanFamily, config, vae.weights, 'test')!;
  expect(enc.names).toEqual(['condition', 'clip']);
  const data = new Rng(2).fillNormal(new Float32Array(3 * 5 * 64 * 64)).map((v) => Math.tanh(v));
  return enc.encode({ dims: [1, 3, 5, 64, 64], data });
}

describe('Wan 2.1 I2V\'s CLIP vision file on Load Model', () => {
  it('is found in clip_vision/ (ComfyUI\'s layout), or taken from the clipVision widget in Wan\'s layout with the same features', async () => {
    expect(wan.model.config).toMatchObject({ clipVision: { hiddenSize: 16, numLayers: 2, imageSize: 224, patchSize: 14 }, transformer: { clipImageDim: 16 } });
    expect(wan.text[1]).toMatch(/CLIP vision 0\.\d\dM/);
    const found = await clipFeatures(wan.vae, wan.model.config);
    expect(found.clip.dims).toEqual([257, 16]);
    expect(found.condition.dims).toEqual([8, 2, 8, 8]);
    const chosen = await load(ctx, { clipVision: 'elsewhere/wan_visual_tiny.safetensors' });
    const viaWidget = await clipFeatures(chosen.vae, chosen.model.config);
    let diff = 0;
    found.clip.data.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - viaWidget.clip.data[i])); });
    expect(diff).toBeLessThan(1e-5);
    expect(Math.max(...Array.from(found.clip.data, Math.abs))).toBeGreaterThan(0.1);
  }, 60_000);

  it('a diffusers folder\'s image_encoder/ is its CLIP vision tower', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'lg-wan21-diffusers-'));
    for (const d of ['transformer', 'text_encoder', 'tokenizer', 'vae', 'image_encoder']) mkdirSync(join(folder, d));
    const file = (m: Map<string, K.HostTensor>, rename = (k: string) => k) => new Map([...m].map(([k, t]) => [rename(k), f32(t)]));
    await writeSafetensors(join(folder, 'transformer', 'diffusion_pytorch_model.safetensors'), file(weights.transformer, wanToDiffusers), { loragraph_num_heads: String(cfg.transformer.numHeads) });
    await writeSafetensors(join(folder, 'text_encoder', 'model.safetensors'), file(weights.text));
    writeFileSync(join(folder, 'tokenizer', 'tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(CORPUS)));
    await writeSafetensors(join(folder, 'vae', 'diffusion_pytorch_model.safetensors'), file(weights.vae));
    await writeSafetensors(join(folder, 'image_encoder', 'model.safetensors'), file(weights.clipVision), CLIP_META);
    const m = await wanFamily.load(folder, { config: wan.model.config as WanFamilyConfig });
    try {
      expect(m.params.clip_vision).toBe([...weights.clipVision.values()].reduce((n, t) => n + t.data.length, 0));
      const a = await clipFeatures(wan.vae, wan.model.config);
      const b = await clipFeatures({ ...wan.vae, weights: m.vae }, wan.model.config);
      expect(Array.from(b.clip.data)).toEqual(Array.from(a.clip.data));
    } finally {
      m.close();
    }
  }, 60_000);

  it('refuses a tower of the wrong width, and without any CLIP vision file names the clipVision widget when the features are needed', async () => {
    await expect(load(ctx, { clipVision: 'elsewhere/narrow.safetensors' })).rejects.toThrow(/^clipVision: .*narrow\.safetensors: this CLIP vision tower is 8 wide; the transformer's image branch takes 16/);
    // A model without an image branch would ignore a chosen file: refused instead.
    await expect(load(ctx, { checkpoint: 'diffusion_models/wan-tiny-t2v.safetensors', clipVision: 'clip_vision/clip_vision_tiny.safetensors' })).rejects.toThrow(/^clipVision: wan-tiny-t2v\.safetensors \(Wan 2\.1\/2\.2\) takes no CLIP vision file/);
    await expect(load(ctx, { checkpoint: 'builtin:tiny', clipVision: 'clip_vision/clip_vision_tiny.safetensors' })).rejects.toThrow(/^clipVision: Stable Diffusion 1\.x checkpoints carry their own text encoders and VAE and take no CLIP vision file/);
    const without = await load(bare.ctx);
    expect(without.text[1]).not.toMatch(/CLIP vision/);
    await expect(clipFeatures(without.vae, without.model.config)).rejects.toThrow(/clipVision: .*no CLIP vision file was found: choose ComfyUI's clip_vision_h\.safetensors on Load Model's clipVision widget/);
    await expect(samplerNode.execute({
      inputs: { model: without.model, clip: without.clip, vae: without.vae } as never,
      widgets: samplerNode.widgets.parse({ steps: 1, sampler: 'euler', numFrames: 5, startImage: 'square.png' }), ctx: bare.ctx,
    })).rejects.toThrow(/clipVision: .*Load Model's clipVision widget/);
  }, 60_000);
});

const adapter: AdapterSpec = {
  kind: 'adapter', algo: 'LoRA', rank: 4, alpha: 4, convRank: 4, convAlpha: 4, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'attention', include: [], exclude: [], trainTextEncoder: false, byteSize: () => 64,
};

describe('training and sampling the tiny Wan 2.1 I2V with its image features', () => {
  it('the training loop runs LoRA steps with the first frame\'s CLIP features; on a fixed batch the loss falls', async () => {
    const rt = new K.Runtime({ threads: 1 });
    try {
      const dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
      const optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
      const settings = trainSettings({ steps: 3, seed: 3 });
      const dir = () => mkdtempSync(join(tmpdir(), 'lg-wan21-train-'));
      const r = await trainSd({ ...wan, datasets: [dataset], adapter, optimizer }, settings, { checkpointDir: dir(), cacheDir: dir(), id: 'wan21' });
      expect(r.training.step).toBe(3);
      expect(r.training.lossHistory.map((l) => l.loss).every(Number.isFinite)).toBe(true);

      // The same graph family on one fixed batch: the clip features of a real frame fed as the frozen `clip` input.
      const adapters = familyAdapters(wanFamily, wan.model.config, { rank: 4, alpha: 4, targets: { preset: 'attention_ff' }, trainTextEncoder: false });
      const g = buildTrainGraph({ family: wanFamily, config: wan.model.config, denoiserWeights: wan.model.denoiser, adapters, batch: 1, latentSize: [2, 8, 8] });
      const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, extraOutputs: g.extra, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
      await ts.init(adapters.denoiser.initialValues(5));
      const cond = await clipFeatures(wan.vae, wan.model.config);
      const rng = new Rng(8);
      const batch: Record<string, K.HostTensor> = {};
      for (const t of g.inputs) {
        const n = (t.source as { name: string }).name;
        const fed = n === 'clip' ? cond.clip : n === 'condition' ? cond.condition : undefined;
        batch[n] = fed
          ? { dtype: 'float32', shape: [1, ...fed.dims], data: fed.data }
          : { dtype: 'float32', shape: [...t.shape], data: n === 'timesteps' ? Float32Array.of(0.6) : rng.fork(n).fillNormal(new Float32Array(t.shape.reduce((a, b) => a * b, 1))) };
      }
      expect(Object.keys(batch)).toEqual(expect.arrayContaining(['clip', 'condition']));
      const first = await ts.step([batch], 2e-2, 1);
      let last = first;
      for (let s = 2; s <= 15; s++) last = await ts.step([batch], 2e-2, s);
      expect(Number.isFinite(last.loss)).toBe(true);
      expect(last.loss).toBeLessThan(first.loss * 0.9);
    } finally {
      rt.close();
    }
  }, 300_000);

  it('with latents cached, each item\'s first-frame conditioning is computed once: no pixels are read again after the first step', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'lg-wan21-one-'));
    for (const f of ['other-01.png', 'other-01.txt']) copyFileSync(join(repoRoot, 'assets/demo-dataset', f), join(folder, f));
    const dataset = await buildDataset({ ...defaultDatasetSettings, folder, resolutions: [64] });
    let reads = 0;
    const read = dataset.loadPixels.bind(dataset);
    dataset.loadPixels = (...a) => { reads++; return read(...a); };
    const optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
    const run = async (cacheLatents: boolean) => {
      reads = 0;
      const settings = trainSettings({ steps: 4, seed: 3, cacheLatents });
      const dir = () => mkdtempSync(join(tmpdir(), 'lg-wan21-memo-'));
      const r = await trainSd({ ...wan, datasets: [dataset], adapter, optimizer }, settings, { checkpointDir: dir(), cacheDir: dir(), id: 'wan21-memo' });
      return { reads, losses: r.training.lossHistory.map((l) => l.loss) };
    };
    const cached = await run(true);
    // One read to cache the latent, one for the first step's conditioning; none after.
    expect(cached.reads).toBe(2);
    const uncached = await run(false);
    expect(uncached.reads).toBe(4);
    // Same draws, same features: the losses agree.
    uncached.losses.forEach((l, i) => expect(l).toBeCloseTo(cached.losses[i], 4));
  }, 120_000);

  it('the Sampler\'s start image changes the clip', async () => {
    const clipFrom = async (startImage: string) => {
      const r = await samplerNode.execute({
        inputs: { model: wan.model, clip: wan.clip, vae: wan.vae } as never,
        widgets: samplerNode.widgets.parse({ prompts: 'a red circle moving left on a blue background', seed: 3, steps: 2, cfg: 4, sampler: 'euler', numFrames: 5, startImage }), ctx,
      });
      const video = (r.outputs.images as ImagesValue).images[0]!.video!;
      expect(video.frames.length).toBe(5);
      return Buffer.concat(video.frames);
    };
    expect((await clipFrom('square.png')).equals(await clipFrom('inverse.png'))).toBe(false);
  }, 120_000);
});
