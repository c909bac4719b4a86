// The Wan 2.2 VAE (TI2V-5B's: 48 channels, ×16 space, ×4 time) and chunked decoding of both Wan VAEs:
// full-size names and shapes of wan2.2_vae without weights; the averaging / duplicating shortcuts and
// the 2×2 pixel folding against direct loops; on tiny configs the chunked encode (first frame, then
// chunks of 4) and the chunked decode (one latent frame at a time with causal caches) equal the
// whole-clip passes — and decoding frames without the carried caches does not.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { WAN_TINY_VAE, wanVaeDecode, wanVaeEncode } from '../../../kernels/wan/vae';
import {
  WAN22_TINY_VAE, WAN22_VAE, averageDown, duplicateUp, patchifyPixels, unpatchifyPixels, wan22VaeDecode, wan22VaeEncode,
} from '../../../kernels/wan/vae22';
import { rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());
const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function run(inputs: K.Tensor[], outputs: Record<string, K.Tensor>, feeds: Record<string, K.HostTensor>): Promise<Record<string, Float32Array>> {
  const s = await runtime().load(K.compileGraph(inputs, outputs));
  const r = await s.run(feeds);
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
}

describe('Wan 2.2 VAE, full size (no weights)', () => {
  it('names and shapes of wan2.2_vae: 12-channel patched input, nested down/up blocks, 48 latent channels, decoder width 256', () => {
    const rec = new K.ShapeRecorder();
    const b = new K.Builder(rec);
    const enc = wan22VaeEncode(b, WAN22_VAE, K.input('v', [1, 3, 5, 32, 32]), { chunked: false });
    expect(enc.latents.shape).toEqual([1, 48, 2, 2, 2]);
    const dec = wan22VaeDecode(b, WAN22_VAE, K.input('z', [1, 48, 2, 1, 1]));
    expect(dec.shape).toEqual([1, 3, 5, 16, 16]);
    const s = rec.shapes;
    expect(s.get('encoder.conv1.weight')).toEqual([160, 12, 3, 3, 3]);
    expect(s.get('encoder.downsamples.0.downsamples.0.residual.0.gamma')).toEqual([160, 1, 1, 1]);
    expect(s.get('encoder.downsamples.1.downsamples.0.shortcut.weight')).toEqual([320, 160, 1, 1, 1]);
    expect(s.get('encoder.downsamples.0.downsamples.2.resample.1.weight')).toEqual([160, 160, 3, 3]);
    expect(s.has('encoder.downsamples.0.downsamples.2.time_conv.weight')).toBe(false);
    expect(s.get('encoder.downsamples.1.downsamples.2.time_conv.weight')).toEqual([320, 320, 3, 1, 1]);
    expect(s.has('encoder.downsamples.3.downsamples.2.resample.1.weight')).toBe(false);
    expect(s.get('encoder.head.2.weight')).toEqual([96, 640, 3, 3, 3]);
    expect(s.get('conv1.weight')).toEqual([96, 96, 1, 1, 1]);
    expect(s.get('conv2.weight')).toEqual([48, 48, 1, 1, 1]);
    expect(s.get('decoder.conv1.weight')).toEqual([1024, 48, 3, 3, 3]);
    expect(s.get('decoder.middle.1.to_qkv.weight')).toEqual([3072, 1024, 1, 1]);
    expect(s.get('decoder.upsamples.0.upsamples.3.time_conv.weight')).toEqual([2048, 1024, 3, 1, 1]);
    expect(s.get('decoder.upsamples.0.upsamples.3.resample.1.weight')).toEqual([1024, 1024, 3, 3]);
    expect(s.get('decoder.upsamples.2.upsamples.0.shortcut.weight')).toEqual([512, 1024, 1, 1, 1]);
    expect(s.get('decoder.upsamples.2.upsamples.3.resample.1.weight')).toEqual([512, 512, 3, 3]);
    expect(s.has('decoder.upsamples.2.upsamples.3.time_conv.weight')).toBe(false);
    expect(s.has('decoder.upsamples.3.upsamples.3.resample.1.weight')).toBe(false);
    expect(s.get('decoder.head.2.weight')).toEqual([12, 256, 3, 3, 3]);
  });
});

