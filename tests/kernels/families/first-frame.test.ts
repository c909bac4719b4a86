// I2V first-frame conditioning: the mask matches Wan's construction (written here step by step as the
// official pipeline builds it: flags per pixel frame, frame 0 repeated T times, viewed as [Fl, T],
// transposed), the clip keeps frame 0 only, and the condition through the tiny Wan VAE holds the
// encoding of the blanked clip — whose first latent frame is the first frame's own encoding (causal VAE)
// and whose later frames are the encoding of blank frames, not zeros.
import { afterAll, describe, expect, it } from 'vitest';
import * as K from '../../../kernels';
import { firstFrameClip, firstFrameCondition, firstFrameMask } from '../../../kernels/families/first-frame';
import { WAN_TINY_VAE, wanVaeEncode } from '../../../kernels/wan/vae';
import { tinyWanConfig, wanFamily } from '../../../kernels/wan/family';
import { rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());

/** The official construction, literally: ones(F); [1:] = 0; concat(repeat(frame 0, T), rest); view(Fl, T); transpose. */
function referenceMask(F: number, T: number, h: number, w: number, kept = 1): Float32Array {
  const m = Array.from({ length: F }, (_, f) => (f < kept ? 1 : 0));
  const seq = [...Array(T).fill(m[0]), ...m.slice(1)];
  const Fl = seq.length / T;
  const out = new Float32Array(T * Fl * h * w);
  for (let j = 0; j < Fl; j++) for (let c = 0; c < T; c++) for (let i = 0; i < h * w; i++) out[(c * Fl + j) * h * w + i] = seq[j * T + c];
  return out;
}

describe('first-frame (I2V) conditioning', () => {
  it('mask: [T, latent frames, h, w] as Wan builds it, for image-to-video and longer kept prefixes', () => {
    for (const [F, kept] of [[1, 1], [5, 1], [17, 1], [81, 1], [9, 3], [9, 0]]) {
      expect(Array.from(firstFrameMask(F, 4, 2, 3, kept)), `${F} frames, ${kept} kept`).toEqual(Array.from(referenceMask(F, 4, 2, 3, kept)));
    }
    const m = firstFrameMask(17, 4, 1, 1);
    expect(m.length).toBe(4 * 5);
    // Every channel of latent frame 0 is 1; everything else 0.
    expect(Array.from(m)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect(() => firstFrameMask(16, 4, 1, 1)).toThrow(/16 frames is not 4n\+1/);
  });

  it('clip: frame 0 kept in every channel, the other frames zero (mid-grey in [-1, 1])', () => {
    const [F, H, W] = [5, 2, 3];
    const px = rand(3 * F * H * W);
    const clip = firstFrameClip(px, F, H, W);
    for (let c = 0; c < 3; c++) for (let f = 0; f < F; f++) for (let i = 0; i < H * W; i++) {
      const k = (c * F + f) * H * W + i;
      expect(clip[k]).toBe(f === 0 ? px[k] : 0);
    }
    expect(() => firstFrameClip(px, 4, H, W)).toThrow(/not \[3, 4, 2, 3\]/);
  });

  it('condition through the tiny Wan VAE: mask then image latent; latent frame 0 is the first frame alone', async () => {
    const w = new K.RandomWeights(11, 0.15);
    const [F, H, W] = [9, 16, 16];
    const v = K.input('v', [1, 3, F, H, W]);
    const one = K.input('one', [1, 3, 1, H, W]);
    const s = await runtime().load(K.compileGraph([v, one], {
      clip: wanVaeEncode(new K.Builder(w), WAN_TINY_VAE, v).latents,
      first: wanVaeEncode(new K.Builder(w), WAN_TINY_VAE, one).latents,
    }));
    const px = rand(3 * F * H * W);
    const clip = firstFrameClip(px, F, H, W);
    const frame0 = new Float32Array(3 * H * W);
    for (let c = 0; c < 3; c++) frame0.set(px.subarray(c * F * H * W, c * F * H * W + H * W), c * H * W);
    const r = await s.run({ v: { dtype: 'float32', shape: [1, 3, F, H, W], data: clip }, one: { dtype: 'float32', shape: [1, 3, 1, H, W], data: frame0 } });
    const latent = r.clip.data as Float32Array; // [4, 3, 2, 2]
    const first = r.first.data as Float32Array; // [4, 1, 2, 2]
    const cond = firstFrameCondition(latent, [4, 3, 2, 2], F, 4);
    expect(cond.length).toBe((4 + 4) * 3 * 4);
    expect(Array.from(cond.subarray(0, 4 * 3 * 4))).toEqual(Array.from(firstFrameMask(F, 4, 2, 2)));
    const img = cond.subarray(4 * 3 * 4);
    for (let c = 0; c < 4; c++) for (let i = 0; i < 4; i++) expect(img[(c * 3) * 4 + i]).toBeCloseTo(first[c * 4 + i], 5);
    // Blank frames encode to something: the later latent frames are not zero padding.
    let later = 0;
    for (let c = 0; c < 4; c++) for (let j = 1; j < 3; j++) for (let i = 0; i < 4; i++) later = Math.max(later, Math.abs(img[(c * 3 + j) * 4 + i]));
    expect(later).toBeGreaterThan(1e-4);
    expect(() => firstFrameCondition(latent, [4, 3, 2, 2], 13, 4)).toThrow(/13 frames give 4 latent frames, the latent has 3/);
  });

  it('equals the Wan family\'s in-graph I2V condition (latentConditioning) on the tiny I2V model', async () => {
    const cfg = tinyWanConfig({ i2v: true });
    const w = new K.RandomWeights(12, 0.15);
    const [F, H, W] = [5, 16, 16];
    const px = K.input('px', [1, 3, F, H, W]);
    const clip = K.input('clip', [1, 3, F, H, W]);
    const s = await runtime().load(K.compileGraph([px, clip], {
      family: wanFamily.latentConditioning!(new K.Builder(w), cfg, px).condition,
      latent: wanFamily.vaeEncode(new K.Builder(w), cfg, clip),
    }));
    const pixels = rand(3 * F * H * W);
    const r = await s.run({ px: { dtype: 'float32', shape: [1, 3, F, H, W], data: pixels }, clip: { dtype: 'float32', shape: [1, 3, F, H, W], data: firstFrameClip(pixels, F, H, W) } });
    const C = cfg.vae.zDim;
    const ours = firstFrameCondition(r.latent.data as Float32Array, [C, 2, 2, 2], F, 4);
    const theirs = r.family.data as Float32Array;
    expect(r.family.shape).toEqual([1, 4 + C, 2, 2, 2]);
    expect(Math.max(...theirs.map((v, i) => Math.abs(v - ours[i])))).toBeLessThan(1e-5);
  });
});
