// FLUX VAE latent formats: 2×2 patchify order, FLUX.2's BatchNorm-statistics normalisation (values,
// inverse, gradients), the full-size FLUX.2 VAE's names and shapes without weights, and the tiny VAE
// end to end from image to transformer tokens and back.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { vaeDecode, vaeEncode } from '../../../kernels/sd/vae';
import { vaeToLdm } from '../../../kernels/sd/keys/single-file';
import { FLUX2_BN_EPS, FLUX2_TINY_VAE, FLUX2_VAE, flux1LatentsToTokens, flux1TokensToLatents, flux2LatentsToTokens, flux2TokensToLatents, patchify2x2, unpatchify2x2 } from '../../../kernels/flux/vae';
import { gradCheck, rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());

const f32 = (shape: number[], data: Float32Array) => ({ dtype: 'float32' as const, shape, data });
async function run(f: (...xs: K.Tensor[]) => K.Tensor, values: { shape: number[]; data: Float32Array }[]) {
  const xs = values.map((v, i) => K.input(`x${i}`, v.shape));
  const s = await runtime().load(K.compileGraph(xs, { y: f(...xs) }));
  return (await s.run(Object.fromEntries(values.map((v, i) => [`x${i}`, f32(v.shape, v.data)])))).y.data as Float32Array;
}

describe('FLUX latent formats', () => {
  it('2×2 patchify: channel c·4 + 2·pi + pj of patch (i, j) is pixel (2i + pi, 2j + pj) of channel c; unpatchify inverts', async () => {
    const z = Float32Array.from({ length: 2 * 4 * 6 }, (_, i) => i);
    const p = await run((x) => patchify2x2(x), [{ shape: [1, 2, 4, 6], data: z }]);
    for (let c = 0; c < 2; c++) for (let pi = 0; pi < 2; pi++) for (let pj = 0; pj < 2; pj++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
      expect(p[((c * 4 + 2 * pi + pj) * 2 + i) * 3 + j]).toBe(z[(c * 4 + 2 * i + pi) * 6 + 2 * j + pj]);
    }
    expect(await run((x) => unpatchify2x2(patchify2x2(x)), [{ shape: [1, 2, 4, 6], data: z }])).toEqual(z);
  });

  it('FLUX.2: tokens are (patch − running_mean) / sqrt(running_var + 1e-4), and the inverse restores the latents', async () => {
    const z = rand(2 * 32 * 4 * 4, 2), mean = rand(128), variance = rand(128).map((v) => Math.abs(v) + 0.2);
    const tok = await run((x, m, v) => flux2LatentsToTokens(x, { mean: m, variance: v }), [{ shape: [2, 32, 4, 4], data: z }, { shape: [128], data: mean }, { shape: [128], data: variance }]);
    const p = await run((x) => patchify2x2(x), [{ shape: [2, 32, 4, 4], data: z }]);
    // token t of sample b, channel c = patch value at (c, t)
    for (const [b, t, c] of [[0, 0, 0], [1, 3, 127], [1, 2, 77]]) {
      expect(tok[(b * 4 + t) * 128 + c]).toBeCloseTo((p[(b * 128 + c) * 4 + t] - mean[c]) / Math.sqrt(variance[c] + FLUX2_BN_EPS), 4);
    }
    const back = await run((x, m, v) => flux2TokensToLatents(flux2LatentsToTokens(x, { mean: m, variance: v }), 2, 2, { mean: m, variance: v }),
      [{ shape: [2, 32, 4, 4], data: z }, { shape: [128], data: mean }, { shape: [128], data: variance }]);
    back.forEach((v, i) => expect(v).toBeCloseTo(z[i], 4));
  });

  it('FLUX.2 BatchNorm latent normalisation: gradients w.r.t. latents, mean and variance', async () => {
    const err = await gradCheck((x, m, v) => flux2LatentsToTokens(x, { mean: m, variance: v }),
      [{ shape: [1, 2, 2, 4] }, { shape: [8] }, { shape: [8], data: rand(8).map((v) => Math.abs(v) + 0.5) }]);
    expect(err).toBeLessThan(2e-2);
    expect(await gradCheck((t, m, v) => flux2TokensToLatents(t, 1, 2, { mean: m, variance: v }),
      [{ shape: [1, 2, 8] }, { shape: [8] }, { shape: [8], data: rand(8).map((v) => Math.abs(v) + 0.5) }])).toBeLessThan(2e-2);
  });

  it('FLUX.1: (z − 0.1159)·0.3611 packed into 64-channel tokens, and back', async () => {
    const z = rand(16 * 2 * 2);
    const tok = await run((x) => flux1LatentsToTokens(x), [{ shape: [1, 16, 2, 2], data: z }]);
    expect(tok[0]).toBeCloseTo((z[0] - 0.1159) * 0.3611, 5);
    expect(tok[4]).toBeCloseTo((z[4] - 0.1159) * 0.3611, 5); // channel 1, pixel (0, 0)
    const back = await run((x) => flux1TokensToLatents(flux1LatentsToTokens(x), 1, 1), [{ shape: [1, 16, 2, 2], data: z }]);
    back.forEach((v, i) => expect(v).toBeCloseTo(z[i], 5));
  });
});

