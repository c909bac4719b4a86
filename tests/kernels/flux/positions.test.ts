// RoPE positions of the FLUX transformers, checked against the reference implementations' ids:
// FLUX.2 (BFL flux2 sampling.py prc_img / prc_txt) takes the cartesian product of (t, h, w, l) ranges —
// image tokens (0, row, col, 0) row-major, text tokens (0, 0, 0, index); FLUX.1 gives image tokens
// (0, row, col) and text tokens zeros. Both models attend over text first, then image, so the joint
// list is text then image. With klein 9B's axes (4 × 32 channels, theta 2000) a text token turns
// only the l axis's 16 channel pairs and an image token only the h and w axes' pairs.
import { describe, expect, it } from 'vitest';
import { FLUX1_DEV, FLUX2_KLEIN_9B, FLUX2_TINY } from '../../../kernels/flux/config';
import { flux1ImagePositions, flux1TextPositions, flux2ImagePositions, flux2TextPositions, jointPositions } from '../../../kernels/flux/transformer';
import { ropeAngles } from '../../../kernels/dit';

/** torch.cartesian_prod of integer ranges: the last range varies fastest. */
function cartesian(...sizes: number[]): number[][] {
  let out: number[][] = [[]];
  for (const n of sizes) out = out.flatMap((p) => Array.from({ length: n }, (_, i) => [...p, i]));
  return out;
}

describe('FLUX RoPE positions', () => {
  it('FLUX.2: image (t, h, w, l) = (0, row, col, 0) row-major, text (0, 0, 0, index), as BFL\'s prc_img / prc_txt', () => {
    expect(flux2ImagePositions(2, 3)).toEqual(cartesian(1, 2, 3, 1));
    expect(flux2TextPositions(4)).toEqual(cartesian(1, 1, 1, 4));
    expect(flux2ImagePositions(2, 3)[4]).toEqual([0, 1, 1, 0]);
    expect(flux2TextPositions(4)[3]).toEqual([0, 0, 0, 3]);
  });

  it('FLUX.1: image (0, row, col), text all zeros', () => {
    expect(flux1ImagePositions(2, 3)).toEqual(cartesian(1, 2, 3));
    expect(flux1TextPositions(3)).toEqual([[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
  });

  it('the joint list is text then image, one coordinate per RoPE axis of the model', () => {
    for (const cfg of [FLUX2_TINY, FLUX2_KLEIN_9B, FLUX1_DEV]) {
      const p = jointPositions(cfg, 3, 2, 2);
      expect(p).toHaveLength(3 + 4);
      for (const x of p) expect(x).toHaveLength(cfg.axesDim.length);
      const text = cfg.generation === 2 ? flux2TextPositions(3) : flux1TextPositions(3);
      const image = cfg.generation === 2 ? flux2ImagePositions(2, 2) : flux1ImagePositions(2, 2);
      expect(p).toEqual([...text, ...image]);
    }
  });

  it('klein 9B: a text token turns only the l axis\'s 16 pairs, an image token only h and w, at theta 2000', () => {
    const cfg = FLUX2_KLEIN_9B;
    expect(cfg.axesDim).toEqual([32, 32, 32, 32]);
    const { angles, pairs } = ropeAngles(jointPositions(cfg, 2, 2, 2), cfg.axesDim, cfg.theta);
    expect(pairs).toBe(64);
    const row = (i: number) => Array.from(angles.subarray(i * pairs, (i + 1) * pairs));
    const freq = (j: number) => 2000 ** (-(2 * j) / 32);
    const axis = (position: number) => Array.from({ length: 16 }, (_, j) => position * freq(j));
    const zeros = new Array(16).fill(0);
    // Text token 1: (0, 0, 0, 1).
    expect(row(1)).toEqual([...zeros, ...zeros, ...zeros, ...axis(1)].map((v) => expect.closeTo(v, 12)));
    // Image token (row 1, col 0) is joint index 2 + 2: (0, 1, 0, 0).
    expect(row(4)).toEqual([...zeros, ...axis(1), ...zeros, ...zeros].map((v) => expect.closeTo(v, 12)));
    // Image token (row 1, col 1): (0, 1, 1, 0).
    expect(row(5)).toEqual([...zeros, ...axis(1), ...axis(1), ...zeros].map((v) => expect.closeTo(v, 12)));
    // The lowest frequency of an axis is 2000^(-30/32), not 10000's.
    expect(row(1)[63]).toBeCloseTo(2000 ** (-30 / 32), 12);
  });
});
