// The optimizer contract: per-parameter state tensors and an in-graph update rule. Optimizers are
// compositions of table ops, so the update lives inside the same ONNX graph as forward and backward.
import type { Tensor } from '../tensor';

/** Scalars fed to every step: learning rate and the 1-based step number (for bias correction). */
export interface StepScalars { lr: Tensor; step: Tensor }

/**
 * One state tensor. `init` is a fill value, or 'param' to start as a copy of the parameter's initial
 * value (Prodigy's p0, the EMA copy).
 */
export interface StateSpec { shape: number[]; dtype?: 'float32' | 'uint8' | 'int8'; init: number | 'param' }

/** One parameter as a whole-set update sees it. */
export interface ParamSlot { param: Tensor; grad: Tensor; state: Record<string, Tensor> }

export interface Optimizer {
  readonly name: string;
  /** State tensors for a parameter of `shape`, keyed by a short name (e.g. `m`, `v`). */
  state(shape: readonly number[]): Record<string, StateSpec>;
  /** The new parameter and state, given the gradient. */
  update(param: Tensor, grad: Tensor, state: Record<string, Tensor>, s: StepScalars): { param: Tensor; state: Record<string, Tensor> };
  /**
   * State shared by all parameters (Prodigy's step-size estimate d). When present, TrainStep calls
   * `updateAll` instead of `update`, because the new values depend on every parameter at once.
   */
  shared?(): Record<string, StateSpec>;
  updateAll?(slots: ParamSlot[], shared: Record<string, Tensor>, s: StepScalars): { params: Tensor[]; states: Record<string, Tensor>[]; shared: Record<string, Tensor> };
}
