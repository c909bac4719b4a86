// 4-bit block-wise quantisation along each row: every `blockSize` weights share an absmax scale.
// NF4 (QLoRA) maps w / absmax to the nearest of 16 levels placed at normal quantiles; int4 is
// symmetric round(w / (absmax / 7)) in [-7, 7]. Codes are packed two per byte (see nibbles.ts).
import { packNibbles, unpackInt4, unpackUint4 } from './nibbles';
import { checkWeight, roundHalfEven, type QuantizedWeight } from './types';

/** The 16 NF4 levels from QLoRA (Dettmers et al. 2023), as bitsandbytes uses them. */
export const NF4_LEVELS: readonly number[] = Object.freeze([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
]);
const NF4_ZERO_CODE = 7;
/** Decision thresholds: code i is chosen for x in (MID[i-1], MID[i]]. */
const NF4_MIDPOINTS = NF4_LEVELS.slice(1).map((v, i) => (v + NF4_LEVELS[i]) / 2);

function nearestNf4(x: number): number {
  let lo = 0;
  let hi = NF4_MIDPOINTS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x > NF4_MIDPOINTS[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function quantize4bit(
  weight: Float32Array,
  shape: readonly number[],
  scheme: 'nf4' | 'int4',
  blockSize = 64,
): QuantizedWeight {
  const [rows, cols] = checkWeight(weight, shape);
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
  const blocksPerRow = Math.ceil(cols / blockSize);
  const scales = new Float32Array(rows * blocksPerRow);
  const codes = new Uint8Array(rows * cols);
  const qmax = scheme === 'int4' ? 7 : 1;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const start = r * cols + b * blockSize;
      const end = r * cols + Math.min(cols, (b + 1) * blockSize);
      let absmax = 0;
      for (let i = start; i < end; i++) {
        const a = Math.abs(weight[i]);
        if (a > absmax) absmax = a;
      }
      const scale = Math.fround(absmax / qmax);
      scales[r * blocksPerRow + b] = scale;
      if (scale === 0) {
        codes.fill(scheme === 'int4' ? 0 : NF4_ZERO_CODE, start, end);
      } else if (scheme === 'int4') {
        for (let i = start; i < end; i++) {
          const q = roundHalfEven(weight[i] / scale);
          codes[i] = (q > 7 ? 7 : q < -7 ? -7 : q) & 0xf;
        }
      } else {
        for (let i = start; i < end; i++) codes[i] = nearestNf4(weight[i] / scale);
      }
    }
  }
  const packed = packNibbles(codes);
  return {
    scheme,
    shape: [rows, cols],
    packed,
    packedType: scheme === 'int4' ? 'int4' : 'uint4',
    scales,
    scaleShape: [rows, blocksPerRow],
    blockSize,
    bytes: packed.byteLength + scales.byteLength,
  };
}

export function dequantize4bit(q: QuantizedWeight): Float32Array {
  const [rows, cols] = q.shape;
  const blockSize = q.blockSize!;
  const blocksPerRow = q.scaleShape[1];
  const n = rows * cols;
  const packed = q.packed as Uint8Array;
  const out = new Float32Array(n);
  if (q.scheme === 'int4') out.set(unpackInt4(packed, n));
  else {
    const codes = unpackUint4(packed, n);
    for (let i = 0; i < n; i++) out[i] = NF4_LEVELS[codes[i]];
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] *= q.scales[r * blocksPerRow + Math.floor(c / blockSize)];
  }
  return out;
}
