// Tiny SDXL checkpoints written with the real key names — a single file in the SGM layout (bigG's
// q/k/v fused, projection transposed) and a diffusers folder — load back to the model that wrote
// them and give identical outputs; fp16 files load too; wrong files are refused with the tensor or
// family named; fine-tunes of SDXL (Pony, Illustrious) load as SDXL.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Builder, HostWeights, compileGraph, input, Runtime, type HostTensor, type WeightSource } from '../../../kernels';
import { writeSafetensors, openSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { float16ToFloat32, float32ToFloat16 } from '../../../kernels/io/dtypes';
import { tinySdxlConfig } from '../../../kernels/sdxl/config';
import { sdxlComponentTensors, SdxlKeyMap, type SdxlComponent } from '../../../kernels/sdxl/keys';
import { saveSdxlSingleFile, saveSdxlDiffusersFolder, type SdxlTensorFill } from '../../../kernels/sdxl/save';
import { loadSdxl, loadSdxlUnet } from '../../../kernels/sdxl/load';
import { sdxlUnet } from '../../../kernels/sdxl/unet';
import { sdxlTextEncode } from '../../../kernels/sdxl/text';
import { vaeDecode } from '../../../kernels/sd/vae';
import { tinyConfig } from '../../../kernels/sd/config';
import { saveSingleFile } from '../../../kernels/sd/save';
import { detectFamily } from '../../../kernels/families/detect';

const cfg = tinySdxlConfig(300);
const rt = new Runtime({ threads: 1 });
let dir: string;

/** Deterministic values per tensor name, so writer and reference agree without holding the model twice. */
const fill: SdxlTensorFill = (c, name, shape) => {
  let h = 2166136261;
  for (const ch of `${c}/${name}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  const n = shape.reduce((a, b) => a * b, 1);
  const base = /norm/.test(name) && name.endsWith('.weight') ? 1 : 0;
  return Float32Array.from({ length: n }, (_, i) => base + 0.08 * Math.sin(i * 0.37 + (h >>> 8) * 1e-3));
};

function reference(c: SdxlComponent, f16 = false): HostWeights {
  const m = new Map<string, HostTensor>();
  for (const [name, shape] of sdxlComponentTensors(cfg, c).shapes) {
    const v = fill(c, name, shape) as Float32Array;
    m.set(name, { dtype: 'float32', shape, data: f16 ? float16ToFloat32(float32ToFloat16(v)) : v });
  }
  return new HostWeights(m, c);
}

interface Parts { unet: WeightSource; textL: WeightSource; textG: WeightSource; vae: WeightSource }

/** UNet (with label_emb), both text towers and the VAE decoder on fixed inputs. */
async function outputs(w: Parts, externalDir?: string): Promise<Record<string, HostTensor>> {
  const L = 77;
  const x = input('x', [2, 4, 8, 8]), t = input('t', [2]), idsL = input('idsL', [2, L], 'int64'), idsG = input('idsG', [2, L], 'int64');
  const eos = input('eos', [2], 'int64'), timeIds = input('time_ids', [2, 6]), z = input('z', [1, 4, 4, 4]);
  const text = sdxlTextEncode(new Builder(w.textL), new Builder(w.textG), cfg, idsL, idsG, eos);
  const u = sdxlUnet(new Builder(w.unet), cfg, { sample: x, timestep: t, context: text.context, pooled: text.pooled, timeIds });
  const g = compileGraph([x, t, idsL, idsG, eos, timeIds, z], { u, context: text.context, pooled: text.pooled, im: vaeDecode(new Builder(w.vae), cfg.vae, z) }, { externalDir });
  const s = await rt.load(g);
  const f = (shape: number[]) => ({ dtype: 'float32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i)) });
  const ids = (seed: number) => ({ dtype: 'int64' as const, shape: [2, L], data: BigInt64Array.from({ length: 2 * L }, (_, i) => BigInt((i * seed) % 299)) });
  return s.run({
    x: f([2, 4, 8, 8]), t: { dtype: 'float32', shape: [2], data: new Float32Array([321, 40]) }, idsL: ids(7), idsG: ids(11),
    eos: { dtype: 'int64', shape: [2], data: new BigInt64Array([5n, 9n]) },
    time_ids: { dtype: 'float32', shape: [2, 6], data: new Float32Array([64, 64, 0, 0, 64, 64, 96, 80, 8, 4, 64, 48]) },
    z: f([1, 4, 4, 4]),
  });
}

function maxDiff(a: HostTensor, b: HostTensor) {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  let m = 0, s = 1e-6;
  for (let i = 0; i < x.length; i++) { m = Math.max(m, Math.abs(x[i] - y[i])); s = Math.max(s, Math.abs(y[i])); }
  return m / s;
}

let want: Record<string, HostTensor>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sdxl-load-'));
  want = await outputs({ unet: reference('unet'), textL: reference('text_encoder'), textG: reference('text_encoder_2'), vae: reference('vae') });
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); await rt.close(); });

describe('SDXL checkpoints', () => {
  let single: Record<string, HostTensor>;

  it('a single file in the SGM layout loads back to the model that wrote it', async () => {
    const file = join(dir, 'tiny-sdxl.safetensors');
    await saveSdxlSingleFile(file, cfg, fill);
    const r = await openSafetensors(file);
    const keys = r.names();
    await r.close();
    expect(keys).toContain('model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight');
    expect(keys).toContain('model.diffusion_model.label_emb.0.0.weight');
    expect(keys).toContain('conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight');
    expect(keys).toContain('conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight');
    expect(keys).toContain('conditioner.embedders.1.model.text_projection');
    expect(keys).toContain('first_stage_model.decoder.mid.attn_1.q.weight');
    expect(keys.filter((k) => /self_attn\.q_proj/.test(k) && k.includes('embedders.1'))).toEqual([]);
    const m = await loadSdxl(file);
    expect(m.layout).toBe('single-file');
    expect(m.config).toEqual(cfg);
    single = await outputs(m);
    for (const k of Object.keys(want)) expect(maxDiff(single[k], want[k]), k).toBe(0);
    m.close();
  });

  it('a diffusers folder (config read from config.json) gives the same outputs as the single file', async () => {
    const folder = join(dir, 'tiny-sdxl-diffusers');
    await saveSdxlDiffusersFolder(folder, cfg, fill);
    const m = await loadSdxl(folder);
    expect(m.layout).toBe('diffusers');
    expect({ ...m.config, name: cfg.name }).toEqual(cfg);
    const out = await outputs(m);
    for (const k of Object.keys(want)) expect(maxDiff(out[k], single[k]), k).toBe(0);
    m.close();
  });

  it('fp16 single files load (fused thirds read from the right bytes), and fp32 ones can stay on disk as external data', async () => {
    const f16 = join(dir, 'tiny-sdxl-f16.safetensors');
    await saveSdxlSingleFile(f16, cfg, fill, { dtype: 'F16' });
    const m16 = await loadSdxl(f16);
    expect(m16.dtypes).toEqual(['F16']);
    const ref16 = await outputs({ unet: reference('unet', true), textL: reference('text_encoder', true), textG: reference('text_encoder_2', true), vae: reference('vae', true) });
    const out16 = await outputs(m16);
    for (const k of Object.keys(ref16)) expect(maxDiff(out16[k], ref16[k]), k).toBeLessThan(1e-5);
    m16.close();
    const mExt = await loadSdxl(join(dir, 'tiny-sdxl.safetensors'), { external: true });
    const ext = await outputs(mExt, join(dir, 'ext'));
    for (const k of Object.keys(want)) expect(maxDiff(ext[k], want[k]), k).toBe(0);
    mExt.close();
  });

  it('a UNet on its own loads from a UNet-only single file and from a diffusers unet/ file', async () => {
    const file = join(dir, 'tiny-sdxl-unet.safetensors');
    await saveSdxlSingleFile(file, cfg, fill, { components: ['unet'] });
    const r = await openSafetensors(file);
    expect(r.names().every((k) => k.startsWith('model.diffusion_model.'))).toBe(true);
    await r.close();
    const others = { textL: reference('text_encoder'), textG: reference('text_encoder_2'), vae: reference('vae') };
    for (const path of [file, join(dir, 'tiny-sdxl-diffusers', 'unet', 'diffusion_pytorch_model.safetensors')]) {
      const u = await loadSdxlUnet(path, path === file ? {} : { config: cfg });
      const out = await outputs({ ...others, unet: u.unet });
      expect(maxDiff(out.u, want.u), path).toBe(0);
      u.unet.close();
    }
    await expect(loadSdxlUnet(join(dir, 'tiny-sdxl-f16.safetensors'), { config: { ...cfg, unet: { ...cfg.unet, transformerDepth: [1, 1, 3] } } })).rejects.toThrow(/missing tensor 'down_blocks\.2\.attentions\.0\.transformer_blocks\.2\./);
  });

  it('a tensor missing or mis-shaped is named with its single-file key', async () => {
    const map = new SdxlKeyMap(cfg);
    const tensors = (drop: string, reshape?: string): [string, TensorToWrite][] => map.singleFileKeys().filter((k) => k !== drop).map((k) => {
      const shape = k === reshape ? [...map.singleFileShape(k)!.slice(0, -1), map.singleFileShape(k)!.at(-1)! + 1] : map.singleFileShape(k)!;
      return [k, { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }];
    });
    const meta = { 'loragraph.sdxl_config': JSON.stringify(cfg) };
    const a = join(dir, 'missing.safetensors');
    await writeSafetensors(a, tensors('conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_weight'), meta);
    await expect(loadSdxl(a)).rejects.toThrow(/missing tensor 'conditioner\.embedders\.1\.model\.transformer\.resblocks\.1\.attn\.in_proj_weight'/);
    const b = join(dir, 'misshaped.safetensors');
    await writeSafetensors(b, tensors('', 'model.diffusion_model.label_emb.0.0.weight'), meta);
    await expect(loadSdxl(b)).rejects.toThrow(/tensor 'model\.diffusion_model\.label_emb\.0\.0\.weight' has shape/);
  });

  it('SD 1.x and refiner checkpoints are refused with their family named', async () => {
    const sd1 = join(dir, 'sd1.safetensors');
    await saveSingleFile(sd1, tinyConfig(300), (_c, _n, shape) => new Float32Array(shape.reduce((x, y) => x * y, 1)));
    await expect(loadSdxl(sd1)).rejects.toThrow(/Stable Diffusion 1\.x checkpoint, not SDXL/);
    const refiner = join(dir, 'refiner.safetensors');
    await writeSafetensors(refiner, [
      ['conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight', { dtype: 'F32', shape: [6, 2], data: new Float32Array(12) }],
      ['model.diffusion_model.label_emb.0.0.weight', { dtype: 'F32', shape: [4, 2560], data: new Float32Array(4 * 2560) }],
    ]);
    await expect(loadSdxl(refiner)).rejects.toThrow(/SDXL refiner checkpoint, not SDXL/);
    const refinerFolder = join(dir, 'refiner-diffusers');
    await saveSdxlDiffusersFolder(refinerFolder, cfg, fill, { components: ['unet', 'text_encoder_2', 'vae'] });
    await expect(loadSdxl(refinerFolder)).rejects.toThrow(/SDXL refiner \(text_encoder_2 only/);
  });

  it('Pony / Illustrious-style files (SDXL keys, their own metadata) are SDXL and load', async () => {
    const pony = join(dir, 'pony.safetensors');
    await saveSdxlSingleFile(pony, cfg, fill, { dtype: 'F16', metadata: { 'modelspec.title': 'Pony Diffusion V6 XL', 'modelspec.architecture': 'stable-diffusion-xl-v1-base' } });
    const r = await openSafetensors(pony);
    expect(detectFamily(r.names(), (k) => r.entry(k).shape).family).toBe('sdxl');
    await r.close();
    const m = await loadSdxl(pony);
    expect(m.family).toBe('sdxl');
    m.close();
  });
});
