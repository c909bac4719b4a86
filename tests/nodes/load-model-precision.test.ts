// Load Model's precision: auto keeps a small model in fp32; bf16/fp16 store the denoiser's big frozen
// weights in half precision (read from the checkpoint file, written to a scratch file under temp), the
// model samples nearly the same image, and a Quantize node still quantises it.
import { describe, it, expect, beforeAll } from 'vitest';
import sharp from 'sharp';
import loadModelNode from '../../nodes/load-model';
import quantizeNode from '../../nodes/quantize';
import { samplerNode } from '../../nodes/sampler';
import { PrecisionWeights } from '../../kernels/nn/precision';
import { QuantizedWeights } from '../../kernels/quant/graph-weights';
import type { ClipValue, ImagesValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { writeTinyCheckpoint } from './tiny-model';

const { ctx } = nodeContext();
let name: string;
beforeAll(async () => { name = await writeTinyCheckpoint(ctx.paths.models); });
const load = async (precision: string) => {
  const r = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: name, precision }), ctx });
  return { ...(r.outputs as { model: ModelValue; clip: ClipValue; vae: VaeValue }), text: r.ui!.text as string[] };
};
/** The sampled image's RGB bytes (the node hands out PNGs). */
const image = async (m: { model: ModelValue; clip: ClipValue; vae: VaeValue }) => {
  const png = ((await samplerNode.execute({ inputs: m, widgets: samplerNode.widgets.parse({ prompts: 'a red circle', seed: 1, steps: 3 }), ctx })).outputs.images as ImagesValue).images[0].data;
  return new Uint8Array(await sharp(png).removeAlpha().raw().toBuffer());
};

describe('Load Model precision', () => {
  it('auto keeps the tiny model in fp32; bf16 and fp16 narrow its denoiser and sample nearly the same image', async () => {
    const auto = await load('auto');
    expect(loadModelNode.widgets.parse({}).precision).toBe('auto');
    expect(auto.model.denoiser).not.toBeInstanceOf(PrecisionWeights);
    expect(auto.text.join('\n')).not.toContain('frozen weights in');
    const reference = await image(auto);
    for (const precision of ['bf16', 'fp16'] as const) {
      const half = await load(precision);
      expect(half.model.denoiser).toBeInstanceOf(PrecisionWeights);
      expect(half.text).toContain(`frozen weights in ${precision}`);
      expect(half.model.byteSize()).toBe(auto.model.byteSize() / 2);
      const img = await image(half);
      expect(img).not.toEqual(reference); // the weights really changed
      let diff = 0;
      for (let i = 0; i < img.length; i++) diff += Math.abs(img[i] - reference[i]);
      expect(diff / img.length, precision).toBeLessThan(precision === 'bf16' ? 6 : 2); // mean |Δ| in 0…255 levels
      expect((half.model.denoiser as PrecisionWeights).storedBytes).toBeGreaterThan(0);
    }
  });

  it('a Quantize node quantises a bf16 model', async () => {
    const half = await load('bf16');
    const r = await quantizeNode.execute({ inputs: { model: half.model }, widgets: quantizeNode.widgets.parse({ unet: 'int8' }), ctx });
    const q = (r.outputs.model as ModelValue).denoiser as QuantizedWeights;
    expect(q).toBeInstanceOf(QuantizedWeights);
    expect(q.summary().linear.layers).toBeGreaterThan(4);
    const a = await image({ ...half, model: r.outputs.model as ModelValue }), b = await image(half);
    expect(a).toHaveLength(b.length);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
    expect(diff / a.length).toBeLessThan(6); // int8 of the bf16 weights: nearly the bf16 image
  });
});
