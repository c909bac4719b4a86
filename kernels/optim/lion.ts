// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as lion-pytorch computes
// it: the step is the sign of an interpolation of momentum and gradient; decoupled weight decay.
import { add, mul, sign, sub } from '../ops/elementwise';
import type { Optimizer } from './optimizer';

export interface LionOptions { beta1?: number; beta2?: number; weightDecay?: number }

export function lion(o: LionOptions = {}): Optimizer {
  const { beta1 = 0.9, beta2 = 0.99, weightDecay = 0 } = o;
  return {
    name: 'Lion',
    state: (shape) => ({ exp_avg: { shape: [...shape], init: 0 } }),
    update(p, g, { exp_avg }, { lr }) {
      const decayed = weightDecay ? mul(p, sub(1, mul(lr, weightDecay))) : p;
      const direction = sign(add(mul(exp_avg, beta1), mul(g, 1 - beta1)));
      return {
        param: sub(decayed, mul(lr, direction)),
        state: { exp_avg: add(mul(exp_avg, beta2), mul(g, 1 - beta2)) },
      };
    },
  };
}
