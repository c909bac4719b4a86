// Wan 2.1 I2V's image encoder as a part of the family, without weights: ViT-H/14 under the VAE value's
// clip_vision. scope with every tensor of ComfyUI's clip_vision_h.safetensors (632.08 M parameters), and
// the tiny 2.1 I2V's tower on the same 257-token grid; other Wan variants have no such part. 2.1 FLF2V
// has the same tower, run on the first and the last frame: its denoiser takes 2 × 257 tokens.
import { describe, expect, it } from 'vitest';
import * as K from '../../../kernels';
import { CLIP_VISION_SCOPE, tinyWan21I2vConfig, WAN21_FLF2V_14B_FAMILY, WAN21_I2V_14B_FAMILY, WAN22_I2V_A14B_FAMILY, wanFamily, type WanFamilyConfig } from '../../../kernels/wan/family';
import { clipVisionKeys } from '../../../kernels/vision/clip-vision-keys';
import { defaultSampleShift } from '../../../kernels/wan/sampling';

const traced = (c: WanFamilyConfig) => {
  const rec = new K.ShapeRecorder();
  wanFamily.parts(c).find((p) => p.id === 'clip_vision')!.trace(new K.Builder(rec));
  return rec.shapes;
};

describe('Wan 2.1 I2V\'s clip_vision part', () => {
  it('is ViT-H/14 under clip_vision.: 32 × 16 layer tensors and 8 more, 632.08 M parameters', () => {
    const shapes = traced(WAN21_I2V_14B_FAMILY);
    const names = [...shapes.keys()];
    expect(names.every((k) => k.startsWith(`${CLIP_VISION_SCOPE}.`))).toBe(true);
    expect(new Set(names.map((k) => k.slice(CLIP_VISION_SCOPE.length + 1)))).toEqual(new Set(clipVisionKeys('transformers', 32)));
    expect(names.length).toBe(32 * 16 + 8);
    let n = 0; for (const s of shapes.values()) n += s.reduce((a, b) => a * b, 1);
    expect(n).toBe(632_076_800);
  });

  it('the tiny 2.1 I2V has a 16-wide tower on the 257-token grid; 2.2 I2V A14B has no CLIP vision part', () => {
    const tiny = tinyWan21I2vConfig();
    expect(traced(tiny).get('clip_vision.vision_model.embeddings.position_embedding.weight')).toEqual([257, 16]);
    expect(tiny.transformer.clipImageDim).toBe(16);
    expect(wanFamily.parts(WAN22_I2V_A14B_FAMILY).map((p) => p.id)).not.toContain('clip_vision');
    expect(wanFamily.conditioning(tiny, [4, 3, 8, 8]).map((c) => [c.name, c.shape])).toEqual([
      ['context', [64, 32]], ['condition', [8, 3, 8, 8]], ['clip', [257, 16]],
    ]);
  });

  it('2.1 FLF2V 14B: the same tower; CLIP features of both frames [2 × 257, 1280], 16,395,536,704 denoiser parameters, shift 16', () => {
    expect(traced(WAN21_FLF2V_14B_FAMILY).size).toBe(32 * 16 + 8);
    expect(wanFamily.conditioning(WAN21_FLF2V_14B_FAMILY, [16, 21, 90, 160]).map((c) => [c.name, c.shape])).toEqual([
      ['context', [512, 4096]], ['condition', [20, 21, 90, 160]], ['clip', [514, 1280]],
    ]);
    const cond = wanFamily.latentConditioning!(new K.Builder(new K.ShapeRecorder()), WAN21_FLF2V_14B_FAMILY, K.input('px', [2, 3, 9, 64, 64]));
    expect(cond.clip.shape).toEqual([2, 514, 1280]);
    expect(cond.condition.shape).toEqual([2, 20, 3, 8, 8]);
    const rec = new K.ShapeRecorder();
    wanFamily.parts(WAN21_FLF2V_14B_FAMILY).find((p) => p.role === 'denoiser')!.trace(new K.Builder(rec));
    let n = 0; for (const s of rec.shapes.values()) n += s.reduce((a, b) => a * b, 1);
    expect(n).toBe(16_395_536_704);
    expect(defaultSampleShift(WAN21_FLF2V_14B_FAMILY.transformer)).toBe(16);
  });
});
