// The LoRA training loop behind the Train node, for any model family: batches from the datasets (cached
// latents and text embeddings when asked, the family's per-sample conditioning from what bucketing did),
// noise and timesteps from seeded streams, one compiled step per batch shape sharing the adapter and
// optimizer state, checkpoints every N steps with resume, samples every N steps.
// Node-free: the Train node and the benchmarks call `trainSd`.
import { join } from 'node:path';
import { Rng, type RngState } from '../../kernels/random';
import { TrainStep, defaultRuntime, compileGraph, input, Builder, type Runtime, type HostTensor } from '../../kernels';
import { OffloadedStep } from '../../kernels/train/offload';
import { cachedSession } from '../models/sessions';
import { modelLabel, stackConditioning, type Objective } from '../../kernels/families/contract';
import { buildTrainGraph } from '../../kernels/families/training-graph';
import { adapterSetsFor, setList, type FamilyAdapters } from '../models/adapters';
import { tokenFeeds, unpackTextConditioning } from '../models/encoders';
import { sampleGeometry } from '../data/geometry';
import { applyNoiseOffset } from '../../kernels/losses';
import type { LossType } from '../../kernels/losses';
import { saveCheckpoint, loadCheckpoint, listCheckpoints, pruneCheckpoints } from '../../kernels/train/checkpoint';
import { sampleBatches, loadBatchPixels, type Batch } from '../data/batches';
import { LatentCache, MEMORY_BUDGET_BYTES, TextEmbeddingCache, randomWindowProblem, stackTensors } from '../data/cache';
import type { StoredTensor } from '../data/tensor-file';
import type { Dataset } from '../data/dataset';
import type { OptimizerValue } from '../optimizer';
import type { ScheduleValue } from '../timestep-schedule';
import type { AdapterSpec, ClipValue, ExpertState, LossPoint, ModelValue, TrainingValue, VaeValue } from '../sockets';
import { tensorBytes } from '../sockets';
import { preservationCaption, type RegularizerValue } from './regularizer';
import { MemoryPreflightError, type MemoryEstimate, type MemorySettings } from '../../kernels/train/memory';
import { precisionOf, refusal } from './memory-advice';
import { sampleTimesteps, timestepLossWeight } from '../../kernels/schedules/timestep-sampling';
import { multistagePlan, stageIndexAt, stageSampling, type MultistageSettings } from './multistage';

export interface TrainSettings {
  steps: number;
  batchSize: number;
  gradientAccumulation: number;
  seed: number;
  lossType: LossType;
  noiseOffset: number;
  minSnrGamma: number;
  ema: boolean;
  emaDecay: number;
  cacheLatents: boolean;
  cacheTextEmbeddings: boolean;
  saveEvery: number;
  maxSavesToKeep: number;
  sampleEvery: number;
  /** Loss weight of regularization images among the datasets (kohya's prior_loss_weight). */
  priorLossWeight: number;
  /** Recompute each block in the backward pass instead of keeping its activations. */
  gradientCheckpointing?: boolean;
  /** Two experts (model + lowNoiseModel): which train, how often they switch, where they hand over. */
  multistage?: MultistageSettings;
  /** First-and-last-frame models (Wan 2.1 FLF2V): condition each clip on both frames, or on its first only (as I2V). Absent: both. */
  flf2vCondition?: Flf2vCondition;
}

export const FLF2V_CONDITIONS = ['first and last frame', 'first frame only'] as const;
export type Flf2vCondition = (typeof FLF2V_CONDITIONS)[number];

export interface TrainInputs {
  model: ModelValue;
  clip: ClipValue;
  vae: VaeValue;
  datasets: readonly Dataset[];
  adapter: AdapterSpec;
  optimizer: OptimizerValue;
  schedule?: ScheduleValue;
  regularizer?: RegularizerValue;
  /** Continue from this state (chained Train nodes, Load LoRA). */
  training?: TrainingValue;
  /** Wan 2.2 A14B: the low-noise expert (`model` is then the high-noise one); each gets its own LoRA. */
  lowNoiseModel?: ModelValue;
}

/** Every expert's current LoRA weights, for previews that route each step to the expert owning its noise level. */
export interface ExpertSample { boundary: number; experts: { name: string; model: ModelValue; weights: Record<string, HostTensor> }[] }

export interface TrainHooks {
  /** Folder for checkpoints; a run with the same folder resumes from its newest checkpoint. */
  checkpointDir: string;
  /** Folder for latent / text-embedding caches shared between runs. */
  cacheDir: string;
  /** The identity given to the TRAINING value (the node's cache key). */
  id: string;
  runtime?: Runtime;
  progress?(p: { step: number; total: number; data: Record<string, unknown> }): void;
  throwIfInterrupted?(): void;
  warn?(message: string): void;
  /** Called with the state at every checkpoint (save every N steps, and the end): e.g. to write a LoRA file. */
  onSave?(state: TrainingValue): Promise<void>;
  /** Called every `sampleEvery` steps and at the end, with the current adapter weights (and, multistage, every expert's). */
  sample?(step: number, weights: Record<string, HostTensor>, adapters: FamilyAdapters, experts?: ExpertSample): Promise<void>;
}

