// Host-side quantisation of frozen base weights ([out, in] Linear matrices) and the reference
// dequantisation the in-graph version is checked against.
import { dequantize4bit, quantize4bit } from './blockwise4bit';
import { dequantizeFp8, quantizeFp8 } from './fp8';
import { dequantizeInt8, quantizeInt8 } from './int8';
import { QUANT_SCHEMES, type QuantizedWeight, type QuantizeOptions, type QuantScheme } from './types';

export { NF4_LEVELS } from './blockwise4bit';
export { packNibbles, unpackInt4, unpackUint4 } from './nibbles';
export { QUANT_SCHEMES, type PackedElementType, type QuantizedWeight, type QuantizeOptions, type QuantScheme } from './types';

export function quantizeWeight(
  weight: Float32Array,
  shape: readonly number[],
  scheme: QuantScheme,
  opts: QuantizeOptions = {},
): QuantizedWeight {
  switch (scheme) {
    case 'int8':
      return quantizeInt8(weight, shape);
    case 'nf4':
    case 'int4':
      return quantize4bit(weight, shape, scheme, opts.blockSize ?? 64);
    case 'fp8_e4m3':
      return quantizeFp8(weight, shape, opts.fp8Scale ?? 'tensor');
    default:
      throw new RangeError(`unknown quantisation scheme "${String(scheme)}" (known: ${QUANT_SCHEMES.join(', ')})`);
  }
}

/** The float32 weight a quantised one stands for (row-major [out, in]). */
export function dequantizeWeight(q: QuantizedWeight): Float32Array {
  switch (q.scheme) {
    case 'int8':
      return dequantizeInt8(q);
    case 'nf4':
    case 'int4':
      return dequantize4bit(q);
    case 'fp8_e4m3':
      return dequantizeFp8(q);
  }
}
