// The tiny pretraining scripts' shared pieces: the training noise-level draw (shifted uniform, or the
// logit-normal at shift 0) and the command line.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../kernels/random';
import { pretrainSigma } from '../../../kernels/train/pretrain-cli';

const draws = (shift: number, n = 20000) => { const rng = new Rng(9); return Array.from({ length: n }, () => pretrainSigma(rng, shift)); };
const share = (xs: number[], p: (x: number) => boolean) => xs.filter(p).length / xs.length;

describe('pretrainSigma', () => {
  it('shift s > 0: uniform u mapped to s·u / (1 + (s − 1)·u), one uniform draw per level', () => {
    const a = new Rng(4), b = new Rng(4);
    for (let i = 0; i < 100; i++) {
      const u = b.uniform();
      expect(pretrainSigma(a, 3)).toBeCloseTo((3 * u) / (1 + 2 * u), 12);
    }
    // P(σ > 0.9) at shift 3: u > 0.75, a quarter of the draws.
    expect(share(draws(3), (x) => x > 0.9)).toBeCloseTo(0.25, 1);
    expect(share(draws(1), (x) => x > 0.9)).toBeCloseTo(0.1, 1);
  });

  it('shift 0: the logit-normal (0, 1), centred on 0.5 and rarely past 0.9', () => {
    const xs = draws(0);
    expect(xs.every((x) => x > 0 && x < 1)).toBe(true);
    expect(share(xs, (x) => x < 0.5)).toBeCloseTo(0.5, 1);
    // P(logit σ > ln 9 ≈ 2.197) for a standard normal: 0.014.
    expect(share(xs, (x) => x > 0.9)).toBeLessThan(0.03);
  });
});
