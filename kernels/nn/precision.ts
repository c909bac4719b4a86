// Mixed precision for frozen base weights: big linear and conv weights are stored in bf16 or fp16
// (half the bytes of fp32) and widened to float32 inside the graph where the layer runs; adapters,
// optimizer state and the loss stay float32. The CPU EP has no bf16 Gemm/Conv kernels (and only some
// fp16 ones), so the multiply happens in float32 after the cast. GPU EPs multiply natively: a layer
// built with the EP's half dtypes (Builder.halfKernels, from `nativeHalfDtypes`) gets the stored weight
// as it is, casts its input down and its output back to float32 (ORT accumulates in fp32 inside its
// GEMM/conv kernels); bias and adapters stay float32.
import { constant, externalConstant, type DType, type ExternalBytes, type Tensor } from '../tensor';
import { cast } from '../ops/elementwise';
import { after } from '../ops/shape-and-reduce';
import { float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../io/dtypes';
import { bytesOf, readExternal, type WeightFile } from './weight-file';
import type { WeightSource, WeightUse } from './weights';
import type { ExecutionProvider } from '../runtime';

/**
 * Half dtypes an EP runs Gemm, Conv and ConvTranspose in natively: CUDA both, WebGPU float16 (it has no
 * bf16), the CPU EP neither: it has no bf16 kernels, and on x86 an fp16 Gemm or Conv gets casts to
 * float32 inserted by ORT itself (its output is not fp16-rounded), so there a half weight is widened.
 */
export function nativeHalfDtypes(ep: ExecutionProvider): readonly DType[] {
  return ep === 'cuda' ? ['float16', 'bfloat16'] : ep === 'webgpu' ? ['float16'] : [];
}

export const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface PrecisionWeightsOptions {
  precision: Precision;
  /** Weights with fewer elements stay float32 (norm scales, biases). Default 4096. */
  minElements?: number;
  /**
   * Write the narrowed weights here and hand them to graphs as external data, instead of keeping them
   * in JS memory beside ORT's copy (a model's weights would otherwise be resident twice).
   */
  file?: WeightFile;
}

/** Where a narrowed weight lives: in memory, or in a file (the weight file, or an fp16 checkpoint itself). */
type Stored = { bits: Uint16Array } | { external: ExternalBytes };

/**
 * A WeightSource storing an inner source's big `.weight` tensors in half precision. Each is read
 * through `after(stored, layer input)` and cast to float32, so ORT cannot fold the cast into a float32
 * initializer at load, and inside a recomputed block only one block's float32 copies exist at a time.
 * Weights the inner source leaves in their checkpoint file (external data) are read and narrowed here;
 * fp16 weights of an fp16 file stay in that file when the precision is fp16.
 */
export class PrecisionWeights implements WeightSource {
  private stored = new Map<string, Stored>();
  private storedByteCount = 0;
  constructor(readonly inner: WeightSource, readonly options: PrecisionWeightsOptions) {}

  get dtype() { return this.options.precision === 'bf16' ? 'bfloat16' as const : 'float16' as const; }

  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    if (this.options.precision === 'fp32' || !this.wants(path, shape)) return this.inner.get(path, shape, use);
    let s = this.stored.get(path);
    if (!s) {
      const t = this.inner.get(path, shape);
      const made = this.narrow(t);
      if (!made) return t;
      s = made;
      this.stored.set(path, s);
    }
    const w = 'bits' in s ? constant(s.bits, shape, this.dtype, path) : externalConstant(s.external, shape, this.dtype, path);
    const read = use?.after ? after(w, use.after) : w;
    return use?.native?.includes(this.dtype) ? read : cast(read, 'float32');
  }

  /** Bytes of the stored half-precision weights. */
  get storedBytes() { return this.storedByteCount; }

  /** The weight `t` (a float32 constant, or a cast of a float16 one) in this precision; undefined when it is something else. */
  private narrow(t: Tensor): Stored | undefined {
    const src = t.source;
    const fp16 = this.options.precision === 'fp16';
    let values: Float32Array | undefined;
    if (src.kind === 'const' && t.dtype === 'float32') {
      values = src.data ? (src.data as Float32Array) : src.external ? new Float32Array(readExternal(src.external).buffer) : undefined;
    } else if (src.kind === 'op' && src.op === 'cast' && src.inputs[0].dtype === 'float16' && src.inputs[0].source.kind === 'const') {
      const half = src.inputs[0].source;
      // An fp16 weight in fp16: as it is (left in its checkpoint file when it is there).
      if (fp16 && half.external) return this.count({ external: half.external }, half.external.length);
      const bits = half.data ? (half.data as Uint16Array) : half.external ? new Uint16Array(readExternal(half.external).buffer) : undefined;
      if (!bits) return undefined;
      if (fp16) return this.keep(bits);
      values = float16ToFloat32(bits);
    }
    if (!values) return undefined;
    return this.keep(this.options.precision === 'bf16' ? float32ToBfloat16(values) : float32ToFloat16(values));
  }

  private keep(bits: Uint16Array): Stored {
    const file = this.options.file;
    return this.count(file ? { external: file.append(bytesOf(bits)) } : { bits }, bits.byteLength);
  }

  private count(s: Stored, bytes: number): Stored { this.storedByteCount += bytes; return s; }

  private wants(path: string, shape: readonly number[]): boolean {
    if (!path.endsWith('.weight') || (shape.length !== 2 && shape.length !== 4)) return false;
    return shape.reduce((a, b) => a * b, 1) >= (this.options.minElements ?? 4096);
  }
}
