// Training losses on prediction vs target: element-wise MSE, L1, Huber (torch's, with `delta`) and
// pseudo-Huber (kohya's `huber` loss_type, parameter c), reduced per sample so each sample can be
// weighted (min-SNR-γ), then averaged over the batch.
import type { Tensor } from '../tensor';
import { abs, add, div, lessOrEqual, maximum, mul, sqrt, sub, where } from '../ops/elementwise';
import { reduceMean, reduceSum } from '../ops/shape-and-reduce';

export type LossType = 'mse' | 'l1' | 'huber' | 'pseudo_huber';

export interface LossOptions {
  type?: LossType;
  /** Huber: quadratic below delta, linear above (torch.nn.functional.huber_loss). Default 1. */
  delta?: number;
  /** Pseudo-Huber: 2c(√((p−t)² + c²) − c) (kohya's huber_c). Default 0.1. */
  c?: number;
}

/** The element-wise loss, same shape as the prediction. */
export function elementLoss(pred: Tensor, target: Tensor, o: LossOptions = {}): Tensor {
  const d = sub(pred, target);
  switch (o.type ?? 'mse') {
    case 'mse': return mul(d, d);
    case 'l1': return abs(d);
    case 'huber': {
      const delta = o.delta ?? 1;
      if (!(delta > 0)) throw new Error(`huber delta must be > 0, got ${delta}`);
      const a = abs(d);
      return where(lessOrEqual(a, delta), mul(mul(d, d), 0.5), mul(sub(a, 0.5 * delta), delta));
    }
    case 'pseudo_huber': {
      const c = o.c ?? 0.1;
      if (!(c > 0)) throw new Error(`pseudo-Huber c must be > 0, got ${c}`);
      return mul(sub(sqrt(add(mul(d, d), c * c)), c), 2 * c);
    }
    default: throw new Error(`unknown loss type '${String(o.type)}' (expected mse, l1, huber or pseudo_huber)`);
  }
}

/**
 * Mean over every axis but the first: one loss per sample, shape [B]. With `mask` (1 where the loss counts,
 * broadcastable to the prediction, same rank) the mean is over the counted elements only.
 */
export function perSampleLoss(pred: Tensor, target: Tensor, o: LossOptions = {}, mask?: Tensor): Tensor {
  const e = elementLoss(pred, target, o);
  const axes = [...Array(e.rank - 1).keys()].map((i) => i + 1);
  if (!mask) return e.rank > 1 ? reduceMean(e, axes) : e;
  if (mask.rank !== e.rank) throw new Error(`loss mask [${mask.shape}] must have the prediction's rank ${e.rank}`);
  // A broadcast axis repeats the same flags, so the share counted is the mask's own mean.
  const counted = reduceMean(mask, axes);
  return div(reduceMean(mul(e, mask), axes), maximum(counted, 1e-12));
}

/** Batch mean of per-sample losses, optionally weighted per sample ([B], e.g. min-SNR-γ weights). */
export function batchLoss(perSample: Tensor, weights?: Tensor): Tensor {
  if (!weights) return reduceMean(perSample);
  if (weights.shape.join() !== perSample.shape.join()) throw new Error(`loss weights [${weights.shape}] must match per-sample losses [${perSample.shape}]`);
  return div(reduceSum(mul(perSample, weights)), perSample.size);
}
