// The Train node: trains a LoRA on one or more datasets for N more steps, from scratch or from a
// connected TRAINING state, with checkpoints every N steps (a re-run after a crash or interrupt resumes
// from the newest one) and samples every N steps. Returns a new TRAINING state; never changes its inputs.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { defineNode, input, widget, type NodeContext } from './define';
import { familyById } from '../kernels/families/registry';
import { saveLoraFile } from './models/lora-file';
import { loraMetadata } from './models/lora-metadata';
import type { Dataset } from './data/dataset';
import type { OptimizerValue } from './optimizer';
import type { ScheduleValue } from './timestep-schedule';
import type { AdapterSpec, ClipValue, LossHistoryValue, ModelValue, SamplerSettings, TrainingValue, VaeValue } from './sockets';
import type { RegularizerValue } from './training/regularizer';
import { FLF2V_CONDITIONS, trainSd, type TrainSettings } from './training/trainer';
import { CHECKPOINTING_CHOICES, resolveCheckpointing } from './models/precision';
import { describeEstimate } from './training/memory-advice';
import { TRAIN_STAGES } from './training/multistage';
import { expertLoraFileName } from '../kernels/wan/experts';
import type { WanExpert } from '../kernels/wan/detect';
import { lineChartPng } from './render/chart';
import { publishImage } from './render/publish';
import { trainingSampler } from './training/samples';
import type { SampleSheet } from './sampling/sheet';
import { LORA_OUTPUT_PREFIX } from '../server/paths';

export const LOSS_TYPES = ['mse', 'l1', 'huber', 'pseudo_huber'] as const;

