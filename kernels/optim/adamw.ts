// AdamW (decoupled weight decay), as torch.optim.AdamW computes it.
import { scalar } from '../tensor';
import { add, div, mul, sqrt, sub, pow } from '../ops/elementwise';
import type { Optimizer, StepScalars } from './optimizer';
import type { Tensor } from '../tensor';

export interface AdamWOptions { beta1?: number; beta2?: number; eps?: number; weightDecay?: number }

export function adamw(o: AdamWOptions = {}): Optimizer {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = o;
  return {
    name: 'AdamW',
    state: (shape) => ({ m: { shape: [...shape], init: 0 }, v: { shape: [...shape], init: 0 } }),
    update(p, g, { m, v }, s) {
      const r = adamStep(p, g, m, v, s, { beta1, beta2, eps, weightDecay });
      return { param: r.param, state: { m: r.m, v: r.v } };
    },
  };
}

/** One AdamW update on float moments (shared by AdamW and AdamW8bit, which stores the moments in 8 bits). */
export function adamStep(p: Tensor, g: Tensor, m: Tensor, v: Tensor, { lr, step }: StepScalars, o: Required<AdamWOptions>) {
  const m2 = add(mul(m, o.beta1), mul(g, 1 - o.beta1));
  const v2 = add(mul(v, o.beta2), mul(mul(g, g), 1 - o.beta2));
  // Bias corrections 1 − βᵗ with t fed per step, so one graph serves every step.
  const bc1 = sub(1, pow(scalar(o.beta1), step));
  const bc2 = sub(1, pow(scalar(o.beta2), step));
  const update = div(div(m2, bc1), add(sqrt(div(v2, bc2)), o.eps));
  const decayed = o.weightDecay ? mul(p, sub(1, mul(lr, o.weightDecay))) : p;
  return { param: sub(decayed, mul(lr, update)), m: m2, v: v2 };
}