export interface TrainResult {
  training: TrainingValue;
  resumedFrom?: number;
  /**
   * For bench:train: the one-off setup before the first step (graph build, session, state upload) and
   * the wall time of the step loop after it, with the part of that spent inside ORT.
   */
  timing: { setupMs: number; loopMs: number; ortMs: number; steps: number };
  /** The memory pre-flight's estimate of the largest training step (kernels/train/memory.ts). */
  memory?: MemoryEstimate;
}

const sameSpec = (a: AdapterSpec, b: AdapterSpec) => JSON.stringify({ ...a, byteSize: 0 }) === JSON.stringify({ ...b, byteSize: 0 });

export async function trainSd(inp: TrainInputs, s: TrainSettings, hooks: TrainHooks): Promise<TrainResult> {
  const rt = hooks.runtime ?? defaultRuntime();
  const { family, config: cfg } = inp.model;
  if (inp.datasets.length === 0) throw new Error('datasets: connect at least one Dataset');
  if (inp.clip.family !== family) throw new Error(`clip: a ${inp.clip.family.label} text encoder cannot train a ${modelLabel(family, cfg)} model`);
  if (inp.vae.family !== family) throw new Error(`vae: a ${inp.vae.family.label} VAE cannot train a ${modelLabel(family, cfg)} model`);
  if (inp.training && !sameSpec(inp.training.adapter, inp.adapter)) {
    throw new Error('adapter: the connected TRAINING state was trained with other LoRA Target settings (rank, targets…); use the same LoRA Target');
  }
  const adapters = adapterSetsFor(inp.adapter, inp.model);
  // Multistage: one stage per expert (high noise first), each with its own model, adapters and state.
  const plan = multistagePlan(inp.model, inp.lowNoiseModel, s.multistage ?? { trainStages: 'both', switchEvery: 1, boundary: 0 });
  const stageModels = plan ? plan.experts.map((e) => e.model) : [inp.model];
  const stageNames = plan ? plan.experts.map((e) => e.name as string) : [];
  const stageAdapters = stageModels.map((m) => (m === inp.model ? adapters : adapterSetsFor(inp.adapter, m)));
  for (const [i, a] of stageAdapters.entries()) {
    const shape = (x: FamilyAdapters) => JSON.stringify(setList(x).flatMap((set) => set.paramSpecs.map((p) => [p.key, p.shape])));
    if (shape(a) !== shape(adapters)) throw new Error(`lowNoiseModel: the ${stageNames[i]} expert is another architecture (its LoRA modules differ from model's)`);
  }
  // Two experts: the Train node's boundary and switchEvery decide; a Timestep Schedule's own multistage would only narrow bands.
  const schedStages = inp.schedule?.multistage;
  if (plan && schedStages && (schedStages.boundaries.join() !== plan.config.boundaries.join() || (schedStages.switchEvery ?? 1) !== plan.config.switchEvery)) {
    hooks.warn?.(`schedule: its multistage settings (boundaries ${schedStages.boundaries.join(', ')}, switchEvery ${schedStages.switchEvery ?? 1}) are ignored; the Train node's boundary ${plan.config.boundaries[0]} and switchEvery ${plan.config.switchEvery} pick the experts`);
  }
  if (plan && inp.training && !inp.training.experts) throw new Error('training: the connected TRAINING state holds one LoRA, not one per expert; connect a multistage Train node\'s state or leave lowNoiseModel unconnected');
  if (!plan && inp.training?.experts) throw new Error('training: the connected TRAINING state holds one LoRA per expert; connect the low-noise expert to lowNoiseModel');
  const startStep = inp.training?.step ?? 0;
  const endStep = startStep + s.steps;
  const trainsText = adapters.text.length > 0;
  const reg = inp.regularizer;
  const dop = reg && reg.preservationMultiplier > 0 ? reg : undefined;
  const latentFormat = family.latentFormat(cfg);
  const scale = latentFormat.spatialCompression;
  const objective = family.objective(cfg);
  /** Latent (frames,) height, width of a batch: video VAEs keep the first frame and compress the rest in time. */
  const latentDims = (batch: Batch): number[] => {
    const hw = [batch.bucket.height / scale, batch.bucket.width / scale];
    if (batch.frames <= 1) return hw;
    const t = latentFormat.temporalCompression;
    if (t <= 1) throw new Error(`datasets: ${modelLabel(family, cfg)} trains on images; this dataset has ${batch.frames}-frame clips (set numFrames to 1)`);
    if ((batch.frames - 1) % t) throw new Error(`datasets: ${batch.frames}-frame clips; ${modelLabel(family, cfg)} needs ${t}n+1 frames (turn on videoModel in the Dataset)`);
    return [1 + (batch.frames - 1) / t, ...hw];
  };
  // A first-and-last-frame model (Wan 2.1 FLF2V) trained as image-to-video: its condition made from each clip's first frame alone.
  const firstFrameOnly = s.flf2vCondition === 'first frame only' && !!family.takesLastFrame?.(cfg);
  if (firstFrameOnly && !family.firstFrameOnly) throw new Error(`flf2vCondition: ${modelLabel(family, cfg)} cannot be conditioned on the first frame only`);
  const conditionedOn = (c: unknown) => (firstFrameOnly ? family.firstFrameOnly!(c) : c);
  const conditioning = family.conditioning(cfg);
  const sampleConds = conditioning.filter((c) => c.source === 'sample');
  // Computed from the clip's own pixels by the family (Wan I2V: first-frame mask + image latent).
  const hasLatentConds = conditioning.some((c) => c.source === 'latent');
  /** Latent conditioning the model can do without (Wan 2.2 TI2V's first frame): zeros = not given. */
  const optionalConds = new Set(conditioning.filter((c) => c.source === 'latent' && c.optional).map((c) => c.name));
  if (hasLatentConds && !family.latentConditioning) throw new Error(`${modelLabel(family, cfg)}: the model takes conditioning computed from the clip, which this family cannot make`);
  // Regularization images among the datasets get their own loss weight (prior preservation).
  const hasRegDataset = inp.datasets.some((d) => d.isRegularization);
  // ai-toolkit's `weighted` timestep type weighs each sample's loss by its timestep, on flow-matching models only.
  const timestepType = inp.schedule?.config.timestepType;
  const weighsTimesteps = objective.kind === 'flow' && timestepType === 'weighted';
  const sampleWeights = hasRegDataset || weighsTimesteps;

  // Random streams, each with a job; their states go into checkpoints.
  const root = new Rng(`train:${s.seed}`);
  let streams = { noise: root.fork('noise'), timesteps: root.fork('timesteps'), dropout: root.fork('dropout'), presNoise: root.fork('pres-noise'), presTimesteps: root.fork('pres-timesteps') };
  const dataRng = () => root.fork('data');
  const regRng = () => root.fork('reg-data');

  // Latent and text-embedding caches.
  const latentCache = s.cacheLatents ? new LatentCache(join(hooks.cacheDir, 'latent-cache'), inp.vae.latentEncoder) : undefined;
  const textCache = !trainsText && s.cacheTextEmbeddings ? new TextEmbeddingCache(join(hooks.cacheDir, 'text-embedding-cache'), inp.clip.textEmbeddingEncoder) : undefined;
  if (latentCache) {
    const all = [...inp.datasets, ...(dop?.dataset ? [dop.dataset] : [])];
    const varying = all.find((d) => d.framesVaryPerDraw);
    if (varying) throw new Error(randomWindowProblem('Train', varying.settings.numFrames, varying.settings.folder));
    for (const [i, d] of all.entries()) {
      await latentCache.prepare(d, {
        onProgress: (step, total) => hooks.progress?.({ step: 0, total: s.steps, data: { phase: `caching latents (dataset ${i + 1}/${all.length}: ${step}/${total})` } }),
        throwIfInterrupted: hooks.throwIfInterrupted,
      });
    }
  }

  // One compiled step per (stage, bucket, batch size); a stage's steps share its parameters and optimizer
  // state. Multistage: only the stage in training has sessions loaded (its expert's frozen weights); the
  // other's state waits on the host and its compiled graphs stay ready to load again.
  interface StageState {
    steps: Map<string, Promise<TrainStep>>;
    first?: TrainStep;
    /** State to put into the stage's first step before it runs: full (params + optimizer state) or initial parameters. */
    pending?: { tensors: Record<string, HostTensor>; full: boolean };
    /** Optimizer steps already applied to this stage's optimizer state (bias corrections count from here). */
    optimizerStep: number;
  }
  const stages: StageState[] = stageModels.map(() => ({ steps: new Map(), optimizerStep: 0 }));
  /** The largest pre-flight estimate of the steps compiled so far (shown on the Train node). */
  let memory: MemoryEstimate | undefined;
  let resident = 0;
  const stepFor = (stage: number, batch: Batch, n: number) => {
    const st = stages[stage];
    const key = `${batch.bucketKey}x${n}`;
    let p = st.steps.get(key);
    if (!p) {
      p = (async () => {
        const latentSize = latentDims(batch);
        const g = buildTrainGraph({
          family, config: conditionedOn(stageModels[stage].config), denoiserWeights: stageModels[stage].denoiser, textWeights: trainsText ? inp.clip.encoders.map((e) => e.weights) : undefined,
          adapters: stageAdapters[stage], batch: n, latentSize, clipSkip: inp.clip.clipSkip, loss: { type: s.lossType }, minSnrGamma: s.minSnrGamma,
          preservationMultiplier: dop?.preservationMultiplier, differentialGuidance: reg?.differentialGuidance, sampleWeights,
          // Layer offloading (Load Model's offload) runs the step block by block: the blocks must exist.
          gradientCheckpointing: s.gradientCheckpointing || stageModels[stage].offload === 'blocks', ep: rt.ep,
        });
        // The pre-flight (TrainStep.create) refuses a step that cannot fit, naming these settings.
        const memorySettings: MemorySettings = {
          resolution: `${batch.bucket.width}×${batch.bucket.height}`, frames: batch.frames, batch: n, precision: precisionOf(stageModels[stage]),
          quantisation: stageModels[stage].quantization, gradientCheckpointing: !!s.gradientCheckpointing,
        };
        let ts: TrainStep;
        try {
          ts = await (stageModels[stage].offload === 'blocks' ? OffloadedStep : TrainStep).create(rt, {
            inputs: g.inputs, params: g.params, loss: g.loss, extraOutputs: g.extra, optimizer: inp.optimizer.create(),
            maxGradNorm: inp.optimizer.maxGradNorm, accumulation: s.gradientAccumulation,
            ema: s.ema ? { decay: s.emaDecay } : undefined, shareStateWith: st.first, memorySettings,
          });
        } catch (e) {
          if (e instanceof MemoryPreflightError) throw new Error(refusal(`Training batch ${n} at ${memorySettings.resolution}`, e, memorySettings));
          throw e;
        }
        if (!memory || ts.memoryEstimate.total > memory.total) memory = ts.memoryEstimate;
        if (!st.first) st.first = ts;
        return ts;
      })();
      st.steps.set(key, p);
    }
    return p;
  };
  /** Moves a stage's state to the host and releases its sessions (its expert's weights leave memory). */
  const evict = async (stage: number) => {
    const st = stages[stage];
    if (!st.first || st.pending) return;
    st.pending = { tensors: await st.first.read(true), full: true };
    for (const t of st.steps.values()) await (await t).releaseSessions();
    await st.first.dispose();
  };
  /** The compiled step for this batch on `stage` with the stage's state in place, evicting the other stage first. */
  const residentStep = async (stage: number, batch: Batch, n: number) => {
    if (stage !== resident) {
      await evict(resident);
      resident = stage;
    }
    const ts = await stepFor(stage, batch, n);
    const st = stages[stage];
    if (st.pending) {
      const { tensors, full } = st.pending;
      st.pending = undefined;
      if (full) await st.first!.load(tensors); else await st.first!.init(tensors);
    }
    return ts;
  };
  /** Every stage's full state (the resident one read from the runtime), for checkpoints and the TRAINING value. */
  const stageStates = async (): Promise<{ tensors: Record<string, HostTensor>; full: boolean }[]> =>
    Promise.all(stages.map(async (st) => st.pending ?? { tensors: await st.first!.read(true), full: true }));
  const stageAt = (at: number) => (plan ? stageIndexAt(plan, at) : 0);
  const prefixKeys = (prefix: string, t: Record<string, HostTensor>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [`${prefix}/${k}`, v]));

  // Start: a checkpoint of this very run (resume), else the connected TRAINING state, else fresh init.
  const ckpts = listCheckpoints(hooks.checkpointDir).filter((c) => c.step > startStep && c.step <= endStep);
  const resume = ckpts.at(-1);
  let step = startStep;
  let lossHistory: LossPoint[] = [...(inp.training?.lossHistory ?? [])];
  // Fresh LoRA weights of a stage: SD 1.x's stream names ('init-unet', 'init-te'), further text encoders
  // 'init-te2', …; the second expert's denoiser 'init-unet:low_noise'.
  const freshInit = (stage: number) => Object.assign({ ...stageAdapters[stage].denoiser.initialValues(root.fork(stage === 0 ? 'init-unet' : `init-unet:${stageNames[stage]}`)) },
    ...stageAdapters[stage].text.map((set, i) => set.initialValues(root.fork(i === 0 ? 'init-te' : `init-te${i + 1}`))));
  /** A TRAINING state's (or one expert's) weights and optimizer state as a stage's starting point. */
  const fromTraining = (t: Pick<TrainingValue, 'weights' | 'optimizerState' | 'ema' | 'optimizerSteps'>, stage: number) => {
    const tensors: Record<string, HostTensor> = { ...t.weights };
    // Optimizer state carries over only from the same optimizer; otherwise it starts fresh.
    if (inp.training!.optimizerName === inp.optimizer.name && Object.keys(t.optimizerState).length) {
      Object.assign(tensors, t.optimizerState, t.ema ? Object.fromEntries(Object.entries(t.ema).map(([k, v]) => [`ema:${k}`, v])) : {});
      stages[stage].optimizerStep = t.optimizerSteps;
      return { tensors, full: true };
    }
    return { tensors, full: false };
  };
  if (resume) {
    const ck = await loadCheckpoint(resume.path);
    step = ck.step;
    const meta = ck.meta as { streams: Record<keyof typeof streams, RngState>; lossHistory: LossPoint[]; optimizerStep: number; stages?: { name: string; full: boolean; optimizerStep: number }[] };
    if (plan) {
      if (!meta.stages || meta.stages.map((x) => x.name).join() !== stageNames.join()) throw new Error(`${resume.path}: this checkpoint is not of a ${stageNames.join(' + ')} multistage run`);
      meta.stages.forEach((m, i) => {
        const prefix = `${m.name}/`;
        const tensors = Object.fromEntries(Object.entries(ck.tensors).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
        stages[i].pending = { tensors, full: m.full };
        stages[i].optimizerStep = m.optimizerStep;
      });
    } else {
      stages[0].pending = { tensors: ck.tensors, full: true };
      stages[0].optimizerStep = meta.optimizerStep;
    }
    streams = Object.fromEntries(Object.entries(meta.streams).map(([k, v]) => [k, Rng.fromState(v)])) as typeof streams;
    lossHistory = meta.lossHistory;
  } else if (inp.training) {
    const t = inp.training;
    if (plan) stageNames.forEach((name, i) => {
      const e = t.experts![name];
      if (!e) throw new Error(`training: the connected TRAINING state has no ${name} expert`);
      stages[i].pending = fromTraining(e, i);
    });
    else stages[0].pending = fromTraining(t, 0);
  } else {
    stages.forEach((st, i) => { st.pending = { tensors: freshInit(i), full: false }; });
  }
  resident = stageAt(step);

  // Data: the samplers are replayed from their seeds up to the step we start at.
  const sampler = sampleBatches(inp.datasets, dataRng(), s.batchSize);
  const regSampler = dop?.dataset ? sampleBatches(dop.dataset, regRng(), s.batchSize) : undefined;
  for (let i = 0; i < (step - startStep) * s.gradientAccumulation; i++) { sampler.next(); regSampler?.next(); }

  const trigger = inp.datasets.find((d) => !d.isRegularization)?.settings.triggerWord ?? '';
  /** Text feeds by name (without prefix): token ids per encoder, or the (cached) text conditioning. */
  const encodeText = async (captions: string[]): Promise<Record<string, HostTensor>> => {
    if (trainsText) return tokenFeeds(family, cfg, inp.clip.encoders, captions);
    const embs = textCache ? (await textCache.getMany(captions)).embeddings : await inp.clip.textEmbeddingEncoder.encode(captions);
    return unpackTextConditioning(family, cfg, embs);
  };
  /** The family's per-sample conditioning (SDXL: original size, crop, target) from what bucketing did. */
  const sampleCondFeeds = (batch: Batch): Record<string, HostTensor> => {
    if (!sampleConds.length) return {};
    const values = batch.entries.map((e) => family.sampleConditioning(cfg, sampleGeometry(e.item, e)));
    return Object.fromEntries(sampleConds.map((c) => [c.name, stackConditioning(c, values.map((v) => v[c.name]))]));
  };
  // A batch's pixels, decoded once for the VAE encode and the clip conditioning.
  const pixelMemo = new WeakMap<Batch, ReturnType<typeof loadBatchPixels>>();
  const pixelsOf = (batch: Batch) => {
    let p = pixelMemo.get(batch);
    if (!p) pixelMemo.set(batch, (p = loadBatchPixels(batch)));
    return p;
  };
  /**
   * With latents cached the dataset is fixed, so a sample's clip conditioning (Wan 2.1 I2V's frozen CLIP
   * features of the first frame, the first-frame latent) is computed once per item and flip, like its
   * latent and its caption's embedding, and kept within the caches' memory budget.
   */
  const latentCondMemo = new Map<string, Record<string, HostTensor>>();
  let latentCondBytes = 0;
  /** The family's conditioning computed from each sample's pixels through the VAE (Wan I2V's condition), by name. */
  const latentCondFeeds = async (batch: Batch): Promise<Record<string, HostTensor>> => {
    if (!hasLatentConds) return {};
    const keys = latentCache ? await Promise.all(batch.entries.map((e) => latentCache.keyFor(e.item, e))) : undefined;
    const rows: Record<string, HostTensor>[] = [];
    for (let i = 0; i < batch.entries.length; i++) {
      const key = keys?.[i];
      const known = key === undefined ? undefined : latentCondMemo.get(key);
      if (known) { rows.push(known); continue; }
      const pixels = await pixelsOf(batch);
      const one = [1, ...pixels.dims.slice(1)];
      const session = await cachedSession(inp.vae.weights, `${family.id}-latent-conditioning:${one.join('x')}${firstFrameOnly ? ':first-frame-only' : ''}`, () => {
        const x = input('pixels', one);
        return compileGraph([x], family.latentConditioning!(new Builder(inp.vae.weights), conditionedOn(cfg), x), { name: `${family.id}_latent_conditioning` });
      }, rt);
      const per = one.reduce((a, b) => a * b, 1);
      const row = await session.run({ pixels: { dtype: 'float32', shape: one, data: pixels.data.slice(i * per, (i + 1) * per) } });
      const bytes = Object.values(row).reduce((n, t) => n + (t.data as Float32Array).byteLength, 0);
      if (key !== undefined && latentCondBytes + bytes <= MEMORY_BUDGET_BYTES) { latentCondMemo.set(key, row); latentCondBytes += bytes; }
      rows.push(row);
    }
    return Object.fromEntries(Object.keys(rows[0]).map((name) => {
      const t = rows[0][name];
      const n = (t.data as Float32Array).length;
      const data = new Float32Array(n * rows.length);
      // An optional input left zero means "not given": text to video for a Dataset with imageToVideo off.
      const given = (i: number) => !optionalConds.has(name) || batch.entries[i].dataset.settings.imageToVideo !== false;
      rows.forEach((r, i) => { if (given(i)) data.set(r[name].data as Float32Array, i * n); });
      return [name, { dtype: 'float32' as const, shape: [rows.length, ...t.shape.slice(1)], data }];
    }));
  };
  const prefixed = (prefix: string, feeds: Record<string, HostTensor>) => Object.fromEntries(Object.entries(feeds).map(([k, v]) => [`${prefix}${k}`, v]));
  const latentsOf = async (batch: Batch): Promise<HostTensor> => {
    if (latentCache) { const t = await latentCache.getBatch(batch); return { dtype: 'float32', shape: t.dims, data: t.data }; }
    const encoded = await inp.vae.latentEncoder.encode(await pixelsOf(batch));
    return stack(encoded, [batch.entries.length, latentFormat.channels, ...latentDims(batch)]);
  };
  const noiseLike = (shape: number[], rng: Rng) => {
    const n = rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)));
    return { dtype: 'float32' as const, shape, data: s.noiseOffset ? applyNoiseOffset(n, shape, s.noiseOffset, rng) : n };
  };
  /**
   * Noise levels for step `at` of this node (`abs`: of the whole timeline, which picks the multistage expert).
   * `latentCells`: the batch's latent grid size, which the Timestep Schedule's dynamic shift takes as the
   * image sequence length (FLUX's token count: its latents are already 2×2 patches).
   */
  const timestepsFor = (n: number, rng: Rng, at: number, abs: number, latentCells?: number): HostTensor => {
    // Multistage: the distribution (the Timestep Schedule's or the family's default) narrowed to the expert's band.
    const staged = plan ? sampleTimesteps(rng, n, stageSampling(inp.schedule?.config, objective, plan.stages[stageAt(abs)])) : undefined;
    if (objective.kind === 'flow') {
      // σ ∈ (0, 1): the Timestep Schedule node's draw, else the family's default (uniform, logit-normal, shifted).
      const ts = staged ?? (inp.schedule ? inp.schedule.sample(rng, n, at, latentCells) : Float64Array.from({ length: n }, () => defaultFlowSigma(objective.sampling, rng)));
      return { dtype: 'float32', shape: [n], data: Float32Array.from(ts) };
    }
    const ts = staged ?? (inp.schedule ? inp.schedule.sample(rng, n, at) : Float64Array.from({ length: n }, () => rng.uniform()));
    const T = objective.schedule.numTrainTimesteps;
    return { dtype: 'int64', shape: [n], data: BigInt64Array.from(ts, (t) => BigInt(Math.min(T - 1, Math.max(0, Math.floor(t * T))))) };
  };

  const microFeeds = async (batch: Batch, at: number, abs: number): Promise<Record<string, HostTensor>> => {
    const n = batch.entries.length;
    const latents = await latentsOf(batch);
    const cells = latents.shape.slice(2).reduce((a, b) => a * b, 1);
    const f: Record<string, HostTensor> = {
      latents, noise: noiseLike(latents.shape, streams.noise), timesteps: timestepsFor(n, streams.timesteps, at, abs, cells),
    };
    const captions = batch.entries.map((e) => e.caption);
    if (sampleWeights) {
      const sigmas = f.timesteps.data as Float32Array;
      const weight = (e: Batch['entries'][number], i: number) =>
        (e.dataset.isRegularization ? s.priorLossWeight : 1) * (weighsTimesteps ? timestepLossWeight(timestepType!, sigmas[i]) : 1);
      f.loss_weight = { dtype: 'float32', shape: [n], data: Float32Array.from(batch.entries, weight) };
    }
    const clipConds = await latentCondFeeds(batch);
    Object.assign(f, await encodeText(captions), sampleCondFeeds(batch), clipConds);
    if (dop) {
      let presCaptions: string[];
      if (regSampler) {
        const rb = regSampler.next().value;
        const rl = await latentsOf(rb);
        if (rl.shape.join() !== latents.shape.join()) throw new Error(`DOP: regularization images must share the training bucket (${latents.shape.slice(2).join('×')} latents vs ${rl.shape.slice(2).join('×')})`);
        f.pres_latents = rl;
        f.pres_noise = noiseLike(rl.shape, streams.presNoise);
        f.pres_timesteps = timestepsFor(n, streams.presTimesteps, at, abs, cells);
        Object.assign(f, prefixed('pres_', { ...sampleCondFeeds(rb), ...(await latentCondFeeds(rb)) }));
        presCaptions = rb.entries.map((e) => e.caption);
      } else {
        f.pres_latents = latents; f.pres_noise = f.noise; f.pres_timesteps = f.timesteps;
        Object.assign(f, prefixed('pres_', { ...sampleCondFeeds(batch), ...clipConds }));
        presCaptions = captions.map((c) => preservationCaption(c, trigger, dop.classWord));
      }
      if (dop.blankPrompt) presCaptions = presCaptions.map((c, i) => (i % 2 === 1 || n === 1 && at % 2 === 1 ? '' : c));
      Object.assign(f, prefixed('pres_', await encodeText(presCaptions)));
    }
    Object.assign(f, adapters.denoiser.dropoutFeeds(streams.dropout), ...adapters.text.map((set) => set.dropoutFeeds(streams.dropout)));
    return f;
  };

  let streamStates = streamStatesOf(streams);
  let smoothed = lossHistory.at(-1)?.loss ?? NaN;
  let loopMs = 0;
  let setupMs = 0;
  let ortMs0 = rt.stats.ortMs;
  let initialized = false;
  const paramNames = stageAdapters.map((a) => new Set(setList(a).flatMap((set) => Object.keys(set.params))));
  /** One stage's weights, optimizer state and EMA from its full state (what TrainStep.read(true) returns). */
  const expertState = (stage: number, state: { tensors: Record<string, HostTensor>; full: boolean }): ExpertState => {
    const weights: Record<string, HostTensor> = {};
    const optimizerState: Record<string, HostTensor> = {};
    const ema: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(state.tensors)) {
      if (k.startsWith('ema:')) ema[k.slice(4)] = v;
      else if (paramNames[stage].has(k)) weights[k] = v;
      else optimizerState[k] = v;
    }
    return { weights, optimizerState, ema: s.ema && state.full ? ema : undefined, optimizerSteps: stages[stage].optimizerStep };
  };
  // The TRAINING value at the current step. Multistage: every expert's state under `experts`, and the
  // first trained expert's at the top level.
  const snapshot = (states: { tensors: Record<string, HostTensor>; full: boolean }[]): TrainingValue => {
    const perStage = states.map((st, i) => expertState(i, st));
    const main = plan ? Math.max(0, plan.config.trainStages!.indexOf(true)) : 0;
    const top = perStage[main];
    const experts = plan ? Object.freeze(Object.fromEntries(stageNames.map((n, i) => [n, perStage[i]]))) : undefined;
    const history = [...lossHistory];
    const bytes = perStage.reduce((n, e) => n + tensorBytes(e.weights) + tensorBytes(e.optimizerState) + tensorBytes(e.ema), 0);
    return Object.freeze({
      kind: 'training' as const, id: hooks.id, step, adapter: inp.adapter, base: inp.model.source,
      weights: top.weights, ema: top.ema, optimizerState: top.optimizerState, optimizerName: inp.optimizer.name, optimizerSteps: top.optimizerSteps,
      ...(plan ? { experts, expertBoundary: plan.config.boundaries[0] } : {}),
      rng: streamStates, lossHistory: history, metadata: trainingMetadata(inp, s, step),
      byteSize: () => bytes + history.length * 16,
    });
  };
  const checkpoint = async () => {
    const states = await stageStates();
    const meta = plan
      ? { streams: streamStates, lossHistory, optimizerStep: stages[0].optimizerStep, stages: states.map((st, i) => ({ name: stageNames[i], full: st.full, optimizerStep: stages[i].optimizerStep })) }
      : { streams: streamStates, lossHistory, optimizerStep: stages[0].optimizerStep };
    const tensors = plan ? Object.assign({}, ...states.map((st, i) => prefixKeys(stageNames[i], st.tensors))) : states[0].tensors;
    await saveCheckpoint(hooks.checkpointDir, { step, tensors, meta });
    pruneCheckpoints(hooks.checkpointDir, s.maxSavesToKeep);
    await hooks.onSave?.(snapshot(states));
  };
  /** Every expert's current weights for previews (multistage), read without optimizer state. */
  const expertSample = async (): Promise<ExpertSample | undefined> => {
    if (!plan) return undefined;
    const states = await stageStates();
    return { boundary: plan.config.boundaries[0], experts: states.map((st, i) => ({ name: stageNames[i], model: stageModels[i], weights: expertState(i, st).weights })) };
  };
  const sampleNow = async (weights: Record<string, HostTensor>) => {
    const experts = await expertSample();
    await hooks.sample!(step, experts ? experts.experts[resident].weights : weights, stageAdapters[resident], experts);
  };

  // The next step's batch and feeds are drawn while ORT runs the current one. Draws happen in step
  // order, so the random streams see the same sequence as without prefetching; `streamStates` is
  // their state right after the current step's draws (what a checkpoint at this step must hold).
  const prepare = async (at: number) => {
    const micro: Batch[] = [];
    for (let i = 0; i < s.gradientAccumulation; i++) micro.push(sampler.next().value);
    // Accumulated micro-batches must share one graph: keep the first batch's bucket for all of them.
    if (micro.some((b) => b.bucketKey !== micro[0].bucketKey || b.entries.length !== micro[0].entries.length)) {
      throw new Error('gradientAccumulation: micro-batches came from different buckets or sizes; use batches that divide each bucket, or one resolution');
    }
    const feeds: Record<string, HostTensor>[] = [];
    for (const b of micro) feeds.push(await microFeeds(b, at - startStep, at));
    return { batch: micro[0], feeds, streamsAfter: streamStatesOf(streams) };
  };
  const prefetch = (at: number) => {
    if (at >= endStep) return undefined;
    const p = prepare(at);
    p.catch(() => undefined); // awaited (and thrown) by the loop; an interrupted run never awaits it
    return p;
  };

  const setupStart = performance.now();
  let t0 = setupStart;
  let next = prefetch(step);
  while (step < endStep) {
    hooks.throwIfInterrupted?.();
    const { batch, feeds, streamsAfter } = await next!;
    // The stage (expert) of this step; switching releases the other expert's sessions first.
    const stage = stageAt(step);
    const ts = await residentStep(stage, batch, batch.entries.length);
    if (!initialized) {
      initialized = true;
      if (step > startStep) hooks.warn?.(`resumed from the checkpoint at step ${step}`);
      t0 = performance.now();
      setupMs = t0 - setupStart;
      ortMs0 = rt.stats.ortMs;
    }
    const lr = inp.optimizer.lrAt(step - startStep, s.steps);
    const running = ts.step(feeds, lr, ++stages[stage].optimizerStep);
    next = prefetch(step + 1);
    const r = await running;
    step++;
    streamStates = streamsAfter;
    if (!Number.isFinite(r.loss)) throw new Error(`the loss became ${r.loss} at step ${step}: lower the learning rate or check the data`);
    smoothed = Number.isFinite(smoothed) ? smoothed * 0.9 + r.loss * 0.1 : r.loss;
    lossHistory.push({ step, loss: r.loss });
    const terms = Object.fromEntries(Object.entries(r.extra).map(([k, v]) => [k.replace(/^loss_(\w)/, (_, c: string) => `${c}`) + 'Loss', v.data[0] as number]));
    // The expert first: the CLI's progress line shows the first few values.
    const expert = plan ? { expert: stageNames[stage] } : {};
    hooks.progress?.({ step: step - startStep, total: s.steps, data: { ...expert, loss: r.loss, smoothedLoss: smoothed, lr, step, gradNorm: r.gradNorm, ...terms } });
    if (s.saveEvery > 0 && step % s.saveEvery === 0 && step < endStep) await checkpoint();
    if (hooks.sample && s.sampleEvery > 0 && step % s.sampleEvery === 0 && step < endStep) await sampleNow(await ts.read(false));
  }
  loopMs = performance.now() - t0;
  const ortMs = rt.stats.ortMs - ortMs0;

  // The final state (also when the whole run was already done by an earlier attempt).
  if (step === endStep && !listCheckpoints(hooks.checkpointDir).some((c) => c.step === endStep)) await checkpoint();
  const training = snapshot(await stageStates());
  if (hooks.sample) await sampleNow(training.weights as Record<string, HostTensor>);
  for (const st of stages) for (const t of st.steps.values()) await (await t).dispose().catch(() => undefined);
  return { training, resumedFrom: resume?.step, timing: { setupMs, loopMs, ortMs, steps: endStep - (resume?.step ?? startStep) }, memory };
}

