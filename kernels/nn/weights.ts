// Where a model's frozen weights come from. Model code asks for tensors by module path (diffusers
// naming, e.g. `down_blocks.0.resnets.0.conv1.weight`); a source answers with a graph constant,
// a dequantising subgraph, a graph input, or just records the request (shape-only).
import { constant, input, type DType, type HostTensor, type Tensor } from '../tensor';

export interface WeightSource {
  /**
   * The frozen tensor at `path`, which must have `shape`. Throws naming the path when missing or
   * mis-shaped. `use.after`: the layer's input; sources that store weights packed or in half precision
   * read the stored constant through `after(stored, input)` so the float32 copy is made when the layer
   * runs (one layer's worth at a time) instead of being folded into a float32 initializer at load.
   * `use.native`: half dtypes the caller multiplies in (a GPU EP's); a weight stored in one of them
   * comes back in it, not widened, and the caller casts its input to match.
   */
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor;
}

export interface WeightUse { after?: Tensor; native?: readonly DType[] }

/** Weights held in memory as host tensors (a loaded checkpoint, or random init for tests). */
export class HostWeights implements WeightSource {
  readonly used = new Set<string>();
  constructor(readonly tensors: Map<string, HostTensor>, readonly label = 'weights') {}

  get(path: string, shape: readonly number[]): Tensor {
    const t = this.tensors.get(path);
    if (!t) throw new Error(`${this.label}: missing tensor '${path}' (expected [${shape.join(',')}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${this.label}: tensor '${path}' has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`);
    }
    this.used.add(path);
    return constant(t.data, t.shape, t.dtype, path);
  }

  /** Tensors the model never asked for (an unexpected key in a checkpoint). */
  unused(): string[] { return [...this.tensors.keys()].filter((k) => !this.used.has(k)); }
}

/**
 * Records every requested path and shape and hands back placeholder inputs: enough to build a
 * model symbolically (parameter names, counts, module lists) without allocating a single weight.
 */
export class ShapeRecorder implements WeightSource {
  readonly shapes = new Map<string, number[]>();
  constructor(readonly dtype: DType = 'float32') {}
  get(path: string, shape: readonly number[]): Tensor {
    const prev = this.shapes.get(path);
    if (prev && prev.join() !== shape.join()) throw new Error(`'${path}' requested with two shapes`);
    this.shapes.set(path, [...shape]);
    return input(path, shape, this.dtype);
  }
}

/** Random-normal weights for tests and benchmarks (deterministic from a seed), created on request. */
export class RandomWeights implements WeightSource {
  readonly tensors = new Map<string, HostTensor>();
  private s: number;
  constructor(seed = 1, readonly std = 0.02) { this.s = seed >>> 0 || 1; }
  private uniform() { this.s ^= this.s << 13; this.s ^= this.s >>> 17; this.s ^= this.s << 5; return ((this.s >>> 0) + 0.5) / 2 ** 32; }
  get(path: string, shape: readonly number[]): Tensor {
    let t = this.tensors.get(path);
    if (!t) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      const isNormScale = /norm.*\.weight$|ln_.*\.weight$|layer_norm.*\.weight$/.test(path);
      for (let i = 0; i < n; i++) {
        data[i] = isNormScale ? 1 : this.std * Math.sqrt(-2 * Math.log(this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
      }
      t = { dtype: 'float32', shape: [...shape], data };
      this.tensors.set(path, t);
    }
    return constant(t.data, t.shape, t.dtype, path);
  }
}
