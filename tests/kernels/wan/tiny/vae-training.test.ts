// The tiny Wan VAE as stage A trains it: the gradient of a whole encode → decode round trip (causal
// convs, RMS norms, per-frame attention, stride-2 time downsampling, time-doubling upsampling) against
// finite differences.
import { afterAll, describe, expect, it } from 'vitest';
import * as K from '../../../../kernels';
import { wanVaeDecode, wanVaeEncode, type WanVaeConfig } from '../../../../kernels/wan/vae';
import { gradCheck, runtime } from '../../gradcheck';

afterAll(() => runtime().close());

/** The tiny VAE's layout on 4 base channels and 4 latent channels (small enough for finite differences). */
const MINI: WanVaeConfig = { name: 'wan-mini-vae', base: 4, dimMult: [1, 2, 2, 2], numResBlocks: 1, temporalDownsample: [false, true, true], zDim: 4, latentMean: [0, 0, 0, 0], latentStd: [1, 1, 1, 1] };

describe('tiny Wan VAE training graph', () => {
  it('round-trip gradient w.r.t. the clip (5 frames: the first alone, then a chunk of 4) matches finite differences', async () => {
    const w = new K.RandomWeights(5, 0.3);
    const f = (video: K.Tensor) => { const b = new K.Builder(w); return wanVaeDecode(b, MINI, wanVaeEncode(b, MINI, video, { chunked: false }).mean); };
    const err = await gradCheck(f, [{ shape: [1, 3, 5, 16, 16] }], { directions: 4 });
    expect(err).toBeLessThan(2e-2);
  }, 120_000);
});
