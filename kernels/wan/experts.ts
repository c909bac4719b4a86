// Wan 2.2 A14B's two experts: the high-noise expert denoises timesteps t ≥ boundary·1000, the low-noise
// expert those below (official boundaries: 0.875 for T2V, 0.900 for I2V). Training alternates between
// the trained experts every N steps (kernels/schedules/multistage.ts does the alternation and narrows
// each expert's timestep band); sampling switches model — and LoRA — per step by the step's timestep.
// LoRAs are saved one file per expert, named as ai-toolkit does: `<name>_<step>_high_noise.safetensors`.
import type { MultistageConfig } from '../schedules/multistage';
import type { WanTransformerConfig } from './config';
import type { WanExpert } from './detect';

export const WAN_EXPERTS: readonly WanExpert[] = ['high_noise', 'low_noise'];

/** The official expert boundary of a Wan 2.2 A14B release, as a fraction of the 1000 training timesteps. */
export const WAN22_BOUNDARY = { t2v: 0.875, i2v: 0.9 } as const;

/** The boundary for a config: I2V when it takes the 36-channel conditioned input. */
export function defaultExpertBoundary(cfg: WanTransformerConfig): number {
  return cfg.inChannels > cfg.outChannels ? WAN22_BOUNDARY.i2v : WAN22_BOUNDARY.t2v;
}

/** The expert that denoises noise level t ∈ [0, 1] (timestep t·1000). */
export function expertForTimestep(t: number, boundary: number): WanExpert {
  if (!(boundary > 0 && boundary < 1)) throw new RangeError(`expert boundary must lie in (0, 1), got ${boundary}`);
  return t >= boundary ? 'high_noise' : 'low_noise';
}

/** Which experts a sampling schedule (noise levels of the steps, descending) runs, step by step. */
export function expertsForSchedule(timesteps: readonly number[], boundary: number): WanExpert[] {
  return timesteps.map((t) => expertForTimestep(t, boundary));
}

export interface WanMultistageOptions {
  boundary: number;
  /** Steps on one expert before switching to the other trained one. */
  switchEvery: number;
  /** Which experts are trained (default both). */
  train?: Partial<Record<WanExpert, boolean>>;
}

/** The multistage training config for the two experts (stage 0 = high noise, stage 1 = low noise). */
export function wanMultistage(o: WanMultistageOptions): MultistageConfig {
  expertForTimestep(0.5, o.boundary); // validates the boundary
  return { boundaries: [o.boundary], switchEvery: o.switchEvery, trainStages: WAN_EXPERTS.map((e) => o.train?.[e] ?? true) };
}

/**
 * File name of one expert's LoRA: ai-toolkit's `<name>_<step as 9 digits>_<expert>.safetensors` for
 * periodic saves, `<name>_<expert>.safetensors` for the final one (step omitted).
 */
export function expertLoraFileName(name: string, expert: WanExpert, step?: number): string {
  if (step !== undefined && !(Number.isInteger(step) && step >= 0)) throw new RangeError(`step must be a non-negative integer, got ${step}`);
  return step === undefined ? `${name}_${expert}.safetensors` : `${name}_${String(step).padStart(9, '0')}_${expert}.safetensors`;
}

/** The name, step and expert a per-expert LoRA file name carries (undefined when it is not one). */
export function parseExpertLoraFileName(fileName: string): { name: string; step?: number; expert: WanExpert } | undefined {
  const m = fileName.match(/^(.*?)(?:_(\d{9}))?_(high_noise|low_noise)\.safetensors$/);
  return m ? { name: m[1], step: m[2] === undefined ? undefined : Number(m[2]), expert: m[3] as WanExpert } : undefined;
}
