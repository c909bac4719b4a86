// Full-size FLUX transformers named and counted without allocating weights.
import { describe, it, expect } from 'vitest';
import { FLUX1_DEV, FLUX1_SCHNELL, FLUX2_DEV, FLUX2_KLEIN_4B, FLUX2_KLEIN_9B } from '../../../kernels/flux/config';
import { fluxTransformerShapes } from '../../../kernels/flux/shapes';

describe('full-size FLUX transformer shapes', () => {
  it('klein 9B: 201 tensors, 9.079 B parameters, no biases, shared modulation', () => {
    const s = fluxTransformerShapes(FLUX2_KLEIN_9B);
    expect(s.tensors.size).toBe(201);
    expect(s.parameterCount).toBe(9_078_581_248);
    expect([...s.tensors.keys()].some((k) => k.endsWith('.bias'))).toBe(false);
    expect(s.tensors.get('double_stream_modulation_img.lin.weight')).toEqual([6 * 4096, 4096]);
    expect(s.tensors.get('single_stream_modulation.lin.weight')).toEqual([3 * 4096, 4096]);
    expect(s.tensors.get('txt_in.weight')).toEqual([4096, 12288]);
    expect(s.tensors.get('img_in.weight')).toEqual([4096, 128]);
    expect(s.tensors.get('double_blocks.7.img_mlp.0.weight')).toEqual([6 * 4096, 4096]);
    expect(s.tensors.get('double_blocks.7.txt_mlp.2.weight')).toEqual([4096, 3 * 4096]);
    expect(s.tensors.get('single_blocks.23.linear1.weight')).toEqual([9 * 4096, 4096]);
    expect(s.tensors.get('single_blocks.23.linear2.weight')).toEqual([4096, 4 * 4096]);
    expect(s.tensors.get('single_blocks.0.norm.query_norm.scale')).toEqual([128]);
    expect(s.tensors.get('final_layer.adaLN_modulation.1.weight')).toEqual([2 * 4096, 4096]);
    expect(s.tensors.get('final_layer.linear.weight')).toEqual([128, 4096]);
    expect(s.tensors.has('double_blocks.0.img_mod.lin.weight')).toBe(false);
    expect(s.tensors.has('guidance_in.in_layer.weight')).toBe(false);
  });

  it('klein 4B: 3.876 B parameters', () => {
    const s = fluxTransformerShapes(FLUX2_KLEIN_4B);
    expect(s.parameterCount).toBe(3_875_544_576);
    expect(s.tensors.size).toBe(9 + 5 * 12 + 20 * 4);
    expect(s.tensors.get('txt_in.weight')).toEqual([3072, 7680]);
  });

  it('FLUX.2 dev: guidance embedding and Mistral-width text features', () => {
    const s = fluxTransformerShapes(FLUX2_DEV);
    expect(s.tensors.get('guidance_in.in_layer.weight')).toEqual([6144, 256]);
    expect(s.tensors.get('txt_in.weight')).toEqual([6144, 15360]);
    expect(s.tensors.get('single_blocks.47.linear1.weight')).toEqual([55296, 6144]);
    expect(s.tensors.get('double_blocks.0.txt_mlp.0.weight')).toEqual([36864, 6144]);
    expect(s.tensors.size).toBe(201 - 24 * 4 + 48 * 4 + 2);
  });

  it('FLUX.1 dev: 11.90 B parameters with per-block modulation and biases; schnell has no guidance_in', () => {
    const s = fluxTransformerShapes(FLUX1_DEV);
    expect(s.parameterCount).toBe(11_901_408_320);
    expect(s.tensors.get('double_blocks.18.img_mod.lin.weight')).toEqual([18432, 3072]);
    expect(s.tensors.get('double_blocks.18.img_mod.lin.bias')).toEqual([18432]);
    expect(s.tensors.get('single_blocks.37.linear1.weight')).toEqual([21504, 3072]);
    expect(s.tensors.get('single_blocks.37.linear2.weight')).toEqual([3072, 15360]);
    expect(s.tensors.get('single_blocks.37.modulation.lin.weight')).toEqual([9216, 3072]);
    expect(s.tensors.get('vector_in.in_layer.weight')).toEqual([3072, 768]);
    expect(s.tensors.get('img_in.weight')).toEqual([3072, 64]);
    expect(s.tensors.get('guidance_in.out_layer.bias')).toEqual([3072]);
    const schnell = fluxTransformerShapes(FLUX1_SCHNELL);
    expect(s.parameterCount - schnell.parameterCount).toBe(256 * 3072 + 3072 + 3072 * 3072 + 3072);
  });
});
