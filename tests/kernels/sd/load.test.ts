// Loading SD 1.x weights: single files in fp32/fp16/bf16 and diffusers folders load back to the model
// that wrote them; bad files are refused with the tensor or family named.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Builder, HostWeights, compileGraph, input, Runtime, type HostTensor, type WeightSource } from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../../../kernels/io/dtypes';
import { tinyConfig, type SdConfig } from '../../../kernels/sd/config';
import { componentTensors, COMPONENTS, type Component } from '../../../kernels/sd/keys/expected';
import { toSingleFileKey, toSingleFileShape } from '../../../kernels/sd/keys/single-file';
import { saveSingleFile, saveDiffusersFolder, type TensorFill } from '../../../kernels/sd/save';
import { loadSd, CheckpointError } from '../../../kernels/sd/load';
import { unet } from '../../../kernels/sd/unet';
import { clipTextEncoder } from '../../../kernels/sd/clip-text';
import { vaeDecode } from '../../../kernels/sd/vae';

const cfg = tinyConfig(300);
const rt = new Runtime({ threads: 1 });
let dir: string;

/** Deterministic values per tensor name, so writer and reference agree without holding the model twice. */
const fill: TensorFill = (_c, name, shape) => {
  let h = 2166136261;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  const n = shape.reduce((a, b) => a * b, 1);
  const base = /norm/.test(name) && name.endsWith('.weight') ? 1 : 0;
  return Float32Array.from({ length: n }, (_, i) => base + 0.05 * Math.sin(i * 0.37 + (h >>> 8) * 1e-3));
};

/** The weights as a file of `dtype` stores them (rounded to fp16/bf16 and widened back). */
function reference(c: Component, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): HostWeights {
  const round = (a: Float32Array) => (dtype === 'F16' ? float16ToFloat32(float32ToFloat16(a)) : dtype === 'BF16' ? bfloat16ToFloat32(float32ToBfloat16(a)) : a);
  const m = new Map<string, HostTensor>();
  for (const [name, shape] of componentTensors(cfg, c).shapes) m.set(name, { dtype: 'float32', shape, data: round(fill(c, name, shape) as Float32Array) });
  return new HostWeights(m, c);
}

/** Runs UNet, text encoder and VAE decoder on fixed inputs. */
async function outputs(w: { unet: WeightSource; textEncoder: WeightSource; vae: WeightSource }, c?: SdConfig): Promise<Record<string, HostTensor>>;
async function outputs(w: { unet: WeightSource; textEncoder: WeightSource; vae: WeightSource }, c: SdConfig, externalDir: string): Promise<{ out: Record<string, HostTensor>; graphBytes: Uint8Array }>;
async function outputs(w: { unet: WeightSource; textEncoder: WeightSource; vae: WeightSource }, c: SdConfig = cfg, externalDir?: string): Promise<any> {
  const x = input('x', [1, 4, 8, 8]), t = input('t', [1]), ctx = input('c', [1, 77, 64]), ids = input('ids', [1, 77], 'int64'), z = input('z', [1, 4, 4, 4]);
  const g = compileGraph([x, t, ctx, ids, z], {
    u: unet(new Builder(w.unet), c.unet, { sample: x, timestep: t, context: ctx }),
    te: clipTextEncoder(new Builder(w.textEncoder), c.text, ids).hidden,
    im: vaeDecode(new Builder(w.vae), c.vae, z),
  }, { externalDir });
  const s = await rt.load(g);
  const f = (shape: number[]) => ({ dtype: 'float32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i)) });
  const out = await s.run({ x: f([1, 4, 8, 8]), t: { dtype: 'float32', shape: [1], data: new Float32Array([321]) }, c: f([1, 77, 64]),
    ids: { dtype: 'int64', shape: [1, 77], data: BigInt64Array.from({ length: 77 }, (_, i) => BigInt((i * 7) % 300)) }, z: f([1, 4, 4, 4]) });
  return externalDir ? { out, graphBytes: g.bytes } : out;
}

/** Largest difference relative to the largest reference value. */
function maxDiff(a: HostTensor, b: HostTensor) {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  let m = 0, s = 1e-6;
  for (let i = 0; i < x.length; i++) { m = Math.max(m, Math.abs(x[i] - y[i])); s = Math.max(s, Math.abs(y[i])); }
  return m / s;
}

const wanted = new Map<string, Record<string, HostTensor>>();
/** Reference outputs of the model with weights as stored in `dtype`. */
async function expected(dtype: 'F32' | 'F16' | 'BF16') {
  if (!wanted.has(dtype)) wanted.set(dtype, await outputs({ unet: reference('unet', dtype), textEncoder: reference('text_encoder', dtype), vae: reference('vae', dtype) }));
  return wanted.get(dtype)!;
}
let want: Record<string, HostTensor>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sd-load-'));
  want = await expected('F32');
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); await rt.close(); });

