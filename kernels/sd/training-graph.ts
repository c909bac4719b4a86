// One SD 1.x LoRA training step as a graph: noisy latents from (x0, noise, timestep), the UNet with
// adapters predicting ε or v, a per-sample loss weighted by min-SNR-γ, and optionally Differential
// Output Preservation (the adapted model held to the base model's prediction on preservation prompts)
// and Differential Guidance (the target pushed away from the current prediction).
import { input, type Tensor } from '../tensor';
import { add, cast, mul, stopGradient, sub } from '../ops/elementwise';
import { Builder } from '../nn/builder';
import type { WeightSource } from '../nn/weights';
import { ddpmSchedule, type DdpmSchedule } from '../schedules/ddpm';
import { batchLoss, ddpmTrainingPair, minSnrWeights, perSampleLoss, type LossOptions } from '../losses';
import type { SdConfig } from './config';
import { unet } from './unet';
import { clipTextEncoder } from './clip-text';
import type { SdAdapters } from './lora';

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
  const cfg = o.config;
  const B = o.batch;
  const [h, w] = o.latentSize;
  const L = cfg.text.maxPositions;
  const schedule = sdScheduleOf(cfg);
  const prediction = cfg.scheduler.predictionType;
  const trainsText = !!o.adapters.textEncoder;
  if (trainsText && !o.textWeights) throw new Error('training the text encoder needs its weights');

  const inputs: Tensor[] = [];
  const encode = (ids: Tensor, withAdapter: boolean) =>
    clipTextEncoder(new Builder(o.textWeights!, withAdapter ? o.adapters.textEncoder!.hook({ training: true }) : undefined), cfg.text, ids, { clipSkip: o.clipSkip ?? 1 }).hidden;
  const text = (prefix: string) => {
    if (!trainsText) {
      const c = input(`${prefix}context`, [B, L, cfg.unet.crossAttentionDim]);
      inputs.push(c);
      return { context: c, base: c };
    }
    const ids = input(`${prefix}ids`, [B, L], 'int64');
    inputs.push(ids);
    return { context: encode(ids, true), base: undefined as Tensor | undefined, ids };
  };
  const pass = (prefix: string) => {
    const x0 = input(`${prefix}latents`, [B, cfg.unet.inChannels, h, w]);
    const noise = input(`${prefix}noise`, [B, cfg.unet.inChannels, h, w]);
    const t = input(`${prefix}timesteps`, [B], 'int64');
    inputs.push(x0, noise, t);
    const { context, base, ids } = text(prefix) as { context: Tensor; base?: Tensor; ids?: Tensor };
    const { noisy, target } = ddpmTrainingPair(x0, noise, t, schedule, prediction);
    // The base model's view of the same prompt (no text-encoder adapter), for the DOP prior.
    const baseContext = () => base ?? encode(ids!, false);
    return { x0, noise, t, context, baseContext, noisy, target };
  };
  const adapted = (noisy: Tensor, t: Tensor, context: Tensor) => {
    const b = new Builder(o.unetWeights, o.adapters.unet.hook({ training: true }));
    b.gradientCheckpointing = !!o.gradientCheckpointing;
    return unet(b, cfg.unet, { sample: noisy, timestep: cast(t, 'float32'), context });
  };

  const main = pass('');
  const pred = adapted(main.noisy, main.t, main.context);
  let target = main.target;
  if (o.differentialGuidance) {
    // ai-toolkit's differential guidance: aim past the target, away from where the model is now.
    target = add(target, mul(sub(target, stopGradient(pred)), o.differentialGuidance));
  }
  let weights = o.minSnrGamma ? minSnrWeights(main.t, schedule, o.minSnrGamma, prediction) : undefined;
  if (o.sampleWeights) {
    const w = input('loss_weight', [B]);
    inputs.push(w);
    weights = weights ? mul(weights, w) : w;
  }
  const mainLoss = batchLoss(perSampleLoss(pred, target, o.loss), weights);
  let loss = mainLoss;
  const extra: Record<string, Tensor> = { loss_main: mainLoss };

  const hasPreservation = !!o.preservationMultiplier;
  if (hasPreservation) {
    const p = pass('pres_');
    // The prior: the base model (no adapter) on the preservation prompt. It has no trained
    // parameters upstream, so no gradient flows through it.
    const prior = unet(new Builder(o.unetWeights), cfg.unet, { sample: p.noisy, timestep: cast(p.t, 'float32'), context: p.baseContext() });
    const preserved = adapted(p.noisy, p.t, p.context);
    const presLoss = batchLoss(perSampleLoss(preserved, stopGradient(prior)));
    loss = add(loss, mul(presLoss, o.preservationMultiplier!));
    extra.loss_preservation = presLoss;
  }

  inputs.push(...o.adapters.unet.dropoutInputs, ...(o.adapters.textEncoder?.dropoutInputs ?? []));
  const params = { ...o.adapters.unet.params, ...(o.adapters.textEncoder?.params ?? {}) };
  return { inputs, loss, extra, params, schedule, textInput: trainsText ? 'ids' : 'context', hasPreservation };
}
