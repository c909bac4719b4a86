import { describe, expect, it } from 'vitest';
import { erf, erfc, normalCdf, normalQuantile } from '../../../kernels/random';

describe('normal distribution math', () => {
  it('erf/erfc match tabulated values on both sides of the series/continued-fraction switch', () => {
    const table: [number, number][] = [
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.5, 0.999593047982555], // erfc(2.5) = 4.06952017444959e-4
      [3, 0.9999779095030014],
    ];
    for (const [x, v] of table) {
      expect(erf(x)).toBeCloseTo(v, 13);
      expect(erf(-x)).toBeCloseTo(-v, 13);
    }
    expect(erfc(3) / 2.209049699858544e-5).toBeCloseTo(1, 12);
    expect(erfc(5) / 1.537459794428035e-12).toBeCloseTo(1, 12);
    expect(Math.abs(erf(2.5 - 1e-12) - erf(2.5 + 1e-12))).toBeLessThan(1e-14);
  });

  it('normalCdf keeps relative accuracy in the far tail', () => {
    expect(normalCdf(0)).toBe(0.5);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 14);
    expect(normalCdf(-10) / 7.619853024160527e-24).toBeCloseTo(1, 10);
  });

  it('normalQuantile inverts normalCdf to ~1e-13 from 1e-12 to 1 - 1e-12', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 12);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 14);
    for (const p of [1e-12, 1e-6, 0.01, 0.02425, 0.1, 0.3, 0.7, 0.9, 0.99, 1 - 1e-6]) {
      const x = normalQuantile(p);
      const back = p < 0.5 ? normalCdf(x) : 1 - normalCdf(-x);
      expect(Math.abs(back - p) / Math.min(p, 1 - p)).toBeLessThan(1e-11);
    }
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(() => normalQuantile(1.5)).toThrow(/p in \[0, 1\]/);
  });
});
