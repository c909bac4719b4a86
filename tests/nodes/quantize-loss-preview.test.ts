// Quantize (memory before/after per part, images still close to the float model), Loss Graph (raw and
// smoothed curve) and Preview Image (inline and saved files).
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import quantizeNode from '../../nodes/quantize';
import lossGraphNode, { smoothLoss } from '../../nodes/loss-graph';
import previewNode from '../../nodes/preview-image';
import { renderSamples } from '../../nodes/sampling/render';
import type { ClipValue, ModelValue, SamplerSettings, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { loadTiny } from './training-fixture';

const { ctx } = nodeContext();
let model: ModelValue, clip: ClipValue, vae: VaeValue;
beforeAll(async () => { ({ model, clip, vae } = await loadTiny(ctx)); });

const quantize = (w: Record<string, unknown>, withClip = true) => quantizeNode.execute({ inputs: { model, clip: withClip ? clip : undefined }, widgets: quantizeNode.widgets.parse(w), ctx });

describe('Quantize node', () => {
  it('reports weight memory before and after for each part', async () => {
    const r = await quantize({ unet: 'int8', textEncoder: 'nf4' });
    const m = r.ui!.memory as Record<string, number>;
    expect(m.unetBefore).toBe(model.byteSize());
    // int8 keeps a byte per weight plus a scale per row: the quantised layers shrink about 4×.
    expect(m.unetAfter / m.unetBefore).toBeGreaterThan(0.25);
    expect(m.unetAfter / m.unetBefore).toBeLessThan(0.45);
    expect(m.textEncoderAfter / m.textEncoderBefore).toBeLessThan(0.5);
    expect(r.ui!.text![0]).toMatch(/^UNet int8: .* MB → .* MB \(\d+ layers\)$/);
    const q = r.outputs.model as ModelValue, qc = r.outputs.clip as ClipValue;
    expect(q.quantization).toBe('int8');
    expect(qc.quantization).toBe('nf4');
    expect(qc.textEmbeddingEncoder.id).not.toBe(clip.textEmbeddingEncoder.id);
    const nf4 = (await quantize({ unet: 'nf4' }, false)).ui!.memory as Record<string, number>;
    expect(nf4.unetAfter).toBeLessThan(m.unetAfter);
  });

  it('an int8 UNet samples nearly the same image as the float one', async () => {
    const q = (await quantize({ unet: 'int8' }, false)).outputs.model as ModelValue;
    const settings: SamplerSettings = { kind: 'sampler_settings', prompts: [{ prompt: 'a red circle' }], negativePrompt: '', seed: 3, walkSeed: false, steps: 3, cfg: 4, sampler: 'ddim', scheduler: 'auto', width: 0, height: 0, loraStrength: 1, byteSize: () => 0 };
    const [a] = await renderSamples({ model, clip, vae, settings });
    const [b] = await renderSamples({ model: q, clip, vae, settings });
    let diff = 0;
    for (let i = 0; i < a.rgb.length; i++) diff += Math.abs(a.rgb[i] - b.rgb[i]);
    expect(diff / a.rgb.length).toBeLessThan(4);
    await expect(quantizeNode.execute({ inputs: { model: q }, widgets: quantizeNode.widgets.parse({ unet: 'nf4' }), ctx })).rejects.toThrow(/^unet: this MODEL is already quantised/);
  });
});

describe('Loss Graph and Preview Image nodes', () => {
  it('smooths with a debiased moving average and plots the curve', async () => {
    expect(smoothLoss([1, 1, 1], 0.9)).toEqual([1, 1, 1].map((v) => expect.closeTo(v, 12)));
    const s = smoothLoss([1, 0], 0.5);
    expect(s[1]).toBeCloseTo((0.5 * 0.5 * 1 + 0.5 * 0) / (1 - 0.25), 12);
    const points = Array.from({ length: 50 }, (_, i) => ({ step: i + 1, loss: 0.2 + 0.1 * Math.sin(i) }));
    const r = await lossGraphNode.execute({ inputs: { lossHistory: { points, byteSize: () => 0 } }, widgets: lossGraphNode.widgets.parse({}), ctx });
    const ref = r.ui!.images![0];
    expect(readFileSync(join(ctx.paths.temp, ref.filename)).subarray(1, 4).toString()).toBe('PNG');
    expect((r.ui!.loss as unknown[]).length).toBe(50);
    await expect(lossGraphNode.execute({ inputs: {}, widgets: lossGraphNode.widgets.parse({}), ctx })).rejects.toThrow(/connect a TRAINING or LOSS_HISTORY/);
  });

  it('shows images inline and saves numbered files when asked', async () => {
    const png = readFileSync(join(ctx.paths.temp, (await lossGraphNode.execute({ inputs: { lossHistory: { points: [{ step: 1, loss: 1 }, { step: 2, loss: 0.5 }], byteSize: () => 0 } }, widgets: lossGraphNode.widgets.parse({}), ctx })).ui!.images![0].filename));
    const images = { images: [{ mime: 'image/png' as const, data: new Uint8Array(png), label: 'one' }, { mime: 'image/png' as const, data: new Uint8Array(png) }], byteSize: () => 0 };
    const shown = await previewNode.execute({ inputs: { images }, widgets: previewNode.widgets.parse({}), ctx });
    expect(shown.ui!.images!.map((i) => i.type)).toEqual(['temp', 'temp']);
    const saved = await previewNode.execute({ inputs: { images }, widgets: previewNode.widgets.parse({ save: true, filenamePrefix: 'runs/a' }), ctx });
    expect(saved.ui!.images!.map((i) => `${i.subfolder}/${i.filename}`)).toEqual(['runs/a_00001.png', 'runs/a_00002.png']);
    expect(existsSync(join(ctx.paths.output, 'runs', 'a_00002.png'))).toBe(true);
    await expect(previewNode.execute({ inputs: { images }, widgets: previewNode.widgets.parse({ save: true, filenamePrefix: '../x' }), ctx })).rejects.toThrow(/outside/);
  });
});
