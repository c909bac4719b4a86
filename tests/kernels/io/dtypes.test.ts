import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToFloat,
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  float32ToFloat8E4M3,
  float8E4M3BitsToFloat,
  float8E4M3ToFloat32,
  float8E5M2ToFloat32,
  floatToBfloat16Bits,
  floatToFloat8E4M3Bits,
  floatToHalfBits,
  halfBitsToFloat,
  FLOAT8_E4M3_MAX,
} from '../../../kernels/io/dtypes';

/** Every finite non-negative value of a format with its code, ascending: the brute-force reference. */
function grid(decode: (code: number) => number, codes: number): { values: number[]; codes: number[] } {
  const pairs: [number, number][] = [];
  for (let c = 0; c < codes; c++) {
    const v = decode(c);
    if (Number.isFinite(v) && v >= 0 && !Object.is(v, -0)) pairs.push([v, c]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  return { values: pairs.map((p) => p[0]), codes: pairs.map((p) => p[1]) };
}

/** Nearest representable value with ties to the even code, found by search (independent of the bit tricks). */
function nearestEvenCode(g: { values: number[]; codes: number[] }, x: number): number {
  const a = Math.abs(x);
  let lo = 0;
  let hi = g.values.length - 1;
  if (a >= g.values[hi]) return g.codes[hi];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (g.values[mid] <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - g.values[lo];
  const dHi = g.values[hi] - a;
  if (dLo < dHi) return g.codes[lo];
  if (dHi < dLo) return g.codes[hi];
  return g.codes[lo] % 2 === 0 ? g.codes[lo] : g.codes[hi];
}

function randomFloats(n: number, seed: number, scaleExp: [number, number]): Float32Array {
  // A tiny LCG keeps this test independent of kernels/random.
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = scaleExp[0] + next() * (scaleExp[1] - scaleExp[0]);
    out[i] = (next() < 0.5 ? -1 : 1) * (1 + next()) * 2 ** e;
  }
  return out;
}

describe('fp16', () => {
  const g = grid(halfBitsToFloat, 0x7c00);

  it('round-trips every fp16 bit pattern (normals, subnormals, ±0, ±Inf) and keeps NaN a NaN', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = float16ToFloat32(all);
    const back = float32ToFloat16(f);
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const ok = isNaN ? Number.isNaN(halfBitsToFloat(back[h])) : back[h] === h;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds every midpoint between neighbours to the even one, and a hair off to the nearer one', () => {
    const wrong: number[] = [];
    for (let i = 0; i + 1 < g.values.length; i++) {
      const a = g.values[i];
      const b = g.values[i + 1];
      const mid = (a + b) / 2; // exact in float32: fp16 has 11 significant bits
      const even = g.codes[i] % 2 === 0 ? g.codes[i] : g.codes[i + 1];
      const below = mid - (b - a) / 1024;
      const above = mid + (b - a) / 1024;
      const ok =
        Math.fround(mid) === mid &&
        floatToHalfBits(mid) === even &&
        floatToHalfBits(below) === g.codes[i] &&
        floatToHalfBits(above) === g.codes[i + 1];
      if (!ok) wrong.push(a);
    }
    expect(wrong).toEqual([]);
  });

  it('matches a brute-force nearest-even search on random floats across the whole range', () => {
    const xs = randomFloats(20000, 7, [-26, 16]);
    const wrong: number[] = [];
    for (const x of xs) {
      const got = floatToHalfBits(x);
      const want = Math.abs(x) >= 65520 ? 0x7c00 : nearestEvenCode(g, x);
      if ((got & 0x7fff) !== want || got >> 15 !== (x < 0 ? 1 : 0)) wrong.push(x);
    }
    expect(wrong).toEqual([]);
  });

  it('handles the edges: max, overflow to Inf, smallest subnormal and its half', () => {
    expect(floatToHalfBits(65504)).toBe(0x7bff);
    expect(floatToHalfBits(65519.99)).toBe(0x7bff);
    expect(floatToHalfBits(65520)).toBe(0x7c00);
    expect(floatToHalfBits(-1e9)).toBe(0xfc00);
    expect(floatToHalfBits(Infinity)).toBe(0x7c00);
    expect(floatToHalfBits(2 ** -24)).toBe(0x0001);
    expect(floatToHalfBits(2 ** -25)).toBe(0x0000); // tie goes to even (zero)
    expect(floatToHalfBits(2 ** -25 * 1.01)).toBe(0x0001);
    expect(floatToHalfBits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 goes to 2
    expect(floatToHalfBits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(floatToHalfBits(-0)).toBe(0x8000);
    expect(floatToHalfBits(1e-45)).toBe(0); // float32 subnormal
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN)))).toBe(true);
  });
});

