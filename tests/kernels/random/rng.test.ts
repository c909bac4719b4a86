import { describe, expect, it } from 'vitest';
import { philox4x32, Rng, type RngState } from '../../../kernels/random';

describe('Philox4x32-10', () => {
  it("matches Random123's published known-answer vectors", () => {
    expect(Array.from(philox4x32(0, 0, 0, 0, 0, 0))).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    const ff = 0xffffffff;
    expect(Array.from(philox4x32(ff, ff, ff, ff, ff, ff))).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    expect(Array.from(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0))).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });
});

/** Draws number `from` .. `to - 1` of a fixed mix of every kind of draw, so a state must capture all. */
function draws(rng: Rng, to: number, from = 0): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) {
    switch (i % 5) {
      case 0: out.push(rng.uniform()); break;
      case 1: out.push(rng.normal()); break;
      case 2: out.push(rng.int(0, 1000)); break;
      case 3: out.push(rng.nextUint32()); break;
      default: out.push(rng.choiceIndex([1, 2, 3]));
    }
  }
  return out;
}

describe('reproducibility and resume', () => {
  it('the same seed gives the same sequence; a different seed a different one', () => {
    expect(draws(new Rng(42), 200)).toEqual(draws(new Rng(42), 200));
    expect(draws(new Rng(42), 50)).not.toEqual(draws(new Rng(43), 50));
    expect(draws(new Rng('run-a'), 20)).toEqual(draws(new Rng('run-a'), 20));
    expect(new Rng(2 ** 40).nextUint32()).not.toBe(new Rng(0).nextUint32());
  });

  it('state() taken mid-stream survives JSON and continues the exact sequence, at every position', () => {
    const reference = draws(new Rng(7), 60);
    for (let cut = 0; cut <= 60; cut++) {
      const rng = new Rng(7);
      const head = draws(rng, cut);
      const saved = JSON.parse(JSON.stringify(rng.state())) as RngState;
      const rest = draws(Rng.fromState(saved), 60, cut);
      expect([...head, ...rest]).toEqual(reference);
    }
  });

  it('a saved spare Box–Muller value is part of the state', () => {
    const a = new Rng(3);
    a.normal(); // leaves the pair's second value pending
    const s = a.state();
    expect(s.spareNormal).not.toBeNull();
    expect(Rng.fromState(s).normal()).toBe(a.normal());
  });

  it('clone() is independent of the original', () => {
    const a = new Rng(5);
    a.uniform();
    const b = a.clone();
    expect(b.uniform()).toBe(a.uniform());
    b.uniform();
    expect(b.state()).not.toEqual(a.state());
  });

  it('rejects things that are not states or seeds', () => {
    expect(() => Rng.fromState({ algorithm: 'xoshiro' } as unknown as RngState)).toThrow(/not an Rng state/);
    expect(() => Rng.fromState({ ...new Rng(1).state(), used: 9 })).toThrow(/not an Rng state/);
    expect(() => new Rng(-1)).toThrow(/non-negative integer/);
    expect(() => new Rng(1.5)).toThrow(/non-negative integer/);
  });
});

describe('fork', () => {
  it('derives the same named stream whenever asked, independent of how far the parent has drawn', () => {
    const parent = new Rng(11);
    const early = parent.fork('noise');
    draws(parent, 37);
    const late = parent.fork('noise');
    expect(draws(early, 30)).toEqual(draws(late, 30));
  });

  it('different labels and different parents give unrelated streams', () => {
    const parent = new Rng(11);
    const labels = ['noise', 'dropout', 'timesteps', 'data-order', 'noise/step-1', 'noise/step-2'];
    const firsts = labels.map((l) => parent.fork(l).nextUint32());
    expect(new Set(firsts).size).toBe(labels.length);
    expect(new Rng(12).fork('noise').nextUint32()).not.toBe(parent.fork('noise').nextUint32());
    // A fork is not the parent stream itself.
    expect(draws(parent.fork(''), 8)).not.toEqual(draws(new Rng(11), 8));
  });

  it('forked streams are uncorrelated with each other', () => {
    const parent = new Rng(99);
    const a = parent.fork('noise');
    const b = parent.fork('dropout');
    const n = 50_000;
    let sab = 0;
    for (let i = 0; i < n; i++) sab += a.normal() * b.normal();
    // Correlation estimate has standard error 1/sqrt(n) ≈ 0.0045; 5 sigma bound.
    expect(Math.abs(sab / n)).toBeLessThan(0.023);
  });
});

