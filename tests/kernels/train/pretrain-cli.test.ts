// The tiny pretraining scripts' shared pieces: the training noise-level draw (shifted uniform, or the
// logit-normal at shift 0) and the command line.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../kernels/random';
import { resolve } from 'node:path';
import { parsePretrainArgs, pretrainSigma } from '../../../kernels/train/pretrain-cli';

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

describe('parsePretrainArgs', () => {
  const defaults = { steps: 10, lr: 1e-3, extendTo: [4000, 8000], name: 'x' };
  it('sets numbers and lists by their kebab-case flags, and --out / --scratch as absolute paths', () => {
    const { o, out, scratch } = parsePretrainArgs(['--steps', '7', '--extend-to', '100,200,', '--out', 'rel/out', '--scratch', '/tmp/s'], defaults, '/default/out', '/default/scratch');
    expect(o).toEqual({ steps: 7, lr: 1e-3, extendTo: [100, 200], name: 'x' });
    expect(out).toBe(resolve('rel/out'));
    expect(scratch).toBe('/tmp/s');
    expect(defaults.extendTo).toEqual([4000, 8000]);
    expect(parsePretrainArgs([], defaults, '/o', '/s')).toEqual({ o: defaults, out: '/o', scratch: '/s' });
  });

  it('refuses unknown flags, bad numbers, bad lists, non-numeric options and a flag without a value, naming the flag', () => {
    expect(() => parsePretrainArgs(['--stepz', '7'], defaults, '/o', '/s')).toThrow('pretrain: unknown option --stepz or bad value 7');
    expect(() => parsePretrainArgs(['--lr', 'fast'], defaults, '/o', '/s')).toThrow('pretrain: unknown option --lr or bad value fast');
    expect(() => parsePretrainArgs(['--name', '3'], defaults, '/o', '/s')).toThrow('pretrain: unknown option --name or bad value 3');
    expect(() => parsePretrainArgs(['--extend-to', '4000,8k'], defaults, '/o', '/s')).toThrow('pretrain: --extend-to takes whole numbers separated by commas, like 4000,8000 (got 4000,8k)');
    expect(() => parsePretrainArgs(['--steps'], defaults, '/o', '/s')).toThrow('pretrain: --steps needs a value');
  });
});
