// The Wan VAEs' per-channel latent normalisation: the encoder's latents are (μ − mean_c) / std_c of its own
// posterior mean, and the decoder undoes it before conv2 (Wan's `scale = [mean, 1/std]`), so a model trained on
// normalised latents decodes through the same statistics. Checked on the tiny 2.1- and 2.2-layout VAEs with
// uneven statistics against the same weights under identity statistics (mean 0, std 1).
import { afterAll, describe, expect, it } from 'vitest';
import * as K from '../../../kernels';
import { WAN21_VAE, WAN_TINY_VAE, wanVaeDecode, wanVaeEncode, type WanVaeConfig } from '../../../kernels/wan/vae';
import { WAN22_TINY_VAE, WAN22_VAE, wan22VaeDecode, wan22VaeEncode } from '../../../kernels/wan/vae22';
import { rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());
const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

const cases = [
  { name: '2.1 layout', vae: WAN_TINY_VAE, encode: wanVaeEncode, decode: wanVaeDecode, pixels: [1, 3, 5, 16, 16], latent: [1, 4, 2, 2, 2] },
  { name: '2.2 layout', vae: WAN22_TINY_VAE, encode: wan22VaeEncode, decode: wan22VaeDecode, pixels: [1, 3, 5, 32, 32], latent: [1, 4, 2, 2, 2] },
] as const;

describe('Wan VAE latent normalisation', () => {
  it('full-size statistics: 16 channels for the 2.1 VAE, 48 for the 2.2 VAE (Wan\'s mean/std lists), every std positive', () => {
    expect(WAN21_VAE.latentMean).toHaveLength(16);
    expect(WAN21_VAE.latentStd).toHaveLength(16);
    expect([WAN21_VAE.latentMean[0], WAN21_VAE.latentMean[7], WAN21_VAE.latentStd[0], WAN21_VAE.latentStd[15]]).toEqual([-0.7571, 1.5508, 2.8184, 1.916]);
    expect(WAN22_VAE.latentMean).toHaveLength(48);
    expect(WAN22_VAE.latentStd).toHaveLength(48);
    expect([WAN22_VAE.latentMean[0], WAN22_VAE.latentMean[39], WAN22_VAE.latentStd[21], WAN22_VAE.latentStd[47]]).toEqual([-0.2289, 0.3748, 1.4146, 0.7744]);
    expect([...WAN21_VAE.latentStd, ...WAN22_VAE.latentStd].every((s) => s > 0)).toBe(true);
  });

  for (const c of cases) {
    it(`${c.name}: encode gives (μ − mean) / std per channel; decode multiplies back before decoding`, async () => {
      const z = c.vae.zDim;
      const mean = Array.from({ length: z }, (_, i) => 0.3 * i - 0.4);
      const std = Array.from({ length: z }, (_, i) => 0.5 + 0.7 * i);
      const skewed: WanVaeConfig = { ...c.vae, latentMean: mean, latentStd: std };
      const plain: WanVaeConfig = { ...c.vae, latentMean: new Array(z).fill(0), latentStd: new Array(z).fill(1) };
      const w = new K.RandomWeights(11, 0.15);
      const v = K.input('v', [...c.pixels]);
      const lat = K.input('lat', [...c.latent]);
      const enc = c.encode(new K.Builder(w), skewed, v);
      const graph = K.compileGraph([v, lat], {
        mu: enc.mean, normalised: enc.latents, raw: c.encode(new K.Builder(w), plain, v).latents,
        decoded: c.decode(new K.Builder(w), skewed, lat),
        // The same latent with the statistics applied by hand, decoded under identity statistics.
        decodedByHand: c.decode(new K.Builder(w), plain, K.add(K.mul(lat, K.constant(Float32Array.from(std), [1, z, 1, 1, 1])), K.constant(Float32Array.from(mean), [1, z, 1, 1, 1]))),
      });
      const s = await runtime().load(graph);
      const latData = rand(size(c.latent));
      const r = await s.run({ v: f32([...c.pixels], rand(size(c.pixels))), lat: f32([...c.latent], latData) });
      const mu = r.mu.data as Float32Array, got = r.normalised.data as Float32Array, raw = r.raw.data as Float32Array;
      expect(maxDiff(mu, raw)).toBeLessThan(1e-6); // identity statistics leave μ as it is
      const per = mu.length / z; // [1, z, F, h, w]: channel-major
      const want = mu.map((x, i) => (x - mean[Math.floor(i / per)]!) / std[Math.floor(i / per)]!);
      expect(maxDiff(got, want)).toBeLessThan(1e-5);
      expect(maxDiff(got, mu)).toBeGreaterThan(0.1);
      const dec = r.decoded.data as Float32Array, byHand = r.decodedByHand.data as Float32Array;
      expect(maxDiff(dec, byHand)).toBeLessThan(1e-4);
    });
  }
});
