// AdamW with 8-bit moments, as bitsandbytes' AdamW8bit: both moments stored block-wise (256 values per
// block, uint8 codes of the dynamic map + a float32 absmax per block), updated in float32 in the graph.
// Small tensors (< min8bitSize elements) keep float32 moments, as bitsandbytes does.
import type { Tensor } from '../tensor';
import { adamStep } from './adamw';
import { blocksFor, dequantizeBlockwise, dynamicMap, quantizeBlockwise } from './blockwise-8bit';
import type { Optimizer, StateSpec } from './optimizer';

export interface AdamW8bitOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Tensors with fewer elements keep float32 moments (bitsandbytes' min_8bit_size). Default 4096. */
  min8bitSize?: number;
}

const SIGNED = dynamicMap(true);
const UNSIGNED = dynamicMap(false);

export function adamw8bit(o: AdamW8bitOptions = {}): Optimizer {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, min8bitSize = 4096 } = o;
  const quantised = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1) >= min8bitSize;
  return {
    name: 'AdamW8bit',
    state(shape) {
      const n = shape.reduce((a, b) => a * b, 1);
      if (!quantised(shape)) return { m: { shape: [...shape], init: 0 }, v: { shape: [...shape], init: 0 } };
      const s: Record<string, StateSpec> = {
        m: { shape: [...shape], dtype: 'uint8', init: 0 },
        m_absmax: { shape: [blocksFor(n)], init: 0 },
        v: { shape: [...shape], dtype: 'uint8', init: 0 },
        v_absmax: { shape: [blocksFor(n)], init: 0 },
      };
      return s;
    },
    update(p, g, state, scalars): { param: Tensor; state: Record<string, Tensor> } {
      const q = quantised(p.shape);
      // With absmax 0 every code dequantises to 0, so the all-zero initial codes mean zero moments.
      const m = q ? dequantizeBlockwise(state.m, state.m_absmax, SIGNED) : state.m;
      const v = q ? dequantizeBlockwise(state.v, state.v_absmax, UNSIGNED) : state.v;
      const { param, m: m2, v: v2 } = adamStep(p, g, m, v, scalars, { beta1, beta2, eps, weightDecay });
      if (!q) return { param, state: { m: m2, v: v2 } };
      const qm = quantizeBlockwise(m2, SIGNED);
      const qv = quantizeBlockwise(v2, UNSIGNED);
      return { param, state: { m: qm.codes, m_absmax: qm.absmax, v: qv.codes, v_absmax: qv.absmax } };
    },
  };
}