/** One σ of a flow-matching family's default timestep sampling. */
function defaultFlowSigma(sampling: Extract<Objective, { kind: 'flow' }>['sampling'], rng: Rng): number {
  if (sampling.kind === 'logit_normal') {
    const z = rng.fillNormal(new Float32Array(1))[0];
    return 1 / (1 + Math.exp(-(sampling.mean + sampling.std * z)));
  }
  const u = rng.uniform();
  return sampling.kind === 'shift' ? (sampling.shift * u) / (1 + (sampling.shift - 1) * u) : u;
}

function streamStatesOf(streams: Record<string, Rng>): Record<string, RngState> {
  return Object.fromEntries(Object.entries(streams).map(([k, v]) => [k, v.state()]));
}

function stack(items: StoredTensor[], shape: number[]): HostTensor {
  const { data } = stackTensors(items);
  if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`encoder returned [${items[0].dims}] per item; the model expects [${shape.slice(1)}]`);
  return { dtype: 'float32', shape, data };
}

/** kohya-style training facts for the LoRA file's metadata. */
function trainingMetadata(inp: TrainInputs, s: TrainSettings, endStep: number): Record<string, string> {
  const tagFrequency: Record<string, Record<string, number>> = {};
  let images = 0;
  const resolutions = new Set<string>();
  for (const d of inp.datasets) {
    const name = d.settings.folder.split(/[\\/]/).filter(Boolean).at(-1) ?? 'dataset';
    const freq: Record<string, number> = (tagFrequency[name] ??= {});
    for (const item of d.items) {
      images += item.repeats;
      resolutions.add(`${item.bucket.width}x${item.bucket.height}`);
      for (const tag of item.caption.split(d.settings.separator || ',').map((t) => t.trim()).filter(Boolean)) freq[tag] = (freq[tag] ?? 0) + 1;
    }
  }
  return {
    ss_steps: String(endStep),
    ss_max_train_steps: String(endStep),
    ss_learning_rate: String(inp.optimizer.learningRate),
    ss_optimizer: inp.optimizer.name,
    ss_lr_scheduler: inp.optimizer.lrScheduler,
    ss_lr_warmup_steps: String(inp.optimizer.warmupSteps),
    ss_max_grad_norm: String(inp.optimizer.maxGradNorm),
    ss_batch_size_per_device: String(s.batchSize),
    ss_gradient_accumulation_steps: String(s.gradientAccumulation),
    ss_seed: String(s.seed),
    ss_noise_offset: String(s.noiseOffset),
    ss_min_snr_gamma: String(s.minSnrGamma),
    ss_loss_type: s.lossType,
    ss_num_train_images: String(images),
    ss_resolution: JSON.stringify([...resolutions]),
    ss_tag_frequency: JSON.stringify(tagFrequency),
    ss_clip_skip: String(inp.clip.clipSkip),
    ss_sd_model_name: inp.model.source.label,
  };
}
