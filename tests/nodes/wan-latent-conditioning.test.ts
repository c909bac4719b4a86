// The trainer's view of Wan I2V's first-frame condition: nodes/models/encoders' latentConditioningEncoder
// runs the family's latentConditioning on one clip and returns [20 → 8 (tiny), F', h, w] by input name;
// families without such inputs get none.
import { describe, it, expect } from 'vitest';
import * as K from '../../kernels';
import { latentConditioningEncoder } from '../../nodes/models/encoders';
import { tinyWanConfig, wanFamily } from '../../kernels/wan/family';
import { Rng } from '../../kernels/random';

describe('latent conditioning encoder', () => {
  it('tiny Wan I2V: a 9-frame 32×32 clip gives condition [8, 3, 4, 4], mask first; T2V has none', async () => {
    const cfg = tinyWanConfig({ i2v: true });
    const enc = latentConditioningEncoder(wanFamily, cfg, new K.RandomWeights(6, 0.08), 'tiny')!;
    expect(enc.names).toEqual(['condition']);
    const data = new Rng(1).fillNormal(new Float32Array(3 * 9 * 32 * 32)).map((v) => Math.tanh(v));
    const { condition } = await enc.encode({ dims: [1, 3, 9, 32, 32], data });
    expect(condition.dims).toEqual([8, 3, 4, 4]);
    expect(Array.from(condition.data.slice(0, 16))).toEqual(Array(16).fill(1)); // mask channel 0, first latent frame
    expect(Array.from(condition.data.slice(16, 48))).toEqual(Array(32).fill(0)); // later latent frames
    // Later frames of the clip do not change it: only the first frame is encoded.
    const other = data.map((v, i) => (i % (9 * 1024) < 1024 ? v : -v));
    const again = await enc.encode({ dims: [1, 3, 9, 32, 32], data: other });
    expect(Array.from(again.condition.data)).toEqual(Array.from(condition.data));
    expect(latentConditioningEncoder(wanFamily, tinyWanConfig(), new K.RandomWeights(6, 0.08), 'tiny')).toBeUndefined();
  });
});
