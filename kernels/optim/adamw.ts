// AdamW (decoupled weight decay), as torch.optim.AdamW computes it.
import { scalar } from '../tensor';
import { add, div, mul, sqrt, sub, pow } from '../ops/elementwise';
import type { Optimizer } from './optimizer';

export interface AdamWOptions { beta1?: number; beta2?: number; eps?: number; weightDecay?: number }

export function adamw(o: AdamWOptions = {}): Optimizer {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = o;
  return {
    name: 'AdamW',
    state: (shape) => ({ m: { shape: [...shape], init: 0 }, v: { shape: [...shape], init: 0 } }),
    update(p, g, { m, v }, { lr, step }) {
      const m2 = add(mul(m, beta1), mul(g, 1 - beta1));
      const v2 = add(mul(v, beta2), mul(mul(g, g), 1 - beta2));
      // Bias corrections 1 − βᵗ with t fed per step, so one graph serves every step.
      const bc1 = sub(1, pow(scalar(beta1), step));
      const bc2 = sub(1, pow(scalar(beta2), step));
      const update = div(div(m2, bc1), add(sqrt(div(v2, bc2)), eps));
      const decayed = weightDecay ? mul(p, sub(1, mul(lr, weightDecay))) : p;
      return { param: sub(decayed, mul(lr, update)), state: { m: m2, v: v2 } };
    },
  };
}
