// Multistage models (Wan 2.2's high-noise and low-noise experts): each stage owns a band of noise
// levels, and training alternates between the trained stages every N steps (ai-toolkit's
// `multistage_boundaries` and `switch_boundary_every`).
import type { TimestepSamplingConfig } from './timestep-sampling';

export interface MultistageConfig {
  /**
   * Noise levels where one stage hands over to the next, descending, in (0, 1). Stage 0 covers
   * [boundaries[0], 1], stage 1 [boundaries[1], boundaries[0]), ... the last stage down to 0.
   * Wan 2.2 T2V: [0.875].
   */
  boundaries: number[];
  /** Steps spent on a stage before moving to the next trained one. Default 1. */
  switchEvery?: number;
  /** Which stages are trained (default all); untrained stages are skipped. */
  trainStages?: boolean[];
}

export interface Stage {
  index: number;
  /** `high_noise` / `low_noise` for two stages (the names Wan 2.2 LoRAs are saved under), else `stage_<i>`. */
  name: string;
  minTimestep: number;
  maxTimestep: number;
}

export function multistageStages(cfg: MultistageConfig): Stage[] {
  const b = cfg.boundaries;
  for (let i = 0; i < b.length; i++) {
    if (!(b[i] > 0 && b[i] < 1) || (i > 0 && !(b[i] < b[i - 1]))) {
      throw new RangeError(`multistage boundaries must be descending values in (0, 1), got [${b.join(', ')}]`);
    }
  }
  const edges = [1, ...b, 0];
  const count = edges.length - 1;
  return Array.from({ length: count }, (_, i) => ({
    index: i,
    name: count === 2 ? (i === 0 ? 'high_noise' : 'low_noise') : `stage_${i}`,
    minTimestep: edges[i + 1],
    maxTimestep: edges[i],
  }));
}

/** The stage trained at optimizer step `step` (0-based). */
export function stageAt(step: number, cfg: MultistageConfig): Stage {
  const stages = multistageStages(cfg);
  const every = cfg.switchEvery ?? 1;
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`switchEvery must be a positive integer, got ${every}`);
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${step}`);
  const train = cfg.trainStages ?? stages.map(() => true);
  if (train.length !== stages.length) {
    throw new RangeError(`trainStages has ${train.length} entries for ${stages.length} stages`);
  }
  const trained = stages.filter((_, i) => train[i]);
  if (trained.length === 0) throw new RangeError('multistage training needs at least one trained stage');
  return trained[Math.floor(step / every) % trained.length];
}

/** The sampling config narrowed to a stage's band (intersected with the config's own range). */
export function withStageRange(cfg: TimestepSamplingConfig, stage: Stage): TimestepSamplingConfig {
  const minTimestep = Math.max(cfg.minTimestep ?? 0, stage.minTimestep);
  const maxTimestep = Math.min(cfg.maxTimestep ?? 1, stage.maxTimestep);
  if (!(minTimestep < maxTimestep)) {
    throw new RangeError(
      `timestep range [${cfg.minTimestep ?? 0}, ${cfg.maxTimestep ?? 1}] does not overlap stage ${stage.name} [${stage.minTimestep}, ${stage.maxTimestep}]`,
    );
  }
  return { ...cfg, minTimestep, maxTimestep };
}