/** The tiny model's single-file tensors, to be edited into bad files. */
function singleFileTensors(): Map<string, TensorToWrite> {
  const m = new Map<string, TensorToWrite>();
  for (const c of COMPONENTS) for (const [name, shape] of componentTensors(cfg, c).shapes) {
    m.set(toSingleFileKey(cfg, c, name), { dtype: 'F32', shape: toSingleFileShape(c, name, shape), data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  }
  return m;
}

describe('loading SD 1.x checkpoints', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`a ${dtype} single file loads back to the model that wrote it`, async () => {
      const path = join(dir, `tiny-${dtype}.safetensors`);
      await saveSingleFile(path, cfg, fill, { dtype });
      const m = await loadSd(path);
      expect(m.family).toBe('sd1');
      expect(m.dtypes).toEqual([dtype]);
      expect(m.config).toEqual(cfg);
      const got = await outputs(m);
      const ref = await expected(dtype);
      for (const k of ['u', 'te', 'im']) expect(maxDiff(got[k], ref[k]), k).toBeLessThan(1e-5);
      m.close();
    });
  }

  it('a diffusers folder (config.json per part, fp16 weights) loads with its config read from config.json', async () => {
    const folder = join(dir, 'tiny-diffusers');
    await saveDiffusersFolder(folder, cfg, fill, { dtype: 'F16' });
    const m = await loadSd(folder);
    expect(m.config.unet).toEqual(cfg.unet);
    expect(m.config.text).toEqual(cfg.text);
    expect(m.config.vae).toEqual(cfg.vae);
    const got = await outputs(m, m.config);
    const ref = await expected('F16');
    for (const k of ['u', 'te', 'im']) expect(maxDiff(got[k], ref[k]), k).toBeLessThan(1e-5);
  });

  it('fp32 weights can stay in the file as external data (no tensor read into JS)', async () => {
    const path = join(dir, 'tiny-F32.safetensors');
    const m = await loadSd(path, { external: true });
    const got = await outputs(m, cfg, join(dir, 'external-model'));
    expect(got.graphBytes.length).toBeLessThan(1_000_000);
    for (const k of ['u', 'te', 'im']) expect(maxDiff(got.out[k], want[k]), k).toBe(0);
  });

  it('a missing tensor is named', async () => {
    const t = singleFileTensors();
    t.delete('model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight');
    const path = join(dir, 'missing.safetensors');
    await writeSafetensors(path, t, { 'loragraph.sd_config': JSON.stringify(cfg) });
    await expect(loadSd(path)).rejects.toThrow(/missing tensor 'model\.diffusion_model\.input_blocks\.1\.1\.transformer_blocks\.0\.attn2\.to_k\.weight'/);
  });

  it('a mis-shaped tensor is named with both shapes', async () => {
    const t = singleFileTensors();
    t.set('first_stage_model.decoder.conv_in.weight', { dtype: 'F32', shape: [64, 3, 3, 3], data: new Float32Array(64 * 27) });
    const path = join(dir, 'wrong-shape.safetensors');
    await writeSafetensors(path, t, { 'loragraph.sd_config': JSON.stringify(cfg) });
    await expect(loadSd(path)).rejects.toThrow(/'first_stage_model\.decoder\.conv_in\.weight' has shape \[64,3,3,3\], expected \[64,4,3,3\]/);
  });

  it('an unexpected tensor is named; EMA copies and position_ids are not', async () => {
    const t = singleFileTensors();
    t.set('model.diffusion_model.input_blocks.1.1.extra.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    t.set('model_ema.decay', { dtype: 'F32', shape: [], data: new Float32Array(1) });
    t.set('cond_stage_model.transformer.text_model.embeddings.position_ids', { dtype: 'I64', shape: [1, 77], data: new BigInt64Array(77) });
    const path = join(dir, 'unexpected.safetensors');
    await writeSafetensors(path, t, { 'loragraph.sd_config': JSON.stringify(cfg) });
    const err = await loadSd(path).then(() => new Error('loaded'), (e: Error) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toMatch(/1 tensor problem\(s\): unexpected tensor 'model\.diffusion_model\.input_blocks\.1\.1\.extra\.weight'/);
  });

  it('without a config in its metadata a file is taken as SD 1.5-sized, and the size mismatch is reported by name', async () => {
    const path = join(dir, 'no-config.safetensors');
    await writeSafetensors(path, singleFileTensors());
    await expect(loadSd(path)).rejects.toThrow(/tensor problem\(s\):.*'model\.diffusion_model\.input_blocks\.0\.0\.weight' has shape \[32,4,3,3\], expected \[320,4,3,3\]/);
  });

  it('an SDXL checkpoint is named as such, not half-loaded', async () => {
    const path = join(dir, 'sdxl.safetensors');
    const z = (shape: number[]): TensorToWrite => ({ dtype: 'F16', shape, data: new Uint16Array(shape.reduce((a, b) => a * b, 1)) });
    await writeSafetensors(path, {
      'model.diffusion_model.input_blocks.0.0.weight': z([320, 4, 3, 3]),
      'model.diffusion_model.label_emb.0.0.weight': z([1280, 2816]),
      'conditioner.embedders.0.transformer.text_model.final_layer_norm.weight': z([768]),
      'conditioner.embedders.1.model.ln_final.weight': z([1280]),
      'first_stage_model.encoder.conv_in.weight': z([128, 3, 3, 3]),
    });
    const err = await loadSd(path).then(() => new CheckpointError(path, 'loaded'), (e: CheckpointError) => e);
    expect(err.message).toMatch(/this is an SDXL checkpoint, not Stable Diffusion 1\.x/);
    expect(err.family).toBe('sdxl');
  });

  it('SD 2.x, Flux and LoRA files are named too', async () => {
    const z = (shape: number[]): TensorToWrite => ({ dtype: 'F16', shape, data: new Uint16Array(shape.reduce((a, b) => a * b, 1)) });
    const cases: [string, Record<string, TensorToWrite>, RegExp][] = [
      ['sd2', { 'model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight': z([320, 1024]), 'model.diffusion_model.input_blocks.0.0.weight': z([320, 4, 3, 3]) }, /Stable Diffusion 2\.x checkpoint/],
      ['flux', { 'double_blocks.0.img_attn.qkv.weight': z([2, 2]), 'single_blocks.0.linear1.weight': z([2, 2]) }, /a FLUX\.1 checkpoint/],
      ['lora', { 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight': z([4, 320]) }, /a LoRA\/LyCORIS adapter file/],
    ];
    for (const [name, tensors, re] of cases) {
      const path = join(dir, `${name}.safetensors`);
      await writeSafetensors(path, tensors);
      await expect(loadSd(path)).rejects.toThrow(re);
    }
  });

  it('a diffusers SDXL folder is refused from model_index.json; a missing config.json is named', async () => {
    const xl = join(dir, 'xl-folder');
    await mkdir(xl, { recursive: true });
    await writeFile(join(xl, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionXLPipeline' }));
    await expect(loadSd(xl)).rejects.toThrow(/SDXL checkpoint \(StableDiffusionXLPipeline\)/);
    const empty = join(dir, 'empty-folder');
    await mkdir(empty, { recursive: true });
    await expect(loadSd(empty)).rejects.toThrow(/unet\/config\.json: missing/);
  });
});
