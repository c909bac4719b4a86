// int8 per-output-channel quantisation: each row gets a symmetric absmax scale (absmax / 127), the
// layout DequantizeLinear(x, scale, axis=0) reads.
import { checkWeight, roundHalfEven, type QuantizedWeight } from './types';

export function quantizeInt8(weight: Float32Array, shape: readonly number[]): QuantizedWeight {
  const [rows, cols] = checkWeight(weight, shape);
  const packed = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const start = r * cols;
    const end = start + cols;
    let absmax = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(weight[i]);
      if (a > absmax) absmax = a;
    }
    const scale = Math.fround(absmax / 127);
    scales[r] = scale;
    if (scale === 0) continue;
    // |w| <= absmax, so |w / scale| <= 127 up to rounding of the scale: clamp for that last ulp.
    for (let i = start; i < end; i++) {
      const q = roundHalfEven(weight[i] / scale);
      packed[i] = q > 127 ? 127 : q < -127 ? -127 : q;
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
