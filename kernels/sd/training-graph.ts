// One SD 1.x LoRA training step as a graph, in SD's own vocabulary (config, UNet and text-encoder
// adapter sets): the family training graph (kernels/families/training-graph.ts) with the sd1 family —
// noisy latents from (x0, noise, timestep), the UNet with adapters predicting ε or v, min-SNR-γ, DOP and
// Differential Guidance. Feed names are the same: `latents`, `noise`, `timesteps`, `context` / `ids`.
import type { Tensor } from '../tensor';
import type { WeightSource } from '../nn/weights';
import { ddpmSchedule, type DdpmSchedule } from '../schedules/ddpm';
import type { LossOptions } from '../losses';
import { buildTrainGraph } from '../families/training-graph';
import type { SdConfig } from './config';
import type { SdAdapters } from './lora';
import { sd1Family } from './sd1-family';

export interface SdTrainGraphOptions {
  config: SdConfig;
  unetWeights: WeightSource;
  /** Needed when the text encoder is trained (its adapter set exists): captions go in as token ids. */
  textWeights?: WeightSource;
  adapters: SdAdapters;
  batch: number;
  /** Latent height and width. */
  latentSize: [number, number];
  clipSkip?: number;
  loss?: LossOptions;
  /** min-SNR-γ; 0 = off. */
  minSnrGamma?: number;
  /** DOP: weight of the preservation term; 0 = off. */
  preservationMultiplier?: number;
  /** Differential Guidance scale; 0 = off. */
  differentialGuidance?: number;
  /** Feed a per-sample loss weight `loss_weight` [B] (kohya's prior_loss_weight for regularization images). */
  sampleWeights?: boolean;
  /** Recompute each UNet block in the backward pass instead of keeping its activations (Builder.block). */
  gradientCheckpointing?: boolean;
}

export interface SdTrainGraph {
  /** Per-step inputs in feed order: see `feedNames`. */
  inputs: Tensor[];
  loss: Tensor;
  extra: Record<string, Tensor>;
  params: Record<string, Tensor>;
  schedule: DdpmSchedule;
  /** Whether captions are fed as hidden states (`context`) or token ids (`ids`). */
  textInput: 'context' | 'ids';
  hasPreservation: boolean;
}

export function sdScheduleOf(cfg: SdConfig): DdpmSchedule {
  return ddpmSchedule({ betaStart: cfg.scheduler.betaStart, betaEnd: cfg.scheduler.betaEnd, numTrainTimesteps: cfg.scheduler.numTrainTimesteps, betaSchedule: cfg.scheduler.betaSchedule });
}

/**
 * Inputs (batch B, latents C×h×w, L tokens, D = cross-attention width):
 * `latents`, `noise` [B,C,h,w]; `timesteps` int64 [B]; `context` [B,L,D] or `ids` int64 [B,L];
 * with DOP also `pres_latents`, `pres_noise`, `pres_timesteps`, `pres_context`/`pres_ids`;
 * with `sampleWeights` `loss_weight` [B];
 * plus the adapters' dropout masks.
 */
export function buildSdTrainGraph(o: SdTrainGraphOptions): SdTrainGraph {
  const g = buildTrainGraph({
    family: sd1Family, config: o.config, denoiserWeights: o.unetWeights, textWeights: o.textWeights ? [o.textWeights] : undefined,
    adapters: { denoiser: o.adapters.unet, text: o.adapters.textEncoder ? [o.adapters.textEncoder] : [] },
    batch: o.batch, latentSize: o.latentSize, clipSkip: o.clipSkip, loss: o.loss, minSnrGamma: o.minSnrGamma,
    preservationMultiplier: o.preservationMultiplier, differentialGuidance: o.differentialGuidance, sampleWeights: o.sampleWeights,
    gradientCheckpointing: o.gradientCheckpointing,
  });
  return { inputs: g.inputs, loss: g.loss, extra: g.extra, params: g.params, schedule: g.schedule!, textInput: g.textInput === 'ids' ? 'ids' : 'context', hasPreservation: g.hasPreservation };
}
