// Trainable weights for pretraining the tiny model from scratch: a weight source that hands the model
// code graph inputs (so TrainStep can feed and update them) and torch-style initial values drawn from
// the project Rng, one independent stream per tensor name so the order of creation does not matter.
import { input, type HostTensor, type Tensor } from '../../tensor';
import type { WeightSource } from '../../nn/weights';
import { Rng } from '../../random';

/** Every weight the model asks for becomes a float32 graph input named by its diffusers path. */
export class TrainableWeights implements WeightSource {
  readonly params = new Map<string, Tensor>();
  constructor(readonly prefix = '') {}

  get(path: string, shape: readonly number[]): Tensor {
    const name = this.prefix + path;
    const prev = this.params.get(name);
    if (prev) {
      if (prev.shape.join() !== shape.join()) throw new Error(`'${name}' requested with shapes [${prev.shape}] and [${shape}]`);
      return prev;
    }
    const t = input(name, shape, 'float32');
    this.params.set(name, t);
    return t;
  }

  record(): Record<string, Tensor> {
    return Object.fromEntries(this.params);
  }
}

/**
 * The initial value of a parameter, as torch's defaults give it: linear/conv weights uniform in
 * ±1/√fan_in, biases zero, norm scales one, token embeddings N(0, 0.02), position embeddings
 * N(0, 0.01) (CLIP's initialiser).
 */
export function initialValue(name: string, shape: readonly number[], seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const rng = new Rng(seed).fork(name);
  if (/token_embedding\.weight$/.test(name)) rng.fillNormal(data, 0, 0.02);
  else if (/position_embedding\.weight$/.test(name)) rng.fillNormal(data, 0, 0.01);
  else if (name.endsWith('.bias')) { /* zero */ }
  else if (shape.length === 1) data.fill(1);
  else {
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    rng.fillUniform(data, -bound, bound);
  }
  return { dtype: 'float32', shape: [...shape], data };
}

export function initialValues(params: Record<string, Tensor>, seed: number): Record<string, HostTensor> {
  return Object.fromEntries(Object.entries(params).map(([k, t]) => [k, initialValue(k, t.shape, seed)]));
}

/** Linear warmup then cosine decay to `floor`·peak: the learning rate of step s (1-based). */
export function warmupCosine(step: number, total: number, peak: number, warmup: number, floor = 0.1): number {
  if (step <= warmup) return (peak * step) / warmup;
  const p = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * p)));
}