describe('distributions (100k draws; bounds are ~5 standard errors)', () => {
  const N = 100_000;

  it('uniform: mean 1/2, variance 1/12, range [0, 1)', () => {
    const rng = new Rng(1);
    let s = 0;
    let s2 = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < N; i++) {
      const u = rng.uniform();
      s += u;
      s2 += u * u;
      min = Math.min(min, u);
      max = Math.max(max, u);
    }
    const mean = s / N;
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / N));
    expect(Math.abs(s2 / N - mean * mean - 1 / 12)).toBeLessThan(0.0015);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(rng.uniform(-3, -1)).toBeGreaterThanOrEqual(-3);
  });

  it('normal and fillNormal: mean 0, variance 1, skew 0, kurtosis 3; mean/std parameters apply', () => {
    for (const fill of [false, true]) {
      const rng = new Rng(2);
      const xs = fill ? rng.fillNormal(new Float32Array(N)) : Float64Array.from({ length: N }, () => rng.normal());
      const m = moments(xs);
      expect(Math.abs(m.mean)).toBeLessThan(5 / Math.sqrt(N));
      expect(Math.abs(m.variance - 1)).toBeLessThan(5 * Math.sqrt(2 / N));
      expect(Math.abs(m.skew)).toBeLessThan(5 * Math.sqrt(6 / N));
      expect(Math.abs(m.kurtosis - 3)).toBeLessThan(5 * Math.sqrt(24 / N));
    }
    const shifted = moments(new Rng(3).fillNormal(new Float32Array(N), 2, 0.5));
    expect(shifted.mean).toBeCloseTo(2, 2);
    expect(Math.sqrt(shifted.variance)).toBeCloseTo(0.5, 2);
  });

  it('fillUniform covers [low, high) evenly', () => {
    const xs = new Rng(4).fillUniform(new Float32Array(N), -1, 1);
    const m = moments(xs);
    expect(Math.abs(m.mean)).toBeLessThan(5 * Math.sqrt(1 / 3 / N));
    expect(Math.abs(m.variance - 1 / 3)).toBeLessThan(0.005);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it('int: every value in [low, high) equally often (chi-square), also for ranges above 2^32', () => {
    const rng = new Rng(5);
    const k = 7;
    const counts = new Array(k).fill(0);
    for (let i = 0; i < N; i++) counts[rng.int(-3, 4) + 3]++;
    const expected = N / k;
    const chi2 = counts.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(22.5); // p ≈ 0.001 for 6 degrees of freedom
    const big = 2 ** 40;
    let s = 0;
    for (let i = 0; i < 10_000; i++) {
      const v = rng.int(0, big);
      expect(Number.isInteger(v) && v >= 0 && v < big).toBe(true);
      s += v / big;
    }
    expect(Math.abs(s / 10_000 - 0.5)).toBeLessThan(0.015);
    expect(() => rng.int(3, 3)).toThrow(/low < high/);
  });

  it('choice with weights picks in proportion; zero weights are never picked', () => {
    const rng = new Rng(6);
    const counts = { a: 0, b: 0, c: 0, d: 0 };
    for (let i = 0; i < N; i++) counts[rng.choice(['a', 'b', 'c', 'd'] as const, [1, 0, 3, 6])]++;
    expect(counts.b).toBe(0);
    expect(Math.abs(counts.a / N - 0.1)).toBeLessThan(0.005);
    expect(Math.abs(counts.c / N - 0.3)).toBeLessThan(0.008);
    expect(Math.abs(counts.d / N - 0.6)).toBeLessThan(0.008);
    expect(() => rng.choice([1, 2], [1])).toThrow(/2 items but 1 weights/);
    expect(() => rng.choiceIndex([0, 0])).toThrow(/positive sum/);
    expect(() => rng.choiceIndex([1, -1])).toThrow(/>= 0/);
  });

  it('shuffle returns a new permutation with every position equally likely', () => {
    const rng = new Rng(7);
    const items = ['a', 'b', 'c', 'd'];
    const firstCounts = new Map<string, number>();
    let notPermutations = 0;
    for (let i = 0; i < 40_000; i++) {
      const s = rng.shuffle(items);
      if (s.slice().sort().join() !== 'a,b,c,d') notPermutations++;
      firstCounts.set(s[0], (firstCounts.get(s[0]) ?? 0) + 1);
    }
    expect(notPermutations).toBe(0);
    expect(items).toEqual(['a', 'b', 'c', 'd']);
    for (const c of firstCounts.values()) expect(Math.abs(c / 40_000 - 0.25)).toBeLessThan(0.011);
    expect(rng.permutation(10).slice().sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

function moments(xs: ArrayLike<number>) {
  const n = xs.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  const mean = s / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = xs[i] - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return { mean, variance: m2, skew: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}
