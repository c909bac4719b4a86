// int8 per-output-channel quantisation: each row gets a symmetric absmax scale (absmax / 127), the
// layout DequantizeLinear(x, scale, axis=0) reads.
import { checkWeight, roundHalfEven, type QuantizedWeight } from './types';

export function quantizeInt8(weight: Float32Array, shape: readonly number[]): QuantizedWeight {
  const [rows, cols] = checkWeight(weight, shape);
  const packed = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = weight.subarray(r * cols, (r + 1) * cols);
    let absmax = 0;
    for (const v of row) absmax = Math.max(absmax, Math.abs(v));
    const scale = Math.fround(absmax / 127);
    scales[r] = scale;
    if (scale === 0) continue;
    for (let c = 0; c < cols; c++) {
      packed[r * cols + c] = Math.max(-127, Math.min(127, roundHalfEven(row[c] / scale)));
    }
  }
  return {
    scheme: 'int8',
    shape: [rows, cols],
    packed,
    packedType: 'int8',
    scales,
    scaleShape: [rows],
    bytes: packed.byteLength + scales.byteLength,
  };
}

export function dequantizeInt8(q: QuantizedWeight): Float32Array {
  const [rows, cols] = q.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = q.scales[r];
    for (let c = 0; c < cols; c++) out[r * cols + c] = q.packed[r * cols + c] * s;
  }
  return out;
}
