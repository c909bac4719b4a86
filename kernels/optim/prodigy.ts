// Prodigy (Mishchenko & Defazio 2023) as the prodigyopt package computes it: Adam whose step size d is
// estimated from the distance travelled since the start, shared by all parameters. The estimate needs
// sums over every parameter, so Prodigy uses the whole-set `updateAll` with d kept as shared state.
import { scalar, type Tensor } from '../tensor';
import { abs, add, div, equal, greater, maximum, minimum, mul, pow, sqrt, sub, where } from '../ops/elementwise';
import { reduceSum } from '../ops/shape-and-reduce';
import type { Optimizer } from './optimizer';

export interface ProdigyOptions {
  beta1?: number;
  beta2?: number;
  /** Decay of the d-estimate sums; default √β₂. */
  beta3?: number;
  eps?: number;
  weightDecay?: number;
  /** AdamW-style decay (default) rather than L2 added to the gradient. */
  decouple?: boolean;
  /** Adam's bias correction folded into the step size. Default false (prodigyopt's default). */
  useBiasCorrection?: boolean;
  /** Leave the learning rate out of the denominator sum: steadier with a warmup schedule. */
  safeguardWarmup?: boolean;
  /** Initial estimate of d. Default 1e-6. */
  d0?: number;
  /** Multiplies the estimate: >1 larger steps, <1 smaller. Default 1. */
  dCoef?: number;
  /** Bound on d's growth per step. Default Infinity. */
  growthRate?: number;
}

export function prodigy(o: ProdigyOptions = {}): Optimizer {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, decouple = true, useBiasCorrection = false,
    safeguardWarmup = false, d0 = 1e-6, dCoef = 1, growthRate = Infinity } = o;
  const beta3 = o.beta3 ?? Math.sqrt(beta2);
  if (!(d0 > 0)) throw new Error(`Prodigy: d0 must be > 0, got ${d0}`);
  return {
    name: 'Prodigy',
    state: (shape) => ({
      s: { shape: [...shape], init: 0 },
      p0: { shape: [...shape], init: 'param' },
      exp_avg: { shape: [...shape], init: 0 },
      exp_avg_sq: { shape: [...shape], init: 0 },
    }),
    shared: () => ({ d: { shape: [], init: d0 }, d_max: { shape: [], init: d0 }, d_numerator: { shape: [], init: 0 } }),
    update() { throw new Error('Prodigy updates all parameters at once (updateAll)'); },
    updateAll(slots, shared, { lr, step }) {
      const { d, d_max } = shared;
      const bc = useBiasCorrection
        ? div(sqrt(sub(1, pow(scalar(beta2), step))), sub(1, pow(scalar(beta1), step)))
        : scalar(1);
      const dlr = mul(mul(d, lr), bc);
      const dOverD0 = div(d, d0);
      let numerator: Tensor = mul(shared.d_numerator, beta3);
      let denom: Tensor | undefined;
      const moved = slots.map(({ param: p, grad, state }) => {
        const g = weightDecay && !decouple ? add(grad, mul(p, weightDecay)) : grad;
        numerator = add(numerator, mul(mul(dOverD0, dlr), reduceSum(mul(g, sub(state.p0, p)))));
        const m = add(mul(state.exp_avg, beta1), mul(g, mul(d, 1 - beta1)));
        const v = add(mul(state.exp_avg_sq, beta2), mul(mul(g, g), mul(mul(d, d), 1 - beta2)));
        const s = add(mul(state.s, beta3), mul(g, mul(dOverD0, safeguardWarmup ? d : dlr)));
        const sAbs = reduceSum(abs(s));
        denom = denom ? add(denom, sAbs) : sAbs;
        return { m, v, s };
      });
      // prodigyopt skips the step entirely while no gradient has been seen (denominator 0).
      const progressed = greater(denom!, 0);
      const dHat = mul(div(numerator, maximum(denom!, 1e-38)), dCoef);
      const dRaised = where(equal(d, d0), maximum(d, dHat), d);
      const newDMax = maximum(d_max, dHat);
      const grown = growthRate === Infinity ? newDMax : minimum(newDMax, mul(dRaised, growthRate));
      const newD = where(progressed, grown, d);
      const params = slots.map(({ param: p }, i) => {
        const { m, v } = moved[i];
        const den = add(sqrt(v), mul(newD, eps));
        const decayed = weightDecay && decouple ? sub(p, mul(p, mul(dlr, weightDecay))) : p;
        return where(progressed, sub(decayed, mul(dlr, div(m, den))), p);
      });
      return {
        params,
        states: slots.map(({ state }, i) => ({ s: moved[i].s, p0: state.p0, exp_avg: moved[i].m, exp_avg_sq: moved[i].v })),
        shared: { d: newD, d_max: where(progressed, newDMax, d_max), d_numerator: numerator },
      };
    },
  };
}
