// Block-wise 8-bit storage of optimizer state, as bitsandbytes keeps its 8-bit Adam moments: each block
// of 256 values is divided by its absolute maximum and stored as the index (uint8) of the nearest entry
// of a 256-entry "dynamic tree" code (dense near zero, sparse near ±1). Dequantised, updated in float32
// and re-quantised inside the training graph every step.
import { constant, type Tensor } from '../tensor';
import { abs, add, cast, div, lessOrEqual, maximum, mul, where } from '../ops/elementwise';
import { flatten, gather, pad, reduceMax, reshape, slice } from '../ops/shape-and-reduce';

export const BLOCK_SIZE = 256;

/**
 * bitsandbytes' create_dynamic_map(signed, max_exponent_bits=7, total_bits=8), sorted ascending: for
 * each decade 10^-6 … 10^0 a linear run of fractions between 0.1 and 1 (twice as many per decade
 * for the unsigned map, which needs no sign), plus 0 and 1.
 */
export function dynamicMap(signed: boolean): Float64Array {
  const data: number[] = [];
  for (let i = 0; i < 7; i++) {
    const items = signed ? 2 ** i + 1 : 2 ** (i + 1) + 1;
    const scale = 10 ** (-6 + i);
    for (let k = 0; k + 1 < items; k++) {
      const lo = 0.1 + (0.9 * k) / (items - 1);
      const hi = 0.1 + (0.9 * (k + 1)) / (items - 1);
      const mean = ((lo + hi) / 2) * scale;
      data.push(mean);
      if (signed) data.push(-mean);
    }
  }
  data.push(0, 1);
  if (data.length !== 256) throw new Error(`dynamic map has ${data.length} entries`);
  return Float64Array.from(data.sort((a, b) => a - b));
}

/** Lower decision thresholds: code j is chosen for x ≥ thresholds[j] (midpoints; thresholds[0] = −∞). */
export function codeThresholds(code: ArrayLike<number>): Float64Array {
  const t = new Float64Array(code.length);
  t[0] = -Infinity;
  for (let j = 1; j < code.length; j++) t[j] = (code[j - 1] + code[j]) / 2;
  return t;
}

export const blocksFor = (n: number) => Math.ceil(n / BLOCK_SIZE);

/** float32 values of `codes` (uint8, any shape) scaled by their block's absmax ([blocks]). */
export function dequantizeBlockwise(codes: Tensor, absmax: Tensor, code: Float64Array): Tensor {
  const n = codes.size;
  const nb = blocksFor(n);
  const table = constant(Float32Array.from(code), [code.length]);
  const values = gather(table, cast(flatten(codes), 'int64'));
  const blocked = reshape(pad(values, [0], [nb * BLOCK_SIZE - n]), [nb, BLOCK_SIZE]);
  const scaled = mul(blocked, reshape(absmax, [nb, 1]));
  return reshape(slice(flatten(scaled), [0], [n]), codes.shape);
}

/** uint8 codes (shape of x) and per-block absmax of `x`, nearest code by an 8-step binary search. */
export function quantizeBlockwise(x: Tensor, code: Float64Array): { codes: Tensor; absmax: Tensor } {
  const n = x.size;
  const nb = blocksFor(n);
  const blocked = reshape(pad(flatten(x), [0], [nb * BLOCK_SIZE - n]), [nb, BLOCK_SIZE]);
  const absmax = reduceMax(abs(blocked), 1);
  // An all-zero block divides by the smallest normal float instead of 0 (its codes all mean 0).
  const normalised = reshape(div(blocked, reshape(maximum(absmax, 1.1754944e-38), [nb, 1])), [nb * BLOCK_SIZE]);
  const thresholds = constant(Float32Array.from(codeThresholds(code), (v) => (v === -Infinity ? -3.4e38 : v)), [code.length]);
  let idx: Tensor = constant(new BigInt64Array(nb * BLOCK_SIZE), [nb * BLOCK_SIZE], 'int64');
  for (let b = 128; b >= 1; b >>= 1) {
    const candidate = add(idx, b);
    idx = where(lessOrEqual(gather(thresholds, candidate), normalised), candidate, idx);
  }
  const codes = reshape(slice(cast(idx, 'uint8'), [0], [n]), x.shape);
  return { codes, absmax };
}