export default defineNode({
  type: 'Train',
  title: 'Train',
  category: 'training',
  description: 'Trains the LoRA for N more steps. Chain Train nodes to continue; re-running after an interrupt resumes from the last checkpoint.',
  version: 1,
  inputs: {
    model: input<ModelValue>('MODEL'),
    clip: input<ClipValue>('CLIP'),
    vae: input<VaeValue>('VAE'),
    datasets: input<Dataset>('DATASET', { list: true, tooltip: 'one or more datasets, mixed by their weights' }),
    adapter: input<AdapterSpec>('ADAPTER'),
    optimizer: input<OptimizerValue>('OPTIMIZER'),
    schedule: input<ScheduleValue>('SCHEDULE', { optional: true, tooltip: 'timestep sampling; uniform when not connected' }),
    regularizer: input<RegularizerValue>('REGULARIZER', { optional: true, tooltip: 'DOP / differential guidance' }),
    training: input<TrainingValue>('TRAINING', { optional: true, tooltip: 'continue from this state' }),
    samplerSettings: input<SamplerSettings>('SAMPLER_SETTINGS', { optional: true, tooltip: 'what "sample every" renders' }),
    lowNoiseModel: input<ModelValue>('MODEL', { optional: true, tooltip: 'Wan 2.2 A14B: the low-noise expert (connect the high-noise one to model); trains one LoRA per expert' }),
  },
  widgets: z.object({
    steps: widget.int({ default: 500, min: 1, max: 1_000_000, tooltip: 'optimizer steps this node adds (when stepsFrom is steps)' }),
    stepsFrom: widget.combo(['steps', 'repeats', 'epochs'] as const, { default: 'steps', tooltip: 'steps: train the steps above; repeats: train until each image was seen `repeats` times, steps = ceil(images × repeats / (batch × grad accum)); epochs: kohya\'s count, steps = ceil(epochs × images × Dataset repeats × (2 with a regularization dataset) / (batch × grad accum))' }),
    repeats: widget.float({ default: 10, min: 0.01, max: 100_000, step: 1, tooltip: 'stepsFrom repeats: how often each training image is seen (regularization images not counted)' }),
    epochs: widget.int({ default: 10, min: 1, max: 100_000, tooltip: 'stepsFrom epochs: passes over the training images, each image as often per pass as its Dataset\'s repeats (kohya\'s epoch / max_train_epochs)' }),
    batchSize: widget.int({ default: 1, min: 1, max: 256, tooltip: 'images per step (from one bucket)' }),
    gradientAccumulation: widget.int({ default: 1, min: 1, max: 256, tooltip: 'micro-batches per optimizer step (same result as a bigger batch, less memory)' }),
    seed: widget.seed({ default: 42, tooltip: 'data order, noise, timesteps and initial weights' }),
    lossType: widget.combo(LOSS_TYPES, { default: 'mse', tooltip: 'mse (L2), l1, huber, or pseudo_huber (kohya\'s huber)' }),
    noiseOffset: widget.float({ default: 0, min: 0, max: 1, step: 0.01, tooltip: 'adds a per-channel offset to the noise (0.05–0.1 helps very dark/bright images)' }),
    minSnrGamma: widget.float({ default: 0, min: 0, max: 20, step: 0.5, tooltip: 'min-SNR-γ loss weighting; 5 is common, 0 = off' }),
    ema: widget.toggle({ default: false, tooltip: 'keep an exponential moving average of the LoRA weights' }),
    emaDecay: widget.float({ default: 0.99, min: 0, max: 0.99999, step: 0.001, tooltip: 'EMA decay per step' }),
    cacheLatents: widget.toggle({ default: true, tooltip: 'encode each image once with the VAE and train from cached latents' }),
    cacheTextEmbeddings: widget.toggle({ default: true, tooltip: 'encode each caption once (not when training the text encoder)' }),
    saveEvery: widget.int({ default: 0, min: 0, max: 1_000_000, tooltip: 'save the LoRA (and a resumable checkpoint) every N steps; 0 = only at the end' }),
    maxSavesToKeep: widget.int({ default: 4, min: 0, max: 1000, tooltip: 'saves kept, newest first (0 = all)' }),
    saveName: widget.text({ default: 'my-lora', tooltip: 'saves go to output/<saveName>/<saveName>_<step>.safetensors (kohya format, fp16); empty = checkpoints only' }),
    priorLossWeight: widget.float({ default: 1, min: 0, max: 100, step: 0.05, tooltip: 'loss weight of images from datasets marked isRegularization (kohya\'s prior_loss_weight)' }),
    sampleEvery: widget.int({ default: 0, min: 0, max: 1_000_000, tooltip: 'render samples every N steps (0 = only at the end, when sampler settings are connected)' }),
    trainStages: widget.combo(TRAIN_STAGES, { default: 'both', tooltip: 'two experts (lowNoiseModel connected): train both LoRAs, or only the high_noise or low_noise one (ai-toolkit\'s train_high_noise / train_low_noise)' , families: ['wan'] }),
    switchEvery: widget.int({ default: 10, min: 1, max: 1_000_000, tooltip: 'two experts: steps on one expert before switching to the other (ai-toolkit\'s switch_boundary_every); only the expert in training is loaded' , families: ['wan'] }),
    boundary: widget.float({ default: 0, min: 0, max: 0.999, step: 0.005, tooltip: 'two experts: noise level where the high-noise expert hands over (timestep / 1000); 0 = the model\'s official value (Wan 2.2: 0.875 text-to-video, 0.9 image-to-video)' , families: ['wan'] }),
    flf2vCondition: widget.combo(FLF2V_CONDITIONS, { default: 'first and last frame', tooltip: 'first-and-last-frame models (Wan 2.1 FLF2V): give the model each clip\'s first and last frame, or only its first to train it as image-to-video (what ComfyUI\'s WanFirstLastFrameToVideo does without an end_image); other models ignore it', families: ['wan'] }),
    gradientCheckpointing: widget.combo(CHECKPOINTING_CHOICES, { default: 'auto', tooltip: 'recompute each block in the backward pass instead of keeping its activations: far less memory for ~1.3× the step time; auto = on for models of 1B+ parameters (SDXL, FLUX, Wan), off below' }),
  }),
  outputs: { training: 'TRAINING', lossHistory: 'LOSS_HISTORY' },
  async execute({ inputs, widgets, ctx }) {
    if (/[/\\]|^\.+$/.test(widgets.saveName.trim())) throw new Error('saveName: a plain name, no slashes');
    const images = trainingImageCount(inputs.datasets);
    const steps = widgets.stepsFrom === 'repeats' ? stepsForRepeats(images, widgets.repeats, widgets.batchSize, widgets.gradientAccumulation)
      : widgets.stepsFrom === 'epochs' ? stepsForEpochs(inputs.datasets, widgets.epochs, widgets.batchSize, widgets.gradientAccumulation)
      : widgets.steps;
    const settings: TrainSettings = { ...widgets, gradientCheckpointing: resolveCheckpointing(widgets.gradientCheckpointing, inputs.model), steps, multistage: { trainStages: widgets.trainStages, switchEvery: widgets.switchEvery, boundary: widgets.boundary } };
    const repeatsText = images > 0 ? `${images} image(s) × ${formatRepeats(repeatsPerImage(steps, widgets.batchSize, widgets.gradientAccumulation, images))} repeats = ${steps} steps × batch ${widgets.batchSize}${widgets.gradientAccumulation > 1 ? ` × grad accum ${widgets.gradientAccumulation}` : ''}` : undefined;
    if (inputs.regularizer?.preservationMultiplier && widgets.gradientAccumulation > 1 && inputs.regularizer.dataset) {
      ctx.warn('DOP with a regularization dataset draws one regularization batch per micro-batch');
    }
    const sampleImages: { filename: string; subfolder: string; type: 'temp' }[] = [];
    // What the editor needs to label and compare the samples (ui.samples): per sampled step, its grid, where each
    // image sits in it, and the LoRA file saved at that step.
    const sheets: Omit<SampleSheet, 'lora'>[] = [];
    const savedAt = new Map<number, string>();
    const saveName = widgets.saveName.trim();
    const sampler = inputs.samplerSettings ? trainingSampler(inputs.model, inputs.clip, inputs.vae, inputs.adapter, inputs.samplerSettings) : undefined;
    const result = await trainSd({ ...inputs, datasets: inputs.datasets }, settings, {
      checkpointDir: join(ctx.workDir, 'checkpoints'),
      cacheDir: ctx.paths.temp,
      id: ctx.cacheKey,
      progress: (p) => ctx.progress(repeatsText ? { ...p, data: { ...p.data, repeats: repeatsText } } : p),
      throwIfInterrupted: () => ctx.throwIfInterrupted(),
      warn: (m) => ctx.warn(m),
      onSave: saveName ? async (state) => {
        await saveLoraSnapshot(ctx, saveName, state, widgets.maxSavesToKeep);
        savedAt.set(state.step, `${LORA_OUTPUT_PREFIX}${saveName}/${snapshotName(saveName, state.step, firstExpert(state))}`);
      } : undefined,
      sample: sampler && (async (step, weights, adapters, experts) => {
        const { png, tiles, video } = await sampler(step, weights, adapters, () => ctx.throwIfInterrupted(), experts);
        ctx.preview({ mime: 'image/png', data: png });
        // Video models' samples: the strip shows the animated WebP of the clips (frames and fps on the sheet).
        const image = await publishImage(ctx, `train-${ctx.nodeId}-${ctx.cacheKey.slice(0, 8)}-${String(step).padStart(6, '0')}.${video ? 'webp' : 'png'}`, video?.webp ?? png);
        sampleImages.push(image as never);
        sheets.push({ image, step, tiles, ...(video ? { frames: video.frames, fps: video.fps } : {}) });
      }),
    });
    const t = result.training;
    // A step saved by this run, or by an earlier attempt this one resumed from (the editor checks the file is there).
    const loraAt = (step: number) => savedAt.get(step)
      ?? (saveName && (step === t.step || (widgets.saveEvery > 0 && step % widgets.saveEvery === 0)) ? `${LORA_OUTPUT_PREFIX}${saveName}/${snapshotName(saveName, step, firstExpert(t))}` : null);
    const points = t.lossHistory;
    const lossHistory: LossHistoryValue = Object.freeze({ points, byteSize: () => points.length * 16 });
    const chart = await lineChartPng([
      { values: points.map((p) => p.loss), color: '#4a9eff88' },
      { values: smooth(points.map((p) => p.loss), 0.9), color: '#ffb347' },
    ], { title: `loss · step ${t.step}` });
    const chartRef = await publishImage(ctx, `loss-${ctx.nodeId}-${ctx.cacheKey.slice(0, 12)}.png`, chart);
    const last = points.at(-1)?.loss;
    return {
      outputs: { training: t, lossHistory },
      ui: {
        images: [...sampleImages, chartRef],
        text: [
          `step ${t.step}${result.resumedFrom ? ` (resumed from ${result.resumedFrom})` : ''}, loss ${last?.toFixed(4) ?? '–'}`,
          `${(result.timing.steps / Math.max(1e-9, result.timing.loopMs / 1000)).toFixed(2)} it/s`,
          ...(result.memory ? [describeEstimate(result.memory)] : []),
          ...(repeatsText ? [repeatsText] : []),
          ...(t.experts ? [`experts (boundary ${t.expertBoundary}): ${Object.entries(t.experts).map(([e, x]) => `${e} ${x.optimizerSteps} steps`).join(', ')}`] : []),
        ],
        loss: points.map((p) => [p.step, p.loss]),
        samples: sheets.map((sh) => ({ ...sh, lora: loraAt(sh.step ?? -1) })),
      },
    };
  },
});

