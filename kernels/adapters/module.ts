// What one adapted layer contributes: its trainable tensors (kohya/LyCORIS names, shapes, init), the
// term added to the frozen layer's output inside the graph, and the same change as a weight delta on
// the host (for merging into the base weights).
import type { Tensor } from '../tensor';
import type { ModuleInfo } from '../nn/builder';

export type AdapterAlgo = 'lora' | 'locon' | 'lokr';

export interface AdapterParam {
  /** Full tensor name in the saved file, e.g. `lora_unet_mid_block_attentions_0_proj_in.lora_down.weight`. */
  key: string;
  shape: number[];
  /** `kaiming`: uniform(±1/√fanIn), torch's kaiming_uniform_(a=√5) as kohya and LyCORIS use; `zeros`. */
  init: 'kaiming' | 'zeros';
  fanIn: number;
}

export interface AdapterModule {
  readonly algo: AdapterAlgo;
  /** kohya name (the key prefix of this module's tensors). */
  readonly name: string;
  readonly info: ModuleInfo;
  readonly rank: number;
  /** The value saved as `<name>.alpha`. */
  readonly alpha: number;
  /** alpha / rank (1 for LoKr with both factors full). */
  readonly scale: number;
  readonly params: AdapterParam[];
  /**
   * The scaled output change for input `x` (× scale, not × multiplier). `param` returns the tensor of a
   * key; `dropoutMask` (training only) returns a mask input for the down projection's output shape.
   */
  delta(x: Tensor, param: (key: string) => Tensor, dropoutMask?: (shape: readonly number[]) => Tensor): Tensor;
  /** The same change as a weight delta (× scale), float64, laid out like the frozen weight. */
  weightDelta(value: (key: string) => Float32Array): Float64Array;
}

/** Dense float64 product a[m,k] · b[k,n]. */
export function matmulHost(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let r = 0; r < k; r++) {
      const av = a[i * k + r];
      if (av === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += av * b[r * n + j];
    }
  }
  return out;
}
