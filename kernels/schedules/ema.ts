// Exponential moving average of adapter weights (host-side reference for the in-graph update), with
// diffusers EMAModel's decay rule: optional warmup and an `updateAfterStep` delay.

export interface EmaConfig {
  /** Maximum decay, e.g. 0.99 (ai-toolkit's ema_decay) or 0.9999. */
  decay: number;
  /** Floor on the decay once updates start. Default 0. */
  minDecay?: number;
  /** Optimizer steps before averaging starts; until then the average copies the weights. Default 0. */
  updateAfterStep?: number;
  /**
   * `none` (default): constant `decay`. `diffusers`: (1 + s) / (10 + s), diffusers' default ramp.
   * `power`: 1 - (1 + s / invGamma)^-power, diffusers' use_ema_warmup.
   */
  warmup?: 'none' | 'diffusers' | 'power';
  /** Default 1. */
  invGamma?: number;
  /** Default 2/3. */
  power?: number;
}

/**
 * Decay used for the EMA update made after optimizer step number `optimizationStep` (1 for the first
 * update), as diffusers' EMAModel.get_decay: 0 (copy the weights) until updateAfterStep has passed.
 */
export function emaDecayAt(optimizationStep: number, cfg: EmaConfig): number {
  if (!(cfg.decay >= 0 && cfg.decay < 1)) throw new RangeError(`EMA decay must be in [0, 1), got ${cfg.decay}`);
  const s = Math.max(0, optimizationStep - (cfg.updateAfterStep ?? 0) - 1);
  if (s <= 0) return 0;
  let d: number;
  switch (cfg.warmup ?? 'none') {
    case 'none':
      d = cfg.decay;
      break;
    case 'diffusers':
      d = (1 + s) / (10 + s);
      break;
    case 'power':
      d = 1 - (1 + s / (cfg.invGamma ?? 1)) ** -(cfg.power ?? 2 / 3);
      break;
    default:
      throw new RangeError(`unknown EMA warmup "${String(cfg.warmup)}"`);
  }
  return Math.max(Math.min(d, cfg.decay), cfg.minDecay ?? 0);
}

/** One EMA step: a new array average - (1 - decay) * (average - weights). Inputs are not changed. */
export function emaUpdate(average: Float32Array, weights: Float32Array, decay: number): Float32Array {
  if (average.length !== weights.length) {
    throw new RangeError(`EMA average has ${average.length} elements but the weights have ${weights.length}`);
  }
  const out = new Float32Array(average.length);
  const k = 1 - decay;
  for (let i = 0; i < out.length; i++) out[i] = average[i] - k * (average[i] - weights[i]);
  return out;
}

/** EMA of several named tensors: an immutable value carried in TRAINING state. */
export interface EmaState {
  /** Optimizer steps folded in so far. */
  step: number;
  average: Readonly<Record<string, Float32Array>>;
}

export function emaInit(weights: Readonly<Record<string, Float32Array>>): EmaState {
  return { step: 0, average: Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, v.slice()])) };
}

/** Folds one optimizer step's weights into the average; returns a new state. */
export function emaStep(state: EmaState, weights: Readonly<Record<string, Float32Array>>, cfg: EmaConfig): EmaState {
  const step = state.step + 1;
  const decay = emaDecayAt(step, cfg);
  const average: Record<string, Float32Array> = {};
  for (const [name, avg] of Object.entries(state.average)) {
    const w = weights[name];
    if (!w) throw new RangeError(`EMA has tensor "${name}" but the weights do not`);
    average[name] = emaUpdate(avg, w, decay);
  }
  return { step, average };
}
