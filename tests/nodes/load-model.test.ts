// Load Model: a checkpoint under the models folder becomes MODEL/CLIP/VAE values whose encoders work
// (deterministic latents, clip-skip-aware embeddings); other families and bad paths fail by name.
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import loadModelNode from '../../nodes/load-model';
import { builtinTiny } from '../../nodes/models/builtin';
import { writeSafetensors } from '../../kernels/io/safetensors';
import type { ClipValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { writeTinyCheckpoint } from './tiny-model';

const { ctx, root } = nodeContext();
let name: string;
beforeAll(async () => { name = await writeTinyCheckpoint(ctx.paths.models); });

const run = (w: Record<string, unknown>) => loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse(w), ctx });

describe('Load Model node', () => {
  it('defaults to the built-in tiny model and offers clip skip', () => {
    const info = loadModelNode.info();
    expect(info.widgets.find((w) => w.name === 'checkpoint')).toMatchObject({ kind: 'path', default: 'builtin:tiny', pathKind: 'models' });
    expect(info.outputs.map((o) => o.type)).toEqual(['MODEL', 'CLIP', 'VAE']);
  });

  it('loads an SD 1.x file into MODEL, CLIP and VAE and says which family it is', async () => {
    const r = await run({ checkpoint: name });
    const model = r.outputs.model as ModelValue, clip = r.outputs.clip as ClipValue, vae = r.outputs.vae as VaeValue;
    expect(r.ui!.text![0]).toMatch(/^Stable Diffusion 1\.x · tiny-random \(64px, F32\)/);
    expect(model.source).toMatchObject({ family: 'sd1', label: 'tiny-random', path: join(root, 'models', name) });
    expect(model.source.id).toMatch(/^[0-9a-f]{64}$/);
    expect(clip.source.id).toBe(model.source.id);
    expect(model.byteSize()).toBeGreaterThan(1e6);

    const pixels = { dims: [2, 3, 64, 64], data: Float32Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.01)) };
    const a = await vae.latentEncoder.encode(pixels);
    const b = await vae.latentEncoder.encode(pixels);
    expect(a).toHaveLength(2);
    expect(a[0].dims).toEqual([4, 16, 16]);
    expect(a[0].data).toEqual(b[0].data);
    expect(a[0].data.every(Number.isFinite)).toBe(true);

    const emb = await clip.textEmbeddingEncoder.encode(['a red circle', 'a blue square']);
    expect(emb.map((e) => e.dims)).toEqual([[77, 64], [77, 64]]);
    expect(emb[0].data).not.toEqual(emb[1].data);
    const skip2 = (await run({ checkpoint: name, clipSkip: 2 })).outputs.clip as ClipValue;
    expect(skip2.textEmbeddingEncoder.id).not.toBe(clip.textEmbeddingEncoder.id);
    const e2 = await skip2.textEmbeddingEncoder.encode(['a red circle']);
    expect(e2[0].data).not.toEqual(emb[0].data);
    // Same caption, same embedding, whichever chunk it was encoded in.
    expect((await clip.textEmbeddingEncoder.encode(['x', 'y', 'a red circle']))[2].data).toEqual(emb[0].data);
  });

  it('names the family of a checkpoint it cannot train', async () => {
    await writeSafetensors(join(ctx.paths.models, 'qwen.safetensors'), {
      'txt_norm.weight': { dtype: 'F32', shape: [4], data: new Float32Array(4) },
      'img_in.weight': { dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
      'transformer_blocks.0.attn.add_q_proj.weight': { dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
    });
    await expect(run({ checkpoint: 'qwen.safetensors' })).rejects.toThrow(/checkpoint \[Qwen-Image\]: .*qwen\.safetensors: this is a Qwen-Image checkpoint, which loragraph cannot train yet/);
    await writeSafetensors(join(ctx.paths.models, 'a-lora.safetensors'), {
      'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight': { dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
    });
    await expect(run({ checkpoint: 'a-lora.safetensors' })).rejects.toThrow(/a LoRA\/LyCORIS file, not a base model \(load it with Load LoRA\)/);
  });

  it('refuses paths outside the models folder, missing files and clip skip past the last layer', async () => {
    await expect(run({ checkpoint: '../elsewhere.safetensors' })).rejects.toThrow(/outside/);
    await expect(run({ checkpoint: 'nope.safetensors' })).rejects.toThrow(/nope\.safetensors/);
    await expect(run({ checkpoint: name, clipSkip: 4 })).rejects.toThrow(/clipSkip: must be 1 to 3/);
  });

  it('loads builtin:tiny when the asset exists, or says how to build it', async () => {
    if (existsSync(builtinTiny.checkpoint)) {
      const r = await run({});
      expect((r.outputs.model as ModelValue).source.path).toBe('builtin:tiny');
    } else {
      await expect(run({})).rejects.toThrow(/pretrain:tiny/);
    }
  });
});
