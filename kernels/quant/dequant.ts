// In-graph dequantisation of frozen base weights: the packed bytes and scales are graph constants and
// a few table ops rebuild the float32 weight inside the ONNX graph, at run time. Every scheme starts with
// a DequantizeLinear on the packed bytes because ORT's constant folding skips that op: folded, the
// float32 weights would be materialised at session load (more memory than a float32 base, measured by
// bench:sd15). int8: DequantizeLinear with the per-row scales. 4-bit: the bytes as floats, nibbles split
// with integer division, looked up in a 16-entry codebook (NF4 levels, or the two's-complement int4
// values) × block scales. fp8 e4m3: the byte looked up in a 256-entry table of e4m3 values × scale.
import { constant, externalConstant, type ExternalBytes, type Tensor } from '../tensor';
import { cast, dequantizeLinear, div, mul, sub } from '../ops/elementwise';
import { after, concat, gather, pad, reshape, slice, unsqueeze } from '../ops/shape-and-reduce';
import { float8E4M3BitsToFloat } from '../io/dtypes';
import { NF4_LEVELS } from './blockwise4bit';
import type { QuantizedWeight } from './types';

/** Where a weight's packed bytes and scales were written (QuantizedWeights' `file`). */
export interface StoredQuantized { packed: ExternalBytes; scales: ExternalBytes }

const INT4_VALUES = Float32Array.from({ length: 16 }, (_, i) => (i >= 8 ? i - 16 : i));
/** byte → [level of its low nibble, level of its high nibble] (element 2i is the low nibble). */
const pairTable = (levels: ArrayLike<number>) => Float32Array.from({ length: 512 }, (_, i) => levels[i & 1 ? (i >> 1) >> 4 : (i >> 1) & 15]);
const NF4_PAIRS = pairTable(NF4_LEVELS);
const INT4_PAIRS = pairTable(INT4_VALUES);
const FP8_E4M3_VALUES = Float32Array.from({ length: 256 }, (_, i) => float8E4M3BitsToFloat(i));

/**
 * 4-bit codes (int32, [count]) from bytes holding two each, low nibble first (ONNX INT4/UINT4 layout).
 * `packed` is uint8, or float32 holding the byte values.
 */
export function unpackNibbles(packed: Tensor, count: number): Tensor {
  const bytes = cast(packed, 'int32');
  const high = div(bytes, 16); // integer division truncates: the high nibble
  const low = sub(bytes, mul(high, 16));
  const pairs = concat([unsqueeze(low, -1), unsqueeze(high, -1)], -1); // [bytes, 2]: element 2i then 2i+1
  return slice(reshape(pairs, [packed.size * 2]), [0], [count]);
}

/** Byte values as float32 (exact for 0…255) through DequantizeLinear, which ORT does not constant-fold. */
const unfoldable = (bytes: Tensor) => dequantizeLinear(bytes, 1);

/**
 * The float32 weight of `q` as a subgraph, reshaped to `shape` (e.g. a conv's [out, in, kh, kw] when
 * it was quantised as [out, in·kh·kw]). `name` prefixes the constants (`<name>.qweight`, `<name>.scales`).
 * `dep` (the layer's input): the packed bytes are read through `after(bytes, dep)`, so the float32
 * weight is made when the layer runs and, in a recomputed block, again in the backward pass.
 */
export function dequantizeInGraph(q: QuantizedWeight, name: string, shape: readonly number[] = q.shape, dep?: Tensor, stored?: StoredQuantized): Tensor {
  const [rows, cols] = q.shape;
  const gated = (t: Tensor) => (dep ? after(t, dep) : t);
  const scales = stored ? externalConstant(stored.scales, q.scaleShape, 'float32', `${name}.scales`) : constant(q.scales, q.scaleShape, 'float32', `${name}.scales`);
  // The packed bytes, in memory or where they were written (an int8 array or bytes, by scheme).
  const packed = (dims: number[], dtype: 'int8' | 'uint8') =>
    (stored ? externalConstant(stored.packed, dims, dtype, `${name}.qweight`) : constant(q.packed as Int8Array | Uint8Array, dims, dtype, `${name}.qweight`));
  let w: Tensor;
  switch (q.scheme) {
    case 'int8': {
      const codes = gated(packed([rows, cols], 'int8'));
      w = dequantizeLinear(codes, scales);
      break;
    }
    case 'nf4':
    case 'int4': {
      const bytes = gated(packed([Math.ceil((rows * cols) / 2)], 'uint8'));
      // One lookup per byte in a 256 × 2 table of (low nibble, high nibble) levels: fewer and smaller
      // intermediates than splitting nibbles with integer ops (the whole weight exists as int32 twice).
      // One table per scheme, shared by every layer (same name and data: one initializer).
      const pairs = constant(q.scheme === 'nf4' ? NF4_PAIRS : INT4_PAIRS, [256, 2], 'float32', `${q.scheme}.codebook_pairs`);
      const nbytes = Math.ceil((rows * cols) / 2);
      // Gated bytes cannot be folded; ungated ones go through DequantizeLinear (one more 4-byte copy).
      const both = reshape(gather(pairs, cast(dep ? bytes : unfoldable(bytes), 'int32')), [nbytes * 2]);
      const values = reshape(nbytes * 2 === rows * cols ? both : slice(both, [0], [rows * cols]), [rows, cols]);
      const bs = q.blockSize!;
      const nb = q.scaleShape[1];
      const blocked = reshape(pad(values, [0, 0], [0, nb * bs - cols]), [rows, nb, bs]);
      w = slice(reshape(mul(blocked, reshape(scales, [rows, nb, 1])), [rows, nb * bs]), [0], [cols], [1]);
      break;
    }
    case 'fp8_e4m3': {
      const codes = gated(packed([rows, cols], 'uint8'));
      const table = constant(FP8_E4M3_VALUES, [256], 'float32', `${name}.fp8_table`);
      const values = gather(table, cast(dep ? codes : unfoldable(codes), 'int32'));
      w = mul(values, q.scaleShape.reduce((a, b) => a * b, 1) === 1 ? reshape(scales, []) : reshape(scales, [rows, 1]));
      break;
    }
    default:
      throw new Error(`${name}: unknown quantisation scheme '${String((q as QuantizedWeight).scheme)}'`);
  }
  return reshape(w, shape);
}
