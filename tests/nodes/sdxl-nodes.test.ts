// The model nodes on SDXL, with no SDXL code in nodes/: Load Model detects a tiny SDXL checkpoint in the
// single-file layout and as a diffusers folder and loads both alike; CLIP encodes captions to the packed
// context + pooled conditioning; LoRA Target counts the UNet and both text encoders; Quantize quantises the
// UNet and both text encoders.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import loadModelNode from '../../nodes/load-model';
import loraTargetNode from '../../nodes/lora-target';
import quantizeNode from '../../nodes/quantize';
import { saveSdxlDiffusersFolder, saveSdxlSingleFile, seededSdxlFill, tinySdxlConfig } from '../../kernels/sdxl';
import type { ClipValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';

const { ctx } = nodeContext();
const cfg = tinySdxlConfig();
beforeAll(async () => {
  mkdirSync(ctx.paths.models, { recursive: true });
  await saveSdxlSingleFile(join(ctx.paths.models, 'xl-tiny.safetensors'), cfg, seededSdxlFill(2, 0.05), { dtype: 'F16' });
  await saveSdxlDiffusersFolder(join(ctx.paths.models, 'xl-tiny-diffusers'), cfg, seededSdxlFill(2, 0.05), { dtype: 'F16' });
});
const load = (checkpoint: string) => loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx });

describe('model nodes on SDXL', () => {
  it('Load Model: single file and diffusers folder load as SDXL with the same encoders', async () => {
    const a = await load('xl-tiny.safetensors');
    const b = await load('xl-tiny-diffusers');
    for (const r of [a, b]) {
      expect(r.ui!.text![0]).toMatch(/^SDXL · xl-tiny(-diffusers)? \(64px, F16\)/);
      expect(r.ui!.text![1]).toMatch(/^UNet [\d.]+M, text encoder [\d.]+M, text encoder 2 [\d.]+M, VAE [\d.]+M parameters$/);
      expect((r.outputs.model as ModelValue).source.family).toBe('sdxl');
    }
    expect(a.ui!.text![1]).toBe(b.ui!.text![1]);
    const ca = a.outputs.clip as ClipValue, cb = b.outputs.clip as ClipValue;
    expect(ca.encoders.map((e) => e.part)).toEqual(['text_encoder', 'text_encoder_2']);
    const [ea] = await ca.textEmbeddingEncoder.encode(['a red square']);
    const [eb] = await cb.textEmbeddingEncoder.encode(['a red square']);
    // context [77, 32 + 32] then pooled [32], packed per caption.
    expect(ea.dims).toEqual([77 * 64 + 32]);
    expect(ea.data).toEqual(eb.data);
    const px = { dims: [1, 3, 32, 48], data: Float32Array.from({ length: 3 * 32 * 48 }, (_, i) => Math.sin(i * 0.03)) };
    const [la] = await (a.outputs.vae as VaeValue).latentEncoder.encode(px);
    expect(la.dims).toEqual([4, 8, 12]);
    expect(la.data).toEqual((await (b.outputs.vae as VaeValue).latentEncoder.encode(px))[0].data);
  });

  it('LoRA Target counts UNet and both text encoders; Quantize int8 shrinks the UNet and both text encoders', async () => {
    const { model, clip } = (await load('xl-tiny.safetensors')).outputs as { model: ModelValue; clip: ClipValue };
    const t = await loraTargetNode.execute({ inputs: { model }, widgets: loraTargetNode.widgets.parse({ rank: 4, targetPreset: 'attention', trainTextEncoder: true }), ctx });
    expect(t.ui!.text![1]).toMatch(/trainable parameters in \d+ UNet \+ \d+ text-encoder modules/);
    const q = await quantizeNode.execute({ inputs: { model, clip }, widgets: quantizeNode.widgets.parse({ unet: 'int8', textEncoder: 'int8' }), ctx });
    const mem = q.ui!.memory as Record<string, number>;
    expect(mem.unetAfter).toBeLessThan(mem.unetBefore * 0.6);
    expect(mem.textEncoderAfter).toBeLessThan(mem.textEncoderBefore * 0.6);
    const qc = q.outputs.clip as ClipValue;
    expect(qc.encoders).toHaveLength(2);
    expect(qc.encoders.every((e, i) => e.weights !== clip.encoders[i].weights)).toBe(true);
    // The quantised encoders still encode, close to the float ones.
    const [f] = await clip.textEmbeddingEncoder.encode(['a blue circle']);
    const [g] = await qc.textEmbeddingEncoder.encode(['a blue circle']);
    let err = 0, ref = 0;
    for (let i = 0; i < f.data.length; i++) { err += (f.data[i] - g.data[i]) ** 2; ref += f.data[i] ** 2; }
    expect(Math.sqrt(err / ref)).toBeLessThan(0.05);
  });
});
