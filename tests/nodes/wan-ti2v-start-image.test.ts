// Wan 2.2 TI2V-5B takes its first frame as an optional input (zeros = text to video), so its previews need
// no start image, while an image-to-video model whose first frame is required is still refused without one.
import { describe, expect, it } from 'vitest';
import { tinyWanConfig, wanFamily, WAN22_TI2V_5B_FAMILY } from '../../kernels/wan/family';
import { isImageToVideo, requireStartImage } from '../../nodes/sampling/start-image';
import type { ModelValue } from '../../nodes/sockets';

const model = (config: unknown) => ({ kind: 'model', family: wanFamily, config, source: { path: '/nowhere/model.safetensors', label: 'test model' } }) as unknown as ModelValue;

describe('start image rule for TI2V', () => {
  it('TI2V takes a start image and samples without one; a required first frame (2.2 I2V A14B-style) is still refused', () => {
    for (const c of [WAN22_TI2V_5B_FAMILY, tinyWanConfig({ ti2v: true })]) {
      expect(isImageToVideo(model(c))).toBe(true);
      expect(() => requireStartImage(model(c))).not.toThrow();
    }
    expect(() => requireStartImage(model(tinyWanConfig({ i2v: true })))).toThrow(/test model is an image-to-video model and samples from a first frame/);
    expect(isImageToVideo(model(tinyWanConfig()))).toBe(false);
  });
});
