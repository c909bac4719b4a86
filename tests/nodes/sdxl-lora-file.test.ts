// SDXL LoRA files written by Save LoRA's code read back through Load LoRA's: kohya (lora_unet_ SGM names,
// lora_te1_/lora_te2_) and diffusers (unet./text_encoder./text_encoder_2.) give the same weights and the
// same network (type, rank, modules, text encoders); a file for another family is refused by name.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '../../kernels';
import { Rng } from '../../kernels/random';
import { sdxlFamily, tinySdxlConfig } from '../../kernels/sdxl';
import { sd1Family } from '../../kernels/sd/sd1-family';
import { tinyConfig } from '../../kernels/sd/config';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { adapterSetsFor, setList } from '../../nodes/models/adapters';
import { readLoraFileFor, saveLoraFile } from '../../nodes/models/lora-file';
import type { AdapterSpec } from '../../nodes/sockets';

const dir = mkdtempSync(join(tmpdir(), 'lg-sdxl-lora-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = { family: sdxlFamily, config: tinySdxlConfig() };

const spec: AdapterSpec = Object.freeze({
  kind: 'adapter' as const, algo: 'LoRA' as const, rank: 4, alpha: 2, convRank: 4, convAlpha: 4, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'attention' as const, include: [], exclude: [], trainTextEncoder: true, byteSize: () => 0,
});

function randomWeights(): Record<string, HostTensor> {
  const rng = new Rng(11);
  const out: Record<string, HostTensor> = {};
  for (const set of setList(adapterSetsFor(spec, model))) {
    for (const p of set.paramSpecs) out[p.key] = { dtype: 'float32', shape: [...p.shape], data: rng.fork(p.key).fillNormal(new Float32Array(p.shape.reduce((a, b) => a * b, 1))) };
  }
  return out;
}

describe('SDXL LoRA files', () => {
  for (const format of ['kohya', 'diffusers'] as const) {
    it(`${format}: written and read back to the same deltas, UNet and both text encoders`, async () => {
      const weights = randomWeights();
      const file = join(dir, `${format}.safetensors`);
      await saveLoraFile(file, { spec, family: sdxlFamily, config: model.config, weights, format, dtype: 'F32', metadata: { ss_base_model_version: 'sdxl_base_v1-0' } });
      const keys = [...(await loadSafetensors(file)).tensors.keys()];
      if (format === 'kohya') {
        expect(keys.some((k) => k.startsWith('lora_unet_input_blocks_4_1_'))).toBe(true);
        expect(keys.some((k) => k.startsWith('lora_te1_text_model_encoder_layers_0_self_attn_q_proj.'))).toBe(true);
        expect(keys.some((k) => k.startsWith('lora_te2_text_model_encoder_layers_0_self_attn_q_proj.'))).toBe(true);
      } else {
        expect(keys.some((k) => k.startsWith('text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.'))).toBe(true);
        expect(keys.some((k) => k.startsWith('unet.down_blocks.1.attentions.0.'))).toBe(true);
      }
      const back = await readLoraFileFor(file, model);
      expect(back.spec).toMatchObject({ algo: 'LoRA', rank: 4, trainTextEncoder: true });
      const sets = adapterSetsFor(back.spec, model);
      expect(sets.text).toHaveLength(2);
      // Same delta per module: up·down·(alpha/rank) (diffusers files fold alpha into up).
      const orig = adapterSetsFor(spec, model);
      for (const set of setList(orig)) {
        for (const m of set.modules) {
          const scaleA = m.scale, scaleB = setList(sets).flatMap((s) => s.modules).find((x) => x.name === m.name)!.scale;
          const a = weights[`${m.name}.lora_up.weight`].data as Float32Array, b = back.weights[`${m.name}.lora_up.weight`].data as Float32Array;
          expect((weights[`${m.name}.lora_down.weight`].data as Float32Array)).toEqual(back.weights[`${m.name}.lora_down.weight`].data);
          for (let i = 0; i < a.length; i += 7) expect(b[i] * scaleB).toBeCloseTo(a[i] * scaleA, 5);
        }
      }
    });
  }

  it('an SD 1.x LoRA is refused for an SDXL model, and an SDXL one for SD 1.x, by name', async () => {
    const file = join(dir, 'sdxl-kohya.safetensors');
    await saveLoraFile(file, { spec, family: sdxlFamily, config: model.config, weights: randomWeights(), format: 'kohya', dtype: 'F16', metadata: { ss_base_model_version: 'sdxl_base_v1-0' } });
    await expect(readLoraFileFor(file, { family: sd1Family, config: tinyConfig() })).rejects.toThrow(/made for sdxl_base_v1-0, not Stable Diffusion 1\.x/);
    const sd = { family: sd1Family, config: tinyConfig() };
    const sdSpec = { ...spec, trainTextEncoder: false };
    const sdWeights: Record<string, HostTensor> = {};
    for (const p of adapterSetsFor(sdSpec, sd).denoiser.paramSpecs) sdWeights[p.key] = { dtype: 'float32', shape: [...p.shape], data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)) };
    const sdFile = join(dir, 'sd1.safetensors');
    await saveLoraFile(sdFile, { spec: sdSpec, family: sd1Family, config: sd.config, weights: sdWeights, format: 'kohya', dtype: 'F16', metadata: { ss_base_model_version: 'sd_v1' } });
    await expect(readLoraFileFor(sdFile, model)).rejects.toThrow(/made for sd_v1, not SDXL/);
  });
});
