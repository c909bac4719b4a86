// The layer factory model code builds with. Every trainable-by-adapter layer (linear, conv) goes
// through here, so adapters (LoRA, LoCon, LoKr) are injected in one place, by module path, and the
// builder keeps the list of modules it made (for target selection and parameter counts).
import type { DType, Tensor } from '../tensor';
import { recompute } from '../autodiff';
import { conv2d, groupNorm, layerNorm, linear } from '../ops/nn';
import { add, cast } from '../ops/elementwise';
import { reshape } from '../ops/shape-and-reduce';
import type { WeightSource } from './weights';

export interface LinearInfo { kind: 'linear'; module: string; inFeatures: number; outFeatures: number }
export interface ConvInfo { kind: 'conv'; module: string; inChannels: number; outChannels: number; kernel: [number, number]; stride: number; padding: number; groups: number }
export type ModuleInfo = LinearInfo | ConvInfo;

/**
 * An adapter hook: given a module and its input, returns the term to add to the frozen layer's
 * output (or undefined to leave the module alone). Called while the graph is being built.
 */
export type AdapterHook = (info: ModuleInfo, x: Tensor) => Tensor | undefined;

export class Builder {
  readonly modules: ModuleInfo[] = [];
  /**
   * Gradient checkpointing: `block` bodies are recomputed in the backward pass instead of keeping
   * their activations (kernels/autodiff.ts `recompute`). Scopes inherit it.
   */
  gradientCheckpointing = false;
  /**
   * Memory-efficient attention (kernels/dit/layers.ts `ditAttention`): query rows per chunk, 0 for plain
   * attention; undefined picks chunks from a memory budget at large sizes. Scopes inherit it.
   */
  attentionChunk: number | undefined = undefined;
  /**
   * Half dtypes the runtime's EP multiplies in (kernels/nn/precision.ts `nativeHalfDtypes`): a frozen
   * weight stored in one of them is used as it is, the layer's input cast down and its output cast back
   * to float32. Empty (the CPU EP): half weights are widened and the multiply is float32. Scopes inherit it.
   */
  halfKernels: readonly DType[] = [];
  constructor(readonly weights: WeightSource, readonly adapter?: AdapterHook, readonly prefix = '') {}

  /** A builder for a sub-model whose paths start with `prefix.` (same weights and hook). */
  scope(prefix: string): Builder {
    const b = new Builder(this.weights, this.adapter, this.path(prefix));
    b.gradientCheckpointing = this.gradientCheckpointing;
    b.attentionChunk = this.attentionChunk;
    b.halfKernels = this.halfKernels;
    // Sub-builders report modules into the root list.
    (b as { modules: ModuleInfo[] }).modules = this.modules;
    return b;
  }

  /**
   * A block boundary (a resnet, a transformer block): with gradientCheckpointing on, the backward pass
   * keeps only what flows into `body` and recomputes the rest. Weights the body asks for (dequantised or
   * cast ones included) are rebuilt with it, so one block's worth exists at a time.
   */
  block<T extends Tensor | Tensor[]>(body: () => T): T {
    return this.gradientCheckpointing ? recompute(body) : body();
  }

  path(name: string) { return this.prefix ? `${this.prefix}.${name}` : name; }
  param(name: string, shape: readonly number[]) { return this.weights.get(this.path(name), shape); }

  linear(name: string, x: Tensor, inFeatures: number, outFeatures: number, bias = true): Tensor {
    const module = this.path(name);
    const info: LinearInfo = { kind: 'linear', module, inFeatures, outFeatures };
    this.modules.push(info);
    const w = this.weights.get(`${module}.weight`, [outFeatures, inFeatures], { after: x, native: this.halfKernels });
    let y = this.frozen(x, w, (xw) => linear(xw, w));
    if (bias) y = add(y, this.weights.get(`${module}.bias`, [outFeatures]));
    const delta = this.adapter?.(info, x);
    return delta ? add(y, delta) : y;
  }

  conv(name: string, x: Tensor, inChannels: number, outChannels: number, kernel: number, opts: { stride?: number; padding?: number; groups?: number; bias?: boolean } = {}): Tensor {
    const module = this.path(name);
    const { stride = 1, padding = 0, groups = 1, bias = true } = opts;
    const info: ConvInfo = { kind: 'conv', module, inChannels, outChannels, kernel: [kernel, kernel], stride, padding, groups };
    this.modules.push(info);
    const w = this.weights.get(`${module}.weight`, [outChannels, inChannels / groups, kernel, kernel], { after: x, native: this.halfKernels });
    let y = this.frozen(x, w, (xw) => conv2d(xw, w, undefined, { stride, padding, groups }));
    if (bias) y = add(y, reshape(this.weights.get(`${module}.bias`, [outChannels]), [1, outChannels, 1, 1]));
    const delta = this.adapter?.(info, x);
    return delta ? add(y, delta) : y;
  }

  /**
   * A frozen layer's multiply `f` in the weight's dtype: a half weight handed over as stored (for the
   * EP's native kernels) gets the input cast down and gives its output back in the input's dtype, so the
   * bias, the adapter branch and every gradient outside the multiply stay float32.
   */
  private frozen(x: Tensor, w: Tensor, f: (x: Tensor) => Tensor): Tensor {
    return w.dtype !== x.dtype && this.halfKernels.includes(w.dtype) ? cast(f(cast(x, w.dtype)), x.dtype) : f(x);
  }

  groupNorm(name: string, x: Tensor, groups: number, channels: number, eps = 1e-5): Tensor {
    return groupNorm(x, groups, this.param(`${name}.weight`, [channels]), this.param(`${name}.bias`, [channels]), eps);
  }

  layerNorm(name: string, x: Tensor, dim: number, eps = 1e-5): Tensor {
    return layerNorm(x, this.param(`${name}.weight`, [dim]), this.param(`${name}.bias`, [dim]), eps);
  }
}

