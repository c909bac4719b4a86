// SGD with momentum (and Nesterov), as torch.optim.SGD computes it: coupled weight decay added to the
// gradient, and a momentum buffer that starts as the first gradient itself.
import { add, equal, mul, sub, where } from '../ops/elementwise';
import type { Optimizer, StateSpec } from './optimizer';
import type { Tensor } from '../tensor';

export interface SgdOptions { momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }

export function sgd(o: SgdOptions = {}): Optimizer {
  const { momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = o;
  if (nesterov && (momentum <= 0 || dampening !== 0)) throw new Error('SGD: nesterov needs momentum > 0 and dampening 0 (as torch)');
  return {
    name: nesterov ? 'SGD (Nesterov)' : 'SGD',
    state: (shape): Record<string, StateSpec> => (momentum ? { momentum_buffer: { shape: [...shape], init: 0 } } : {}),
    update(p, g0, state, { lr, step }): { param: Tensor; state: Record<string, Tensor> } {
      const g = weightDecay ? add(g0, mul(p, weightDecay)) : g0;
      if (!momentum) return { param: sub(p, mul(lr, g)), state: {} };
      // torch seeds the buffer with the first gradient (no dampening on step 1).
      const buf = where(equal(step, 1), g, add(mul(state.momentum_buffer, momentum), mul(g, 1 - dampening)));
      const d = nesterov ? add(g, mul(buf, momentum)) : buf;
      return { param: sub(p, mul(lr, d)), state: { momentum_buffer: buf } };
    },
  };
}
