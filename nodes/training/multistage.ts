// Multistage training for models made of experts that each own a band of noise levels (Wan 2.2 A14B:
// the high-noise expert for t ≥ boundary, the low-noise one below). The Train node trains one LoRA per
// expert, alternating every `switchEvery` steps between the trained ones (ai-toolkit's
// switch_boundary_every, train_high_noise / train_low_noise); only the expert in training has its
// weights in ORT sessions. Stage order is high noise first, as kernels/schedules/multistage numbers them.
import { multistageStages, stageAt, withStageRange, type MultistageConfig, type Stage } from '../../kernels/schedules/multistage';
import type { TimestepSamplingConfig } from '../../kernels/schedules/timestep-sampling';
import type { Objective } from '../../kernels/families/contract';
import type { ModelValue } from '../sockets';

export const EXPERT_NAMES = ['high_noise', 'low_noise'] as const;
export type ExpertName = (typeof EXPERT_NAMES)[number];
export const TRAIN_STAGES = ['both', 'high_noise', 'low_noise'] as const;
export type TrainStages = (typeof TRAIN_STAGES)[number];

/** The Train node's multistage widgets. */
export interface MultistageSettings {
  trainStages: TrainStages;
  switchEvery: number;
  /** Noise level in (0, 1) where the experts hand over; 0 = the loaded model's official value. */
  boundary: number;
}

/** One expert: its name (as LoRA files are suffixed) and its MODEL. */
export interface Expert { name: ExpertName; model: ModelValue }

/** The experts being trained together, resolved from the Train node's inputs and widgets. */
export interface MultistagePlan {
  experts: readonly Expert[];
  config: MultistageConfig;
  stages: Stage[];
}

/**
 * The expert boundary a loaded Wan 2.2 A14B states (its family config's `experts.boundary`: 0.875 T2V,
 * 0.900 I2V). Configs are opaque to nodes; this one optional field is read by name so the Train node can
 * default to the official value without knowing the family.
 */
export function statedBoundary(model: ModelValue): number | undefined {
  const b = (model.config as { experts?: { boundary?: unknown } } | undefined)?.experts?.boundary;
  return typeof b === 'number' && b > 0 && b < 1 ? b : undefined;
}

/** The plan for `model` (high noise) and `lowNoiseModel`, or undefined when only one model is connected. */
export function multistagePlan(model: ModelValue, lowNoiseModel: ModelValue | undefined, s: MultistageSettings): MultistagePlan | undefined {
  if (!lowNoiseModel) return undefined;
  if (lowNoiseModel.family !== model.family) throw new Error(`lowNoiseModel: a ${lowNoiseModel.family.label} model cannot pair with a ${model.family.label} one`);
  if (lowNoiseModel.denoiser === model.denoiser) throw new Error('lowNoiseModel: the same model is connected to model and lowNoiseModel; connect the high-noise expert to model and the low-noise one to lowNoiseModel');
  const boundary = s.boundary > 0 ? s.boundary : statedBoundary(model) ?? statedBoundary(lowNoiseModel);
  if (boundary === undefined) throw new Error('boundary: this model states no expert boundary; set it (Wan 2.2: 0.875 text-to-video, 0.9 image-to-video)');
  if (!(boundary > 0 && boundary < 1)) throw new Error(`boundary: must lie between 0 and 1 (got ${boundary})`);
  if (!(Number.isInteger(s.switchEvery) && s.switchEvery >= 1)) throw new Error(`switchEvery: must be a whole number ≥ 1 (got ${s.switchEvery})`);
  const config: MultistageConfig = {
    boundaries: [boundary], switchEvery: s.switchEvery,
    trainStages: EXPERT_NAMES.map((e) => s.trainStages === 'both' || s.trainStages === e),
  };
  return { experts: [{ name: 'high_noise', model }, { name: 'low_noise', model: lowNoiseModel }], config, stages: multistageStages(config) };
}

/** The expert (stage index) trained at optimizer step `step`, counted from the start of the timeline. */
export function stageIndexAt(plan: MultistagePlan, step: number): number {
  return stageAt(step, plan.config).index;
}

/**
 * The timestep distribution narrowed to a stage's band: the Timestep Schedule's, or the family's default
 * sampling written as the same distributions (uniform = linear, shift = shift, logit-normal = sigmoid).
 */
export function stageSampling(base: TimestepSamplingConfig | undefined, objective: Objective, stage: Stage): TimestepSamplingConfig {
  return withStageRange(base ?? defaultSamplingConfig(objective), stage);
}

function defaultSamplingConfig(objective: Objective): TimestepSamplingConfig {
  if (objective.kind !== 'flow') return { timestepType: 'linear' };
  const s = objective.sampling;
  if (s.kind === 'shift') return { timestepType: 'shift', shift: s.shift };
  if (s.kind === 'logit_normal') {
    if (s.mean !== 0) throw new Error(`multistage: the family's logit-normal timestep sampling has mean ${s.mean}; connect a Timestep Schedule`);
    return { timestepType: 'sigmoid', sigmoidScale: s.std };
  }
  return { timestepType: 'linear' };
}