describe('Wan 2.2 VAE pieces against direct loops', () => {
  it('2×2 pixel folding: channel c·4 + colOffset·2 + rowOffset, and back', async () => {
    const shape = [1, 3, 2, 4, 6];
    const x = K.input('x', shape);
    const data = rand(shape.reduce((a, b) => a * b, 1));
    const r = await run([x], { p: patchifyPixels(x, 2), back: unpatchifyPixels(patchifyPixels(x, 2), 2) }, { x: f32(shape, data) });
    expect(maxDiff(r.back, data)).toBe(0);
    // p[0, c·4 + r·2 + q, f, i, j] = x[0, c, f, 2i + q, 2j + r]
    for (const [c, rr, q, f, i, j] of [[0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 2], [2, 0, 1, 0, 1, 1], [2, 1, 1, 1, 0, 2]]) {
      expect(r.p[(((c * 4 + rr * 2 + q) * 2 + f) * 2 + i) * 3 + j]).toBe(data[((c * 2 + f) * 4 + 2 * i + q) * 6 + 2 * j + rr]);
    }
  });

  it('averaging shortcut: frames padded in front to pairs, each (2, 2, 2) block of a channel joined to its group and averaged', async () => {
    const [c, t, h, w, cout] = [2, 3, 2, 4, 4];
    const x = K.input('x', [1, c, t, h, w]);
    const data = rand(c * t * h * w);
    const got = (await run([x], { y: averageDown(x, cout, 2, 2) }, { x: f32([1, c, t, h, w], data) })).y;
    // Direct: padded frames tp = t + 1 (one zero frame in front); flat channel k = ci·8 + (dt·4 + dh·2 + dw); out o averages k in [o·g, (o+1)·g).
    const g = (c * 8) / cout, T = (t + 1) / 2;
    const at = (ci: number, tt: number, y: number, xx: number) => (tt === 0 ? 0 : data[((ci * t + tt - 1) * h + y) * w + xx]);
    for (let o = 0; o < cout; o++) for (let ti = 0; ti < T; ti++) for (let yi = 0; yi < h / 2; yi++) for (let xi = 0; xi < w / 2; xi++) {
      let s = 0;
      for (let k = o * g; k < (o + 1) * g; k++) {
        const ci = Math.floor(k / 8), r = k % 8, dt = r >> 2, dh = (r >> 1) & 1, dw = r & 1;
        s += at(ci, 2 * ti + dt, 2 * yi + dh, 2 * xi + dw);
      }
      expect(got[((o * T + ti) * (h / 2) + yi) * (w / 2) + xi]).toBeCloseTo(s / g, 6);
    }
  });

  it('duplicating shortcut: each channel repeated into (2, 2, 2) blocks; the first chunk drops its first frame', async () => {
    const [c, t, h, w, cout] = [4, 2, 1, 2, 2];
    const x = K.input('x', [1, c, t, h, w]);
    const data = rand(c * t * h * w);
    const r = await run([x], { y: duplicateUp(x, cout, 2, 2, false), first: duplicateUp(x, cout, 2, 2, true) }, { x: f32([1, c, t, h, w], data) });
    const reps = (cout * 8) / c;
    const T = 2 * t, H = 2 * h, W = 2 * w;
    for (let o = 0; o < cout; o++) for (let tt = 0; tt < T; tt++) for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
      const k = o * 8 + (tt % 2) * 4 + (y % 2) * 2 + (xx % 2); // flat repeated channel
      const want = data[((Math.floor(k / reps) * t + (tt >> 1)) * h + (y >> 1)) * w + (xx >> 1)];
      expect(r.y[((o * T + tt) * H + y) * W + xx]).toBe(want);
      if (tt > 0) expect(r.first[((o * (T - 1) + tt - 1) * H + y) * W + xx]).toBe(want);
    }
  });
});

describe.each([
  ['2.1', WAN_TINY_VAE, 8, wanVaeEncode, wanVaeDecode],
  ['2.2', WAN22_TINY_VAE, 16, wan22VaeEncode, wan22VaeDecode],
] as const)('tiny Wan %s VAE: chunked passes equal whole-clip passes', (_v, cfg, s, encode, decode) => {
  const weights = new K.RandomWeights(7, 0.2);

  it('encode: first frame, then chunks of 4 with carried caches = the whole clip at once', async () => {
    const shape = [1, 3, 9, 2 * s, 2 * s];
    const v = K.input('v', shape);
    const b = new K.Builder(weights);
    const r = await run([v], { chunked: encode(b, cfg, v).latents, whole: encode(b, cfg, v, { chunked: false }).latents }, { v: f32(shape, rand(shape.reduce((a, x) => a * x, 1))) });
    expect(r.chunked.length).toBe(cfg.zDim * 3 * 2 * 2);
    expect(maxAbs(r.whole)).toBeGreaterThan(1e-3);
    expect(maxDiff(r.chunked, r.whole)).toBeLessThan(1e-4 * Math.max(1, maxAbs(r.whole)));
  });

  it('decode: one latent frame at a time with causal caches = the whole clip; frames decoded without the caches differ', async () => {
    const shape = [1, cfg.zDim, 3, 2, 2];
    const z = K.input('z', shape);
    const b = new K.Builder(weights);
    const perFrame = [0, 1, 2].map((i) => decode(b, cfg, K.slice(z, [i], [i + 1], [2]), { chunked: true }));
    const r = await run([z], { chunked: decode(b, cfg, z, { chunked: true }), whole: decode(b, cfg, z), f0: perFrame[0], f1: perFrame[1] }, { z: f32(shape, rand(shape.reduce((a, x) => a * x, 1))) });
    const plane = (2 * s) * (2 * s);
    // Frame t of a [1, 3, T, H, W] video (channel-major).
    const frameOf = (v: Float32Array, frames: number, t: number) => Float32Array.from({ length: 3 * plane }, (_, i) => v[(Math.floor(i / plane) * frames + t) * plane + (i % plane)]);
    expect(r.whole.length).toBe(9 * 3 * plane);
    expect(maxAbs(r.whole)).toBeGreaterThan(1e-3);
    expect(maxDiff(r.chunked, r.whole)).toBeLessThan(1e-4 * Math.max(1, maxAbs(r.whole)));
    // The first latent frame alone gives the clip's first frame; later frames need what came before.
    expect(maxDiff(r.f0, frameOf(r.whole, 9, 0))).toBeLessThan(1e-4 * Math.max(1, maxAbs(r.whole)));
    expect(maxDiff(r.f1, frameOf(r.whole, 9, 1))).toBeGreaterThan(1e-3);
  });
});
