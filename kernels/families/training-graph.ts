// One LoRA training step of any family as a graph: noisy latents from (x0, noise, timestep) by the
// family's objective (DDPM ε/v or rectified flow), the denoiser with adapters, a per-sample loss weighted
// by min-SNR-γ (DDPM) and optionally Differential Output Preservation (the adapted model held to the base
// model's prediction on preservation prompts) and Differential Guidance (the target pushed past itself).
import { input, type Tensor } from '../tensor';
import { add, cast, mul, stopGradient, sub } from '../ops/elementwise';
import { Builder } from '../nn/builder';
import { nativeHalfDtypes } from '../nn/precision';
import type { ExecutionProvider } from '../runtime';
import type { WeightSource } from '../nn/weights';
import { ddpmSchedule, type DdpmSchedule } from '../schedules/ddpm';
import { batchLoss, ddpmTrainingPair, flowTrainingPair, minSnrWeights, perSampleLoss, type LossOptions } from '../losses';
import type { Conditioning, ModelFamily } from './contract';
import type { FamilyAdapters } from './adapters';

export interface TrainGraphOptions {
  family: ModelFamily;
  config: unknown;
  denoiserWeights: WeightSource;
  /** Needed when the text encoders train (their adapter sets exist): captions go in as token ids. */
  textWeights?: WeightSource[];
  adapters: FamilyAdapters;
  batch: number;
  /** Latent height and width (and frames first for video families: [f, h, w]). */
  latentSize: number[];
  clipSkip?: number;
  loss?: LossOptions;
  /** min-SNR-γ (DDPM objectives); 0 = off. */
  minSnrGamma?: number;
  /** DOP: weight of the preservation term; 0 = off. */
  preservationMultiplier?: number;
  /** Differential Guidance scale; 0 = off. */
  differentialGuidance?: number;
  /** Feed a per-sample loss weight `loss_weight` [B] (kohya's prior_loss_weight for regularization images). */
  sampleWeights?: boolean;
  /** Recompute each denoiser block in the backward pass instead of keeping its activations (Builder.block). */
  gradientCheckpointing?: boolean;
  /** The EP the step runs on: GPU EPs multiply half-stored frozen weights natively (Builder.halfKernels). Default cpu. */
  ep?: ExecutionProvider;
}

export interface TrainGraph {
  /** Per-step inputs in feed order. */
  inputs: Tensor[];
  loss: Tensor;
  extra: Record<string, Tensor>;
  params: Record<string, Tensor>;
  /** The DDPM schedule (DDPM objectives only). */
  schedule?: DdpmSchedule;
  /** `cond`: text conditioning fed by name (cached embeddings); `ids`: token ids per encoder (`ids`, `ids_2`, …). */
  textInput: 'cond' | 'ids';
  /** Timesteps are int64 training steps (DDPM) or float32 σ in [0, 1] (flow). */
  timestepDtype: 'int64' | 'float32';
  hasPreservation: boolean;
}

/** Feed name of text encoder i's token ids: `ids`, `ids_2`, `ids_3`… */
export const idsInputName = (i: number) => (i === 0 ? 'ids' : `ids_${i + 1}`);

/**
 * Inputs (batch B, latents C×(f×)h×w): `latents`, `noise`; `timesteps` [B]; each text conditioning input
 * by name (`context`, `pooled`, …) or the token ids per encoder; each sample conditioning input
 * (`time_ids`, …); with DOP the same again prefixed `pres_`; with `sampleWeights` `loss_weight` [B];
 * plus the adapters' dropout masks.
 */
