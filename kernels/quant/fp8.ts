// fp8 e4m3fn quantisation: w / scale stored as e4m3 bits with scale = absmax / 448 per tensor (or per
// output channel), the layout DequantizeLinear reads for float8e4m3fn input.
import { float32ToFloat8E4M3, float8E4M3ToFloat32, FLOAT8_E4M3_MAX } from '../io/dtypes';
import { checkWeight, type QuantizedWeight } from './types';

export function quantizeFp8(weight: Float32Array, shape: readonly number[], per: 'tensor' | 'channel' = 'tensor'): QuantizedWeight {
  const [rows, cols] = checkWeight(weight, shape);
  const groups = per === 'channel' ? rows : 1;
  const groupSize = (rows * cols) / groups;
  const scales = new Float32Array(groups);
  const scaled = new Float32Array(rows * cols);
  for (let g = 0; g < groups; g++) {
    let absmax = 0;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) {
      const a = Math.abs(weight[i]);
      if (a > absmax) absmax = a;
    }
    const scale = Math.fround(absmax / FLOAT8_E4M3_MAX);
    scales[g] = scale;
    if (scale === 0) continue;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) scaled[i] = weight[i] / scale;
  }
  const packed = float32ToFloat8E4M3(scaled);
  return {
    scheme: 'fp8_e4m3',
    shape: [rows, cols],
    packed,
    packedType: 'float8e4m3fn',
    scales,
    scaleShape: [groups],
    bytes: packed.byteLength + scales.byteLength,
  };
}

export function dequantizeFp8(q: QuantizedWeight): Float32Array {
  const out = float8E4M3ToFloat32(q.packed as Uint8Array);
  const groupSize = out.length / q.scales.length;
  for (let i = 0; i < out.length; i++) out[i] *= q.scales[Math.floor(i / groupSize)];
  return out;
}
