// Wan's causal 3D convolution against a direct JS convolution, its gradient against finite
// differences, and the tiny Wan 2.1-style VAE: the chunked causal encode (first frame, then chunks of 4
// with carried caches) gives the same latents as the whole clip at once, and a later frame never changes
// an earlier latent frame (causality).
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { conv3d, causalConv3d } from '../../../kernels/wan/causal-conv';
import { WAN21_VAE, WAN_TINY_VAE, checkClipFrames, wanVaeDecode, wanVaeEncode } from '../../../kernels/wan/vae';
import { gradCheck, rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());
const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

/** Direct Conv3d with front-only time padding (pf) and symmetric spatial padding (p), time stride st. */
function refConv3d(x: Float32Array, xs: number[], w: Float32Array, ws: number[], pf: number, p: number, st: number) {
  const [n, c, t, h, wd] = xs;
  const [o, , kt, kh, kw] = ws;
  const to = Math.floor((t + pf - kt) / st) + 1, ho = h + 2 * p - kh + 1, wo = wd + 2 * p - kw + 1;
  const y = new Float32Array(n * o * to * ho * wo);
  for (let b = 0; b < n; b++) for (let oc = 0; oc < o; oc++) for (let ti = 0; ti < to; ti++) for (let yi = 0; yi < ho; yi++) for (let xi = 0; xi < wo; xi++) {
    let s = 0;
    for (let ic = 0; ic < c; ic++) for (let a = 0; a < kt; a++) for (let r = 0; r < kh; r++) for (let q = 0; q < kw; q++) {
      const tt = ti * st + a - pf, yy = yi + r - p, xx = xi + q - p;
      if (tt < 0 || tt >= t || yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
      s += x[(((b * c + ic) * t + tt) * h + yy) * wd + xx] * w[(((oc * c + ic) * kt + a) * kh + r) * kw + q];
    }
    y[(((b * o + oc) * to + ti) * ho + yi) * wo + xi] = s;
  }
  return y;
}

describe('causal 3D convolution', () => {
  for (const [pf, p, st, kt] of [[2, 1, 1, 3], [0, 0, 2, 3], [0, 1, 1, 1]] as const) {
    it(`equals a direct Conv3d (front pad ${pf}, spatial pad ${p}, time stride ${st}, kernel ${kt}×3×3)`, async () => {
      const xs = [2, 3, 5, 4, 5], ws = [4, 3, kt, 3, 3];
      const x = K.input('x', xs), w = K.input('w', ws);
      const y = conv3d(x, w, undefined, { timePadFront: pf, spatialPadding: [p, p], timeStride: st });
      const xd = rand(2 * 3 * 5 * 4 * 5), wdat = rand(4 * 3 * kt * 9);
      const got = (await (await runtime().load(K.compileGraph([x, w], { y }))).run({ x: f32(xs, xd), w: f32(ws, wdat) })).y.data as Float32Array;
      const want = refConv3d(xd, xs, wdat, ws, pf, p, st);
      expect(got.length).toBe(want.length);
      expect(Math.max(...got.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-5);
    });
  }

  it('gradient w.r.t. input, weight and bias matches finite differences', async () => {
    const err = await gradCheck((x, w, bias) => causalConv3d(x, w, bias, [1, 1, 1]), [{ shape: [1, 2, 3, 3, 3] }, { shape: [2, 2, 3, 3, 3] }, { shape: [2] }]);
    expect(err).toBeLessThan(1e-2);
  });

  it('gradient through the stride-2 temporal conv', async () => {
    const err = await gradCheck((x, w) => conv3d(x, w, undefined, { timeStride: 2 }), [{ shape: [1, 2, 5, 2, 2] }, { shape: [2, 2, 3, 1, 1] }]);
    expect(err).toBeLessThan(1e-2);
  });
});

describe('Wan VAE encoder', () => {
  it('full size: 4n+1 frames → n+1 latent frames, ×8 space, 16 channels; key names and shapes of wan_2.1_vae', () => {
    const rec = new K.ShapeRecorder();
    const enc = wanVaeEncode(new K.Builder(rec), WAN21_VAE, K.input('v', [1, 3, 5, 16, 16]), { chunked: false });
    expect(enc.latents.shape).toEqual([1, 16, 2, 2, 2]);
    expect(rec.shapes.get('encoder.conv1.weight')).toEqual([96, 3, 3, 3, 3]);
    expect(rec.shapes.get('encoder.downsamples.0.residual.0.gamma')).toEqual([96, 1, 1, 1]);
    expect(rec.shapes.get('encoder.downsamples.2.resample.1.weight')).toEqual([96, 96, 3, 3]);
    expect(rec.shapes.has('encoder.downsamples.2.time_conv.weight')).toBe(false);
    expect(rec.shapes.get('encoder.downsamples.3.shortcut.weight')).toEqual([192, 96, 1, 1, 1]);
    expect(rec.shapes.get('encoder.downsamples.5.time_conv.weight')).toEqual([192, 192, 3, 1, 1]);
    expect(rec.shapes.get('encoder.downsamples.8.time_conv.weight')).toEqual([384, 384, 3, 1, 1]);
    expect(rec.shapes.get('encoder.downsamples.10.residual.6.weight')).toEqual([384, 384, 3, 3, 3]);
    expect(rec.shapes.has('encoder.downsamples.11.residual.0.gamma')).toBe(false);
    expect(rec.shapes.get('encoder.middle.1.to_qkv.weight')).toEqual([1152, 384, 1, 1]);
    expect(rec.shapes.get('encoder.middle.1.norm.gamma')).toEqual([384, 1, 1]);
    expect(rec.shapes.get('encoder.head.2.weight')).toEqual([32, 384, 3, 3, 3]);
    expect(rec.shapes.get('conv1.weight')).toEqual([32, 32, 1, 1, 1]);
    expect(checkClipFrames(WAN21_VAE, 81)).toBe(21);
    expect(() => checkClipFrames(WAN21_VAE, 80)).toThrow(/4n\+1/);
  });

  it('tiny: chunked causal encode (first frame, then chunks of 4) equals the whole-clip encode; later frames never reach earlier latents', async () => {
    const w = new K.RandomWeights(5, 0.15);
    const shape = [1, 3, 9, 16, 16];
    const v = K.input('v', shape);
    const whole = wanVaeEncode(new K.Builder(w), WAN_TINY_VAE, v, { chunked: false }).latents;
    const chunked = wanVaeEncode(new K.Builder(w), WAN_TINY_VAE, v).latents;
    expect(whole.shape).toEqual([1, 4, 3, 2, 2]);
    const s = await runtime().load(K.compileGraph([v], { whole, chunked }));
    const data = rand(3 * 9 * 256);
    const r = await s.run({ v: f32(shape, data) });
    const a = r.whole.data as Float32Array, b = r.chunked.data as Float32Array;
    const mag = Math.max(...a.map(Math.abs));
    expect(mag).toBeGreaterThan(1e-3);
    expect(Math.max(...a.map((x, i) => Math.abs(x - b[i])))).toBeLessThan(1e-5 * Math.max(1, mag));
    // Change only the last 4 frames: latent frames 0 and 1 stay, frame 2 changes.
    const later = data.slice(); for (let i = 5 * 256; i < 9 * 256; i++) for (let c = 0; c < 3; c++) later[c * 9 * 256 + i] += 0.5;
    const r2 = (await s.run({ v: f32(shape, later) })).chunked.data as Float32Array;
    const frameDiff = (f: number) => { let d = 0; for (let c = 0; c < 4; c++) for (let i = 0; i < 4; i++) { const k = (c * 3 + f) * 4 + i; d = Math.max(d, Math.abs(r2[k] - b[k])); } return d; };
    expect(frameDiff(0)).toBe(0);
    expect(frameDiff(1)).toBe(0);
    expect(frameDiff(2)).toBeGreaterThan(1e-4);
  });
});

describe('Wan VAE decoder', () => {
  it('full size: names and shapes of wan_2.1_vae\'s decoder (channels halved by each resample)', () => {
    const rec = new K.ShapeRecorder();
    const y = wanVaeDecode(new K.Builder(rec), WAN21_VAE, K.input('z', [1, 16, 2, 2, 2]));
    expect(y.shape).toEqual([1, 3, 5, 16, 16]);
    expect(rec.shapes.get('conv2.weight')).toEqual([16, 16, 1, 1, 1]);
    expect(rec.shapes.get('decoder.conv1.weight')).toEqual([384, 16, 3, 3, 3]);
    expect(rec.shapes.get('decoder.upsamples.3.time_conv.weight')).toEqual([768, 384, 3, 1, 1]);
    expect(rec.shapes.get('decoder.upsamples.3.resample.1.weight')).toEqual([192, 384, 3, 3]);
    expect(rec.shapes.get('decoder.upsamples.4.shortcut.weight')).toEqual([384, 192, 1, 1, 1]);
    expect(rec.shapes.get('decoder.upsamples.11.resample.1.weight')).toEqual([96, 192, 3, 3]);
    expect(rec.shapes.has('decoder.upsamples.11.time_conv.weight')).toBe(false);
    expect(rec.shapes.get('decoder.upsamples.12.residual.2.weight')).toEqual([96, 96, 3, 3, 3]);
    expect(rec.shapes.get('decoder.head.2.weight')).toEqual([3, 96, 3, 3, 3]);
  });

  it('tiny: 3 latent frames → 9 frames at 8× the size; the first frame depends on the first latent frame only', async () => {
    const w = new K.RandomWeights(6, 0.15);
    const z = K.input('z', [1, 4, 3, 2, 2]);
    const y = wanVaeDecode(new K.Builder(w), WAN_TINY_VAE, z);
    expect(y.shape).toEqual([1, 3, 9, 16, 16]);
    const s = await runtime().load(K.compileGraph([z], { y }));
    const data = rand(4 * 3 * 4);
    const a = (await s.run({ z: f32([1, 4, 3, 2, 2], data) })).y.data as Float32Array;
    const later = data.slice(); for (let c = 0; c < 4; c++) for (let i = 4; i < 12; i++) later[c * 12 + i] += 0.5;
    const b = (await s.run({ z: f32([1, 4, 3, 2, 2], later) })).y.data as Float32Array;
    const frameDiff = (f: number) => { let d = 0; for (let c = 0; c < 3; c++) for (let i = 0; i < 256; i++) { const k = (c * 9 + f) * 256 + i; d = Math.max(d, Math.abs(a[k] - b[k])); } return d; };
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(1e-3);
    expect(frameDiff(0)).toBe(0);
    expect(frameDiff(1)).toBeGreaterThan(1e-5);
  });
});
