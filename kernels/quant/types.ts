// The value a Quantize node produces for one frozen weight matrix: packed integers or fp8 bits plus
// fp32 scales, laid out the way ONNX's DequantizeLinear (or a Gather over NF4 levels) reads them,
// so the in-graph dequantisation is a direct mapping of these fields.

export const QUANT_SCHEMES = ['int8', 'nf4', 'int4', 'fp8_e4m3'] as const;
export type QuantScheme = (typeof QUANT_SCHEMES)[number];

/**
 * ONNX element type of `packed`: int8 (one per byte), int4/uint4 (two per byte, element 2i in the low
 * nibble, as ONNX packs INT4/UINT4), float8e4m3fn (one per byte).
 */
export type PackedElementType = 'int8' | 'int4' | 'uint4' | 'float8e4m3fn';

export interface QuantizedWeight {
  scheme: QuantScheme;
  /** [out, in], row-major, as a Linear layer's weight. */
  shape: [number, number];
  packed: Int8Array | Uint8Array;
  packedType: PackedElementType;
  /**
   * fp32 scales. int8: [out] (axis 0). 4-bit: [out, ceil(in / blockSize)] (axis 1, ONNX blocked
   * quantisation). fp8: [1] per tensor or [out] per channel.
   */
  scales: Float32Array;
  scaleShape: number[];
  /** 4-bit schemes: elements per scale along the input dimension. */
  blockSize?: number;
  /** Bytes of packed data plus scales. */
  bytes: number;
}

export interface QuantizeOptions {
  /** 4-bit schemes: weights per absmax block along each row. Default 64. */
  blockSize?: number;
  /** fp8: one scale for the tensor (default) or one per output channel. */
  fp8Scale?: 'tensor' | 'channel';
}

/** Checks a weight against its [out, in] shape and refuses non-finite values (a corrupt checkpoint). */
export function checkWeight(weight: Float32Array, shape: readonly number[]): [number, number] {
  if (shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`quantize needs a 2-D [out, in] shape of positive integers, got [${shape.join(', ')}]`);
  }
  const [rows, cols] = shape;
  if (weight.length !== rows * cols) {
    throw new RangeError(`weight has ${weight.length} elements but shape [${rows}, ${cols}] needs ${rows * cols}`);
  }
  for (let i = 0; i < weight.length; i++) {
    if (!Number.isFinite(weight[i])) {
      throw new RangeError(`weight has a non-finite value (${weight[i]}) at [${Math.floor(i / cols)}, ${i % cols}]`);
    }
  }
  return [rows, cols];
}

/** Round half to even, as ONNX QuantizeLinear rounds. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
