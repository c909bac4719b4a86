// Mixed precision for frozen base weights: big linear and conv weights are stored in bf16 or fp16
// (half the bytes of fp32) and widened to float32 inside the graph where the layer runs; adapters,
// optimizer state and the loss stay float32. The CPU EP has no bf16 Gemm/Conv kernels (and only some
// fp16 ones), so the multiply happens in float32 after the cast; on GPU EPs the same stored weights
// feed native half-precision kernels once the graph casts the activations down (not done yet).
import { constant, type Tensor } from '../tensor';
import { cast } from '../ops/elementwise';
import { after } from '../ops/shape-and-reduce';
import { float32ToBfloat16, float32ToFloat16 } from '../io/dtypes';
import type { WeightSource, WeightUse } from './weights';

export const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface PrecisionWeightsOptions {
  precision: Precision;
  /** Weights with fewer elements stay float32 (norm scales, biases). Default 4096. */
  minElements?: number;
}

/**
 * A WeightSource storing an inner source's big `.weight` tensors in half precision. Each is read
 * through `after(stored, layer input)` and cast to float32, so ORT cannot fold the cast into a float32
 * initializer at load, and inside a recomputed block only one block's float32 copies exist at a time.
 */
export class PrecisionWeights implements WeightSource {
  private stored = new Map<string, Uint16Array>();
  constructor(readonly inner: WeightSource, readonly options: PrecisionWeightsOptions) {}

  get dtype() { return this.options.precision === 'bf16' ? 'bfloat16' as const : 'float16' as const; }

  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    if (this.options.precision === 'fp32' || !this.wants(path, shape)) return this.inner.get(path, shape, use);
    let bits = this.stored.get(path);
    if (!bits) {
      const t = this.inner.get(path, shape);
      const src = t.source;
      // Only in-memory float32 constants are narrowed here (load the checkpoint without external data).
      if (src.kind !== 'const' || !src.data || t.dtype !== 'float32') return t;
      const data = src.data as Float32Array;
      bits = this.options.precision === 'bf16' ? float32ToBfloat16(data) : float32ToFloat16(data);
      this.stored.set(path, bits);
    }
    const w = constant(bits, shape, this.dtype, path);
    return cast(use?.after ? after(w, use.after) : w, 'float32');
  }

  /** Bytes of the stored half-precision weights. */
  get storedBytes() { let n = 0; for (const b of this.stored.values()) n += b.byteLength; return n; }

  private wants(path: string, shape: readonly number[]): boolean {
    if (!path.endsWith('.weight') || (shape.length !== 2 && shape.length !== 4)) return false;
    return shape.reduce((a, b) => a * b, 1) >= (this.options.minElements ?? 4096);
  }
}