export function buildTrainGraph(o: TrainGraphOptions): TrainGraph {
  const { family, config: cfg } = o;
  const B = o.batch;
  const objective = family.objective(cfg);
  const schedule = objective.kind === 'ddpm' ? ddpmSchedule(objective.schedule) : undefined;
  const channels = family.latentFormat(cfg).channels;
  const trainsText = o.adapters.text.length > 0;
  if (trainsText && !o.textWeights) throw new Error('training the text encoder needs its weights');
  // Sized by this graph's latent: Wan I2V's first-frame condition follows the clip's frames and size.
  const conds = family.conditioning(cfg, [channels, ...o.latentSize]);
  const encoders = family.textEncoders(cfg);
  const builder = (w: WeightSource, hook?: ReturnType<FamilyAdapters['denoiser']['hook']>) => {
    const b = new Builder(w, hook);
    b.halfKernels = nativeHalfDtypes(o.ep ?? 'cpu');
    return b;
  };

  const inputs: Tensor[] = [];
  const encode = (ids: Tensor[], withAdapter: boolean): Conditioning =>
    family.encodeText(encoders.map((_, i) => builder(o.textWeights![i], withAdapter ? o.adapters.text[i].hook({ training: true }) : undefined)), cfg, ids, { clipSkip: o.clipSkip ?? 1 });
  const text = (prefix: string): { cond: Conditioning; base?: Conditioning; ids?: Tensor[] } => {
    if (!trainsText) {
      const cond: Conditioning = {};
      for (const c of conds.filter((x) => x.source === 'text')) {
        const t = input(`${prefix}${c.name}`, [B, ...c.shape]);
        inputs.push(t);
        cond[c.name] = t;
      }
      return { cond, base: cond };
    }
    const ids = encoders.map((e, i) => input(`${prefix}${idsInputName(i)}`, [B, e.maxLength], 'int64'));
    inputs.push(...ids);
    return { cond: encode(ids, true), ids };
  };
  const sampleCond = (prefix: string): Conditioning => {
    const cond: Conditioning = {};
    for (const c of conds.filter((x) => x.source === 'sample' || x.source === 'latent')) {
      const t = input(`${prefix}${c.name}`, [B, ...c.shape]);
      inputs.push(t);
      cond[c.name] = t;
    }
    return cond;
  };
  const pass = (prefix: string) => {
    const x0 = input(`${prefix}latents`, [B, channels, ...o.latentSize]);
    const noise = input(`${prefix}noise`, [B, channels, ...o.latentSize]);
    const t = input(`${prefix}timesteps`, [B], objective.kind === 'ddpm' ? 'int64' : 'float32');
    inputs.push(x0, noise, t);
    const { cond, base, ids } = text(prefix);
    const extra = sampleCond(prefix);
    const pair = objective.kind === 'ddpm' ? ddpmTrainingPair(x0, noise, t, schedule!, objective.prediction) : flowTrainingPair(x0, noise, t);
    const timestep = objective.kind === 'ddpm' ? cast(t, 'float32') : mul(t, objective.timestepScale);
    // The base model's view of the same prompt (no text-encoder adapter), for the DOP prior.
    const baseCond = (): Conditioning => ({ ...(base ?? encode(ids!, false)), ...extra });
    return { t, timestep, cond: { ...cond, ...extra }, baseCond, ...pair };
  };
  const adapted = (noisy: Tensor, timestep: Tensor, cond: Conditioning) => {
    // Recomputation pays off where activations are kept for the backward pass: the adapted denoiser.
    const b = builder(o.denoiserWeights, o.adapters.denoiser.hook({ training: true }));
    b.gradientCheckpointing = !!o.gradientCheckpointing;
    return family.denoise(b, cfg, { sample: noisy, timestep, cond });
  };

  const main = pass('');
  const pred = adapted(main.noisy, main.timestep, main.cond);
  let target = main.target;
  if (o.differentialGuidance) {
    // ai-toolkit's differential guidance: aim past the target, away from where the model is now.
    target = add(target, mul(sub(target, stopGradient(pred)), o.differentialGuidance));
  }
  if (o.minSnrGamma && objective.kind !== 'ddpm') throw new Error('minSnrGamma: min-SNR weighting applies to DDPM (ε/v) models; set it to 0 for flow-matching models');
  let weights = o.minSnrGamma && objective.kind === 'ddpm' ? minSnrWeights(main.t, schedule!, o.minSnrGamma, objective.prediction) : undefined;
  if (o.sampleWeights) {
    const w = input('loss_weight', [B]);
    inputs.push(w);
    weights = weights ? mul(weights, w) : w;
  }
  // Latents the denoiser was given clean (Wan 2.2 TI2V's first frame) are not predicted, so not scored.
  const latentShape = [channels, ...o.latentSize];
  const mainLoss = batchLoss(perSampleLoss(pred, target, o.loss, family.lossMask?.(cfg, main.cond, latentShape)), weights);
  let loss = mainLoss;
  const extra: Record<string, Tensor> = { loss_main: mainLoss };

  const hasPreservation = !!o.preservationMultiplier;
  if (hasPreservation) {
    const p = pass('pres_');
    // The prior: the base model (no adapter) on the preservation prompt. It has no trained
    // parameters upstream, so no gradient flows through it.
    const prior = family.denoise(builder(o.denoiserWeights), cfg, { sample: p.noisy, timestep: p.timestep, cond: p.baseCond() });
    const preserved = adapted(p.noisy, p.timestep, p.cond);
    const presLoss = batchLoss(perSampleLoss(preserved, stopGradient(prior), {}, family.lossMask?.(cfg, p.cond, latentShape)));
    loss = add(loss, mul(presLoss, o.preservationMultiplier!));
    extra.loss_preservation = presLoss;
  }

  inputs.push(...o.adapters.denoiser.dropoutInputs, ...o.adapters.text.flatMap((s) => s.dropoutInputs));
  const params = Object.assign({}, o.adapters.denoiser.params, ...o.adapters.text.map((s) => s.params));
  return { inputs, loss, extra, params, schedule, textInput: trainsText ? 'ids' : 'cond', timestepDtype: objective.kind === 'ddpm' ? 'int64' : 'float32', hasPreservation };
}
