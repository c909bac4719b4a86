// The optimizer contract: per-parameter state tensors and an in-graph update rule. Optimizers are
// compositions of table ops, so the update lives inside the same ONNX graph as forward and backward.
import type { Tensor } from '../tensor';

/** Scalars fed to every step: learning rate and the 1-based step number (for bias correction). */
export interface StepScalars { lr: Tensor; step: Tensor }

export interface StateSpec { shape: number[]; dtype?: 'float32' | 'uint8' | 'int8'; init: number }

export interface Optimizer {
  readonly name: string;
  /** State tensors for a parameter of `shape`, keyed by a short name (e.g. `m`, `v`). */
  state(shape: readonly number[]): Record<string, StateSpec>;
  /** The new parameter and state, given the gradient. */
  update(param: Tensor, grad: Tensor, state: Record<string, Tensor>, s: StepScalars): { param: Tensor; state: Record<string, Tensor> };
}
