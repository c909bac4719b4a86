// Adafactor (Shazeer & Stern 2018) as transformers' Adafactor computes it: a factored second moment
// (row and column means) for parameters of rank ≥ 2, update clipping by RMS, and the optional
// relative step size (lr = min(1e-2, 1/√t), scaled by the parameter's RMS) that needs no learning rate.
import { scalar, type Tensor } from '../tensor';
import { add, div, maximum, minimum, mul, pow, rsqrt, sqrt, sub } from '../ops/elementwise';
import { reduceMean, unsqueeze } from '../ops/shape-and-reduce';
import type { Optimizer } from './optimizer';

export interface AdafactorOptions {
  /** Regularisation constants (ε₁ added to g², ε₂ floor on the parameter scale). */
  eps?: [number, number];
  /** Updates are scaled down so their RMS is at most this. Default 1.0. */
  clipThreshold?: number;
  /** Exponent of the second-moment decay: β₂ₜ = 1 − t^decayRate. Default −0.8. */
  decayRate?: number;
  /** First-moment coefficient; undefined = no first moment (saves memory, transformers' default). */
  beta1?: number;
  weightDecay?: number;
  /** Multiply the step size by the parameter's RMS. Default true. */
  scaleParameter?: boolean;
  /** Ignore the fed learning rate and use min(1e-2, 1/√t) (or 1e-6·t with warmupInit). Default true. */
  relativeStep?: boolean;
  warmupInit?: boolean;
}

const rms = (x: Tensor) => sqrt(reduceMean(mul(x, x)));

export function adafactor(o: AdafactorOptions = {}): Optimizer {
  const { eps = [1e-30, 1e-3], clipThreshold = 1.0, decayRate = -0.8, beta1, weightDecay = 0, scaleParameter = true, relativeStep = true, warmupInit = false } = o;
  if (warmupInit && !relativeStep) throw new Error('Adafactor: warmupInit needs relativeStep');
  const factored = (shape: readonly number[]) => shape.length >= 2;
  return {
    name: 'Adafactor',
    state(shape) {
      const s: Record<string, { shape: number[]; init: number }> = {};
      if (factored(shape)) {
        s.exp_avg_sq_row = { shape: shape.slice(0, -1), init: 0 };
        s.exp_avg_sq_col = { shape: [...shape.slice(0, -2), shape[shape.length - 1]], init: 0 };
      } else s.exp_avg_sq = { shape: [...shape], init: 0 };
      if (beta1 !== undefined) s.exp_avg = { shape: [...shape], init: 0 };
      return s;
    },
    update(p, g, state, { lr, step }) {
      let stepSize: Tensor = lr;
      if (relativeStep) {
        const minStep = warmupInit ? mul(step, 1e-6) : scalar(1e-2);
        stepSize = minimum(minStep, rsqrt(step));
      }
      if (scaleParameter) stepSize = mul(stepSize, maximum(rms(p), eps[1]));
      const beta2t = sub(1, pow(step, scalar(decayRate)));
      const g2 = add(mul(g, g), eps[0]);
      const ema = (prev: Tensor, now: Tensor) => add(mul(prev, beta2t), mul(now, sub(1, beta2t)));
      const next: Record<string, Tensor> = {};
      let u: Tensor;
      if (factored(p.shape)) {
        const row = ema(state.exp_avg_sq_row, reduceMean(g2, -1));
        const col = ema(state.exp_avg_sq_col, reduceMean(g2, -2));
        next.exp_avg_sq_row = row;
        next.exp_avg_sq_col = col;
        // v ≈ row·col / mean(row): the rank-1 reconstruction of the second moment.
        const r = unsqueeze(rsqrt(div(row, reduceMean(row, -1, true))), -1);
        const c = unsqueeze(rsqrt(col), -2);
        u = mul(mul(r, c), g);
      } else {
        const v = ema(state.exp_avg_sq, g2);
        next.exp_avg_sq = v;
        u = mul(rsqrt(v), g);
      }
      u = div(u, maximum(div(rms(u), clipThreshold), 1));
      u = mul(u, stepSize);
      if (beta1 !== undefined) {
        u = add(mul(state.exp_avg, beta1), mul(u, 1 - beta1));
        next.exp_avg = u;
      }
      const decayed = weightDecay ? sub(p, mul(p, mul(stepSize, weightDecay))) : p;
      return { param: sub(decayed, u), state: next };
    },
  };
}