describe('FLUX.2 VAE', () => {
  it('full size: 32-channel latents at 1/8 scale, names in BFL (ldm) layout, without weights', () => {
    const rec = new K.ShapeRecorder();
    const b = new K.Builder(rec);
    const { mean } = vaeEncode(b, FLUX2_VAE, K.input('img', [1, 3, 1024, 1024]));
    expect(mean.shape).toEqual([1, 32, 128, 128]);
    expect(vaeDecode(b, FLUX2_VAE, K.input('z', [1, 32, 128, 128])).shape).toEqual([1, 3, 1024, 1024]);
    expect(rec.shapes.get('quant_conv.weight')).toEqual([64, 64, 1, 1]);
    expect(rec.shapes.get('decoder.conv_in.weight')).toEqual([512, 32, 3, 3]);
    const ldm = [...rec.shapes.keys()].map((k) => vaeToLdm(FLUX2_VAE, k));
    expect(new Set(ldm).size).toBe(rec.shapes.size);
    expect(ldm).toContain('encoder.down.3.block.1.conv2.weight');
    expect(ldm).toContain('decoder.up.0.block.0.nin_shortcut.weight');
    expect(ldm).toContain('encoder.mid.attn_1.q.weight');
  });

  it('tiny: a 64×64 image → 8×8 tokens of 128 channels → a 64×64 image', async () => {
    const w = new K.RandomWeights(5, 0.05);
    const stats = new K.HostWeights(new Map([
      ['bn.running_mean', { dtype: 'float32', shape: [128], data: rand(128, 0.1) }],
      ['bn.running_var', { dtype: 'float32', shape: [128], data: rand(128).map((v) => Math.abs(v) + 0.5) }],
    ]));
    const bn = { mean: stats.get('bn.running_mean', [128]), variance: stats.get('bn.running_var', [128]) };
    const img = K.input('img', [1, 3, 64, 64]);
    const tokens = flux2LatentsToTokens(vaeEncode(new K.Builder(w), FLUX2_TINY_VAE, img).mean, bn);
    // 64 px through the tiny's 4× VAE (3 blocks) and 2×2 patches: 8 × 8 tokens.
    const g = 64 / 2 ** FLUX2_TINY_VAE.blockOutChannels.length;
    expect(tokens.shape).toEqual([1, g * g, 128]);
    const out = vaeDecode(new K.Builder(w), FLUX2_TINY_VAE, flux2TokensToLatents(tokens, g, g, bn));
    const s = await runtime().load(K.compileGraph([img], { out, tokens }));
    const r = await s.run({ img: f32([1, 3, 64, 64], rand(3 * 64 * 64)) });
    expect(r.out.shape).toEqual([1, 3, 64, 64]);
    expect((r.out.data as Float32Array).every(Number.isFinite)).toBe(true);
  });
});
