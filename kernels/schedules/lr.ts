// Learning-rate schedulers as pure functions of the optimizer step, with the formulas of diffusers'
// `get_scheduler` (the LambdaLR multipliers kohya and ai-toolkit users get): constant,
// constant_with_warmup, linear, cosine, cosine_with_restarts.

export const LR_SCHEDULERS = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts'] as const;
export type LrScheduler = (typeof LR_SCHEDULERS)[number];

export interface LrScheduleConfig {
  scheduler: LrScheduler;
  learningRate: number;
  /** Optimizer steps of the whole run (num_training_steps). */
  totalSteps: number;
  /** Linear warmup from 0 over this many steps (num_warmup_steps). Default 0. */
  warmupSteps?: number;
  /**
   * Cosine waves: `cosine` default 0.5 (half a wave, lr ends at 0); `cosine_with_restarts` default 1
   * (number of hard restarts).
   */
  numCycles?: number;
}

/**
 * The multiplier applied to the base learning rate after `step` optimizer steps (step 0 is the first
 * update, as in torch's LambdaLR). With warmup the first update therefore uses lr 0, exactly as
 * diffusers does. Unlike diffusers, plain `constant` also honours `warmupSteps` (diffusers ignores it
 * there), so one warmup widget means the same thing for every scheduler.
 */
export function lrMultiplierAt(step: number, cfg: LrScheduleConfig): number {
  const warmup = cfg.warmupSteps ?? 0;
  if (!(LR_SCHEDULERS as readonly string[]).includes(cfg.scheduler)) {
    throw new RangeError(`unknown lr scheduler "${String(cfg.scheduler)}" (known: ${LR_SCHEDULERS.join(', ')})`);
  }
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`lr step must be a non-negative integer, got ${step}`);
  if (!(cfg.totalSteps >= 0) || !(warmup >= 0)) {
    throw new RangeError(`lr schedule needs totalSteps >= 0 and warmupSteps >= 0, got ${cfg.totalSteps} and ${warmup}`);
  }
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, cfg.totalSteps - warmup);
  switch (cfg.scheduler) {
    case 'constant':
    case 'constant_with_warmup':
      return 1;
    case 'linear':
      return Math.max(0, (cfg.totalSteps - step) / Math.max(1, cfg.totalSteps - warmup));
    case 'cosine': {
      const cycles = cfg.numCycles ?? 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
    case 'cosine_with_restarts': {
      const cycles = cfg.numCycles ?? 1;
      if (progress >= 1) return 0;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * progress) % 1))));
    }
  }
}

/** Learning rate used for the update after `step` optimizer steps. */
export function lrAt(step: number, cfg: LrScheduleConfig): number {
  return cfg.learningRate * lrMultiplierAt(step, cfg);
}

/** The learning rate at every step 0..totalSteps-1 (for the loss chart and node previews). */
export function lrCurve(cfg: LrScheduleConfig): Float64Array {
  const out = new Float64Array(cfg.totalSteps);
  for (let s = 0; s < cfg.totalSteps; s++) out[s] = lrAt(s, cfg);
  return out;
}
