import { describe, expect, it } from 'vitest';
import { normalQuantile, Rng } from '../../../kernels/random';
import { float8E4M3ToFloat32 } from '../../../kernels/io/dtypes';
import {
  dequantizeWeight,
  NF4_LEVELS,
  packNibbles,
  quantizeWeight,
  unpackInt4,
  unpackUint4,
  type QuantizedWeight,
} from '../../../kernels/quant';

const ROWS = 256;
const COLS = 1024;
const weight = new Rng('quant-weights').fillNormal(new Float32Array(ROWS * COLS), 0, 0.02);

function relError(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** The worst |error| / bound over all elements (must be <= 1). */
function worstRatio(w: Float32Array, d: Float32Array, bound: (i: number) => number): number {
  let worst = 0;
  for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - d[i]) / bound(i));
  return worst;
}

describe('int8 per output channel', () => {
  const q = quantizeWeight(weight, [ROWS, COLS], 'int8');
  const d = dequantizeWeight(q);

  it('stores one int8 per weight and one fp32 absmax/127 scale per row', () => {
    expect(q.packed).toBeInstanceOf(Int8Array);
    expect(q.packedType).toBe('int8');
    expect(q.scaleShape).toEqual([ROWS]);
    let absmax = 0;
    for (let c = 0; c < COLS; c++) absmax = Math.max(absmax, Math.abs(weight[3 * COLS + c]));
    expect(q.scales[3]).toBe(Math.fround(absmax / 127));
    expect(q.bytes).toBe(ROWS * COLS + 4 * ROWS);
  });

  it('errs by at most half a step per weight; relative error < 1.2% on Gaussian weights', () => {
    expect(worstRatio(weight, d, (i) => q.scales[Math.floor(i / COLS)] / 2 + 1e-12)).toBeLessThanOrEqual(1 + 1e-6);
    expect(relError(d, weight)).toBeLessThan(0.012);
  });
});

describe('4-bit block-wise', () => {
  it('NF4 levels are the QLoRA levels: 16 sorted values from -1 to 1 with an exact zero, near normal quantiles', () => {
    expect(NF4_LEVELS.length).toBe(16);
    expect(NF4_LEVELS[0]).toBe(-1);
    expect(NF4_LEVELS[7]).toBe(0);
    expect(NF4_LEVELS[15]).toBe(1);
    for (let i = 1; i < 16; i++) expect(NF4_LEVELS[i]).toBeGreaterThan(NF4_LEVELS[i - 1]);
    // QLoRA's construction: positive side = quantiles of N(0,1) at linspace(offset, 0.5, 9), negative
    // at linspace(offset, 0.5, 8), with offset = (1/(2·15) + 1/(2·16)) / 2 = 0.9677..., then scaled to max 1.
    const offset = 0.9677083;
    const pos = Array.from({ length: 9 }, (_, i) => normalQuantile(offset + ((0.5 - offset) * i) / 8)).slice(0, 8);
    const neg = Array.from({ length: 8 }, (_, i) => -normalQuantile(offset + ((0.5 - offset) * i) / 7)).slice(0, 7);
    const levels = [...neg, 0, ...pos].sort((a, b) => a - b);
    const max = Math.max(...levels.map(Math.abs));
    levels.forEach((v, i) => expect(v / max).toBeCloseTo(NF4_LEVELS[i], 4));
  });

  for (const scheme of ['nf4', 'int4'] as const) {
    describe(scheme, () => {
      const q = quantizeWeight(weight, [ROWS, COLS], scheme);
      const d = dequantizeWeight(q);

      it('packs two codes per byte with an fp32 absmax scale per 64 weights of a row', () => {
        expect(q.blockSize).toBe(64);
        expect(q.packed.length).toBe((ROWS * COLS) / 2);
        expect(q.scaleShape).toEqual([ROWS, COLS / 64]);
        expect(q.bytes).toBe((ROWS * COLS) / 2 + 4 * ROWS * (COLS / 64));
        let absmax = 0;
        for (let c = 64; c < 128; c++) absmax = Math.max(absmax, Math.abs(weight[c]));
        expect(q.scales[1]).toBe(Math.fround(scheme === 'int4' ? absmax / 7 : absmax));
      });

      it('stays within the per-weight bound of its grid', () => {
        // int4: half a step (scale / 2). NF4: half the widest gap between levels (-1 to -0.696) times absmax.
        const widestGap = Math.max(...NF4_LEVELS.slice(1).map((v, i) => v - NF4_LEVELS[i]));
        const factor = scheme === 'int4' ? 0.5 : widestGap / 2;
        const bound = (i: number) => q.scales[Math.floor(i / COLS) * (COLS / 64) + Math.floor((i % COLS) / 64)] * factor + 1e-12;
        expect(worstRatio(weight, d, bound)).toBeLessThanOrEqual(1 + 1e-6);
      });
    });
  }

  it('relative error on Gaussian weights: NF4 < 10%, int4 < 12%, and NF4 beats int4', () => {
    const nf4 = relError(dequantizeWeight(quantizeWeight(weight, [ROWS, COLS], 'nf4')), weight);
    const int4 = relError(dequantizeWeight(quantizeWeight(weight, [ROWS, COLS], 'int4')), weight);
    expect(nf4).toBeLessThan(0.1);
    expect(int4).toBeLessThan(0.12);
    expect(nf4).toBeLessThan(int4);
  });

  it('smaller blocks cost bytes and buy accuracy', () => {
    const q32 = quantizeWeight(weight, [ROWS, COLS], 'nf4', { blockSize: 32 });
    const q256 = quantizeWeight(weight, [ROWS, COLS], 'nf4', { blockSize: 256 });
    expect(q32.bytes).toBeGreaterThan(q256.bytes);
    expect(relError(dequantizeWeight(q32), weight)).toBeLessThan(relError(dequantizeWeight(q256), weight));
  });

  it('handles a partial last block and an odd element count', () => {
    const w = new Rng(1).fillNormal(new Float32Array(3 * 101));
    for (const scheme of ['nf4', 'int4'] as const) {
      const q = quantizeWeight(w, [3, 101], scheme, { blockSize: 64 });
      expect(q.scaleShape).toEqual([3, 2]);
      expect(q.packed.length).toBe(152);
      expect(relError(dequantizeWeight(q), w)).toBeLessThan(0.15);
    }
  });

  it('represents grid values exactly', () => {
    const w = new Float32Array(NF4_LEVELS.map((v) => v * 0.5));
    expect(dequantizeWeight(quantizeWeight(w, [1, 16], 'nf4'))).toEqual(w);
    const ints = new Float32Array([-7, -3, 0, 1, 5, 7].map((v) => v * 0.25));
    expect(dequantizeWeight(quantizeWeight(ints, [1, 6], 'int4'))).toEqual(ints);
  });
});