describe('bf16', () => {
  const g = grid(bfloat16BitsToFloat, 0x7f80);

  it('round-trips every bf16 bit pattern and keeps NaN a NaN', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToBfloat16(bfloat16ToFloat32(all));
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      const ok = isNaN ? Number.isNaN(bfloat16BitsToFloat(back[h])) : back[h] === h;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('matches a brute-force nearest-even search, subnormals included', () => {
    const xs = randomFloats(20000, 11, [-133, 127]);
    const wrong = Array.from(xs).filter((x) => (floatToBfloat16Bits(x) & 0x7fff) !== nearestEvenCode(g, x));
    expect(wrong).toEqual([]);
    // Ties: 1 + 2^-8 sits exactly between 1 (even) and 1 + 2^-7.
    expect(floatToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(floatToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(floatToBfloat16Bits(3.4e38)).toBe(0x7f80); // rounds past the largest finite bf16
    expect(floatToBfloat16Bits(-Infinity)).toBe(0xff80);
  });
});

describe('fp8 e4m3fn', () => {
  const g = grid(float8E4M3BitsToFloat, 0x7f);

  it('decodes the OCP table: 1.0, 448 max, smallest normal and subnormals, NaN only at S.1111.111', () => {
    expect(float8E4M3BitsToFloat(0x38)).toBe(1);
    expect(float8E4M3BitsToFloat(0x7e)).toBe(448);
    expect(float8E4M3BitsToFloat(0xfe)).toBe(-448);
    expect(float8E4M3BitsToFloat(0x08)).toBe(2 ** -6);
    expect(float8E4M3BitsToFloat(0x01)).toBe(2 ** -9);
    expect(float8E4M3BitsToFloat(0x07)).toBe(7 * 2 ** -9);
    expect(Number.isNaN(float8E4M3BitsToFloat(0x7f))).toBe(true);
    expect(Number.isNaN(float8E4M3BitsToFloat(0xff))).toBe(true);
    expect(float8E4M3BitsToFloat(0x78)).toBe(256); // exponent 15 is a normal binade in e4m3fn (no Inf)
    const nanCount = Array.from({ length: 256 }, (_, i) => float8E4M3BitsToFloat(i)).filter(Number.isNaN).length;
    expect(nanCount).toBe(2);
  });

  it('round-trips all 254 finite codes (and -0)', () => {
    const all = new Uint8Array(256).map((_, i) => i);
    const back = float32ToFloat8E4M3(float8E4M3ToFloat32(all));
    for (let c = 0; c < 256; c++) {
      if ((c & 0x7f) === 0x7f) expect(back[c] & 0x7f).toBe(0x7f);
      else expect(back[c]).toBe(c);
    }
  });

  it('saturates instead of overflowing: beyond ±448 and ±Inf give ±448', () => {
    expect(floatToFloat8E4M3Bits(FLOAT8_E4M3_MAX)).toBe(0x7e);
    expect(floatToFloat8E4M3Bits(460)).toBe(0x7e);
    expect(floatToFloat8E4M3Bits(480)).toBe(0x7e); // would round up into the NaN code
    expect(floatToFloat8E4M3Bits(1e30)).toBe(0x7e);
    expect(floatToFloat8E4M3Bits(Infinity)).toBe(0x7e);
    expect(floatToFloat8E4M3Bits(-Infinity)).toBe(0xfe);
    expect(floatToFloat8E4M3Bits(NaN) & 0x7f).toBe(0x7f);
  });

  it('rounds to nearest even, subnormals included, against a brute-force search', () => {
    const xs = randomFloats(20000, 3, [-12, 9]);
    const wrong = Array.from(xs).filter((x) => {
      const got = floatToFloat8E4M3Bits(x);
      return (got & 0x7f) !== nearestEvenCode(g, x) || got >> 7 !== (x < 0 ? 1 : 0);
    });
    expect(wrong).toEqual([]);
    expect(floatToFloat8E4M3Bits(2 ** -10)).toBe(0x00); // half the smallest subnormal: tie to zero
    expect(floatToFloat8E4M3Bits(1.5 * 2 ** -10)).toBe(0x01);
    expect(floatToFloat8E4M3Bits(3 * 2 ** -10)).toBe(0x02); // tie between 1 and 2 subnormal units
    expect(floatToFloat8E4M3Bits(1 + 1 / 16)).toBe(0x38); // tie between 1 and 1.125 goes to 1 (even)
    expect(floatToFloat8E4M3Bits(1 + 3 / 16)).toBe(0x3a);
  });
});

describe('fp8 e5m2 (read)', () => {
  it('decodes as the top byte of an fp16', () => {
    const codes = new Uint8Array([0x3c, 0x7b, 0x7c, 0xfc, 0x01, 0x00, 0x80]);
    const f = float8E5M2ToFloat32(codes);
    expect(Array.from(f)).toEqual([1, 57344, Infinity, -Infinity, 2 ** -16, 0, -0]);
    expect(Number.isNaN(float8E5M2ToFloat32(new Uint8Array([0x7d]))[0])).toBe(true);
  });
});

it('rejects an output buffer of the wrong length', () => {
  expect(() => float32ToFloat16(new Float32Array(3), new Uint16Array(2))).toThrow(/2 elements.*3/);
});