// ---- the steps calculator (ai-toolkit / kohya "repeats") ----------------------------------------------

/** Training images the repeats count refers to: every item of the non-regularization datasets. */
export function trainingImageCount(datasets: readonly Pick<Dataset, 'items' | 'isRegularization'>[]): number {
  return datasets.filter((d) => !d.isRegularization).reduce((n, d) => n + d.items.length, 0);
}

/** How often each image is seen in `steps` optimizer steps: steps × batch × grad accum / images. */
export function repeatsPerImage(steps: number, batchSize: number, gradientAccumulation: number, images: number): number {
  if (!(images > 0)) throw new Error('datasets: no training images to count repeats over');
  return (steps * batchSize * gradientAccumulation) / images;
}

/** The steps that show each image `repeats` times: ceil(images × repeats / (batch × grad accum)), at least 1. */
export function stepsForRepeats(images: number, repeats: number, batchSize: number, gradientAccumulation: number): number {
  if (!(images > 0)) throw new Error('stepsFrom repeats: the datasets hold no training images (regularization images are not counted)');
  if (!(repeats > 0)) throw new Error(`repeats: must be above 0 (got ${repeats})`);
  // Rounding guards against 10 × 0.3 / 1 = 3.0000000000000004 becoming 4 steps.
  const exact = Math.round(((images * repeats) / (batchSize * gradientAccumulation)) * 1e9) / 1e9;
  return Math.max(1, Math.ceil(exact));
}