describe('fp8 e4m3', () => {
  for (const per of ['tensor', 'channel'] as const) {
    it(`per ${per}: scale maps absmax to 448; errors within e4m3's half-ulp; relative error < 4%`, () => {
      const q = quantizeWeight(weight, [ROWS, COLS], 'fp8_e4m3', { fp8Scale: per });
      const d = dequantizeWeight(q);
      expect(q.packedType).toBe('float8e4m3fn');
      expect(q.scales.length).toBe(per === 'tensor' ? 1 : ROWS);
      expect(q.bytes).toBe(ROWS * COLS + 4 * q.scales.length);
      const decoded = float8E4M3ToFloat32(q.packed as Uint8Array);
      expect(decoded.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBe(448);
      // Normal range: |err| <= 2^-4 |w| (3 mantissa bits); subnormal range: <= 2^-10 * scale.
      const scaleOf = (i: number) => q.scales[per === 'tensor' ? 0 : Math.floor(i / COLS)];
      const bound = (i: number) => Math.max(2 ** -4 * Math.abs(weight[i]), 2 ** -10 * scaleOf(i)) * (1 + 1e-6);
      expect(worstRatio(weight, d, bound)).toBeLessThanOrEqual(1);
      expect(relError(d, weight)).toBeLessThan(0.04);
    });
  }
});

describe('shared behaviour', () => {
  it('all-zero rows and blocks quantise to zeros without dividing by zero', () => {
    const w = new Float32Array(2 * 64);
    w.fill(0.5, 64);
    for (const scheme of ['int8', 'nf4', 'int4', 'fp8_e4m3'] as const) {
      const d = dequantizeWeight(quantizeWeight(w, [2, 64], scheme, { fp8Scale: 'channel' }));
      expect(Array.from(d.subarray(0, 64)).every((v) => v === 0)).toBe(true);
      expect(d[100]).toBeCloseTo(0.5, 6);
    }
  });

  it('bytes saved versus fp32: int8 ~4x, 4-bit ~7x (block 64), fp8 ~4x', () => {
    const ratio = (q: QuantizedWeight) => (ROWS * COLS * 4) / q.bytes;
    expect(ratio(quantizeWeight(weight, [ROWS, COLS], 'int8'))).toBeCloseTo(3.984, 2);
    expect(ratio(quantizeWeight(weight, [ROWS, COLS], 'nf4'))).toBeCloseTo(7.111, 2);
    expect(ratio(quantizeWeight(weight, [ROWS, COLS], 'fp8_e4m3'))).toBeCloseTo(4, 2);
  });

  it('refuses bad shapes, non-finite weights and unknown schemes, saying which', () => {
    expect(() => quantizeWeight(new Float32Array(6), [2, 4], 'int8')).toThrow(/6 elements but shape \[2, 4\] needs 8/);
    expect(() => quantizeWeight(new Float32Array(6), [6], 'int8')).toThrow(/2-D \[out, in\]/);
    const bad = new Float32Array(6);
    bad[4] = NaN;
    expect(() => quantizeWeight(bad, [2, 3], 'nf4')).toThrow(/non-finite value \(NaN\) at \[1, 1\]/);
    expect(() => quantizeWeight(weight, [ROWS, COLS], 'int2' as never)).toThrow(/unknown quantisation scheme "int2"/);
    expect(() => quantizeWeight(weight, [ROWS, COLS], 'int4', { blockSize: 0 })).toThrow(/blockSize/);
  });

  it('nibble packing follows ONNX INT4: element 2i low, 2i+1 high', () => {
    const packed = packNibbles([1, 2, 15, -1, 7]);
    expect(Array.from(packed)).toEqual([0x21, 0xff, 0x07]);
    expect(Array.from(unpackUint4(packed, 5))).toEqual([1, 2, 15, 15, 7]);
    expect(Array.from(unpackInt4(packed, 5))).toEqual([1, 2, -1, -1, 7]);
  });
});
