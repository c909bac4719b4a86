// Checkpoints are recognised by their tensor names: SDXL and its fine-tunes (Pony, Illustrious) load as
// SDXL; families loragraph cannot train yet (SD2, SD3, FLUX, Wan, Z-Image, Qwen-Image) are refused with
// their name by the registry, reading only the file's header.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../../../kernels/io/safetensors';
import { detectFamily } from '../../../kernels/families/detect';
import { familyOfCheckpoint, UnsupportedModelError, trainableFamilies } from '../../../kernels/families/registry';

const dir = mkdtempSync(join(tmpdir(), 'lg-detect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const z = (shape: number[]) => ({ dtype: 'F32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
const only = (...keys: string[]) => Object.fromEntries(keys.map((k) => [k, z([2, 2])]));

/** Key sets in each family's single-file (or diffusion-model) layout. */
const CASES: [string, Record<string, ReturnType<typeof z>>, string, string][] = [
  ['pony', only('conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight', 'conditioner.embedders.1.model.ln_final.weight', 'model.diffusion_model.label_emb.0.0.weight'), 'sdxl', 'SDXL'],
  ['sd2', only('cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight', 'model.diffusion_model.input_blocks.0.0.weight'), 'sd2', 'Stable Diffusion 2.x'],
  ['sd3', only('model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight'), 'sd3', 'Stable Diffusion 3'],
  ['flux1', only('double_blocks.0.img_attn.qkv.weight', 'single_blocks.0.linear1.weight'), 'flux1', 'FLUX.1'],
  ['flux2', only('double_blocks.0.img_attn.qkv.weight', 'double_stream_modulation_img.lin.weight'), 'flux2', 'FLUX.2'],
  ['wan', only('model.diffusion_model.patch_embedding.weight', 'model.diffusion_model.head.modulation'), 'wan', 'Wan'],
  ['wan-diffusion-model-prefix', only('diffusion_model.patch_embedding.weight', 'diffusion_model.head.modulation'), 'wan', 'Wan'],
  ['wan-diffusers', only('condition_embedder.time_proj.weight', 'patch_embedding.weight', 'scale_shift_table'), 'wan', 'Wan'],
  ['zimage', only('cap_embedder.1.weight', 'noise_refiner.0.attention.qkv.weight'), 'zimage', 'Z-Image'],
  ['qwen', only('txt_norm.weight', 'img_in.weight', 'transformer_blocks.0.attn.add_q_proj.weight'), 'qwen-image', 'Qwen-Image'],
];

describe('family detection', () => {
  it('names each family from its keys; SDXL-width cross-attention marks an SDXL UNet', () => {
    for (const [, tensors, id] of CASES) expect(detectFamily(Object.keys(tensors)).family).toBe(id);
    const attn = 'model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight';
    expect(detectFamily([attn, 'model.diffusion_model.input_blocks.0.0.weight'], () => [640, 2048]).family).toBe('sdxl');
    expect(detectFamily([attn, 'model.diffusion_model.input_blocks.0.0.weight'], () => [640, 1024]).family).toBe('sd2');
    expect(detectFamily(['model.diffusion_model.input_blocks.0.0.weight', 'cond_stage_model.transformer.text_model.final_layer_norm.weight']).family).toBe('sd1');
  });

  it('the registry loads SD 1.x and SDXL (Pony/Illustrious too) and refuses the rest by name', async () => {
    expect(trainableFamilies().map((f) => f.id)).toEqual(expect.arrayContaining(['sd1', 'sdxl']));
    for (const [name, tensors, id, label] of CASES) {
      const file = join(dir, `${name}.safetensors`);
      await writeSafetensors(file, tensors);
      if (id === 'sdxl') {
        expect((await familyOfCheckpoint(file)).family.id).toBe('sdxl');
        continue;
      }
      const trainable = trainableFamilies().some((f) => f.id === id);
      if (trainable) continue; // a family that landed since (FLUX, Wan): its own tests load it
      const err = await familyOfCheckpoint(file).then(() => undefined, (e: unknown) => e);
      expect(err, name).toBeInstanceOf(UnsupportedModelError);
      expect((err as UnsupportedModelError).family).toBe(id);
      expect((err as Error).message).toContain(`${label} checkpoint, which loragraph cannot train yet`);
    }
  });
});