/**
 * kohya's steps for a number of epochs, as the kohya_ss GUI works them out: one epoch shows every
 * training image as often as its Dataset's repeats (kohya's "N_name" folders), and a regularization
 * dataset doubles it (kohya pairs each training image with a regularization image), so steps =
 * ceil(epochs × Σ images × repeats × (2 with regularization) / (batch × grad accum)).
 */
export function stepsForEpochs(datasets: readonly Pick<Dataset, 'epochLength' | 'isRegularization'>[], epochs: number, batchSize: number, gradientAccumulation: number): number {
  const perEpoch = datasets.filter((d) => !d.isRegularization).reduce((n, d) => n + d.epochLength, 0);
  if (!(perEpoch > 0)) throw new Error('stepsFrom epochs: the datasets hold no training images (regularization images are not counted)');
  if (!(Number.isInteger(epochs) && epochs >= 1)) throw new Error(`epochs: must be a whole number ≥ 1 (got ${epochs})`);
  const regularization = datasets.some((d) => d.isRegularization) ? 2 : 1;
  return Math.max(1, Math.ceil((epochs * perEpoch * regularization) / (batchSize * gradientAccumulation)));
}

const formatRepeats = (r: number) => (Number.isInteger(r) ? String(r) : r.toFixed(2));

/** Exponential moving average, as the loss chart's smoothed line. */
export function smooth(values: number[], factor: number): number[] {
  let acc = NaN;
  return values.map((v) => (acc = Number.isFinite(acc) ? acc * factor + v * (1 - factor) : v));
}

/**
 * The file name of a periodic save: `<name>_000000250.safetensors`, and one per expert when two are
 * trained, as ai-toolkit names them: `<name>_000000250_high_noise.safetensors`.
 */
const snapshotName = (name: string, step: number, expert?: string) => (expert ? expertLoraFileName(name, expert as WanExpert, step) : `${name}_${String(step).padStart(9, '0')}.safetensors`);

/** The expert whose LoRA stands for a multistage state in the editor's samples (the first trained one). */
const firstExpert = (state: TrainingValue) => (state.experts ? Object.keys(state.experts).find((e) => state.experts![e].weights === state.weights) : undefined);

/** A periodic save, as ai-toolkit writes them: `<name>_000000250.safetensors` (per expert: `…_high_noise`), newest `keep` kept. */
async function saveLoraSnapshot(ctx: NodeContext, name: string, state: TrainingValue, keep: number) {
  const dir = ctx.resolvePath('output', name);
  await mkdir(dir, { recursive: true });
  const experts: [string | undefined, TrainingValue['weights']][] = state.experts ? Object.entries(state.experts).map(([e, x]) => [e, x.weights]) : [[undefined, state.weights]];
  for (const [expert, weights] of experts) {
    const file = join(dir, snapshotName(name, state.step, expert));
    const metadata = { ...loraMetadata({ training: state, spec: state.adapter, name, format: 'kohya', usedEma: false, workflow: ctx.workflow }), ...(expert ? { loragraph_expert: expert, loragraph_expert_boundary: String(state.expertBoundary) } : {}) };
    await saveLoraFile(file, { spec: state.adapter, family: familyById(state.base.family), config: state.base.config!, weights, format: 'kohya', dtype: 'F16', metadata });
    if (keep > 0) {
      const pattern = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_\\d{9}${expert ? `_${expert}` : ''}\\.safetensors$`);
      const saves = (await readdir(dir)).filter((f) => pattern.test(f)).sort();
      for (const old of saves.slice(0, Math.max(0, saves.length - keep))) await rm(join(dir, old), { force: true });
    }
  }
}
