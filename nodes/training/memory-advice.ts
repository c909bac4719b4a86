// The memory pre-flight in the words of the nodes: what a Train (or Sampler) run is estimated to need,
// and, when it cannot fit, the widgets to change on which node — instead of the run dying mid-way.
import { MemoryPreflightError, deviceMemoryLimit, type MemoryEstimate, type MemorySettings } from '../../kernels/train/memory';
import { PrecisionWeights } from '../../kernels/nn/precision';
import type { ModelValue } from '../sockets';

const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${Math.round(b / 2 ** 20)} MiB`);

/** The storage precision of a MODEL's frozen denoiser weights (Load Model's precision). */
export function precisionOf(model: ModelValue): string {
  return model.denoiser instanceof PrecisionWeights ? model.denoiser.options.precision : 'fp32';
}

/** One line for a node's text: the estimated peak and its parts. */
export function describeEstimate(e: MemoryEstimate, limit?: number): string {
  return `memory: estimated peak ${gib(e.total)} (weights ${gib(e.weights)}, activations ${gib(e.activations)}, inputs and optimizer state ${gib(e.inputs)})`
    + (limit ? ` of ${gib(limit)} available` : '');
}

/**
 * The refusal a node shows when the pre-flight finds that a run cannot fit: the estimate, the limit,
 * and each setting that lowers memory, with its node, widget and current value.
 */
export function refusal(what: string, e: MemoryPreflightError, s: MemorySettings): string {
  const advice = [
    ...(!s.gradientCheckpointing ? ['turn on gradientCheckpointing on the Train node (now off)'] : []),
    ...(s.precision === undefined || s.precision === 'fp32' ? [`set precision to bf16 or fp16 on Load Model (now ${s.precision ?? 'fp32'})`] : []),
    ...(s.quantisation === undefined || s.quantisation === 'none' ? ['quantise the base: a Quantize node between Load Model and Train with unet nf4 or int8 (now none)'] : []),
    ...(s.batch !== undefined && s.batch > 1 ? [`lower batchSize on the Train node (now ${s.batch}; gradientAccumulation keeps the effective batch)`] : []),
    ...(s.frames !== undefined && s.frames > 1 ? [`use fewer frames: numFrames on the Dataset (now ${s.frames})`] : []),
    `lower the resolution on the Dataset${s.resolution ? ` (now ${s.resolution})` : ''}`,
  ];
  const source = process.env.LORAGRAPH_MEMORY_LIMIT_MB ? 'LORAGRAPH_MEMORY_LIMIT_MB' : 'free memory';
  return `${what} needs an estimated ${gib(e.estimate.total)} (weights ${gib(e.estimate.weights)}, activations ${gib(e.estimate.activations)}, `
    + `inputs and optimizer state ${gib(e.estimate.inputs)}, runtime ${gib(e.estimate.runtime)}) but ${gib(e.limit)} is available (${source}). `
    + `To fit: ${advice.join('; ')}.`;
}

/**
 * The Sampler's pre-flight: refuses a preview pipeline whose estimated peak (kernels/families/pipeline.ts
 * `preflight`) does not fit in the device's memory, naming what to change.
 */
export function checkSampling(e: MemoryEstimate, s: { width: number; height: number; frames: number; model: ModelValue }) {
  const limit = deviceMemoryLimit();
  if (e.total <= limit) return;
  const precision = precisionOf(s.model);
  const advice = [
    `lower width and height on the Sampler (now ${s.width}×${s.height})`,
    ...(s.frames > 1 ? [`use fewer frames on the Sampler (now ${s.frames})`] : []),
    ...(precision === 'fp32' ? ['set precision to bf16 or fp16 on Load Model (now fp32)'] : []),
    ...(s.model.quantization === 'none' ? ['quantise the base with a Quantize node (unet nf4 or int8; now none)'] : []),
    ...(s.model.offload !== 'blocks' ? [`set offload to blocks on Load Model (now ${s.model.offload ?? 'none'})`] : []),
  ];
  const source = process.env.LORAGRAPH_MEMORY_LIMIT_MB ? 'LORAGRAPH_MEMORY_LIMIT_MB' : 'free memory';
  throw new MemoryPreflightError(`Sampling at ${s.width}×${s.height}${s.frames > 1 ? ` × ${s.frames} frames` : ''} needs an estimated ${gib(e.total)} `
    + `(weights ${gib(e.weights)}, working memory ${gib(e.activations)}) but ${gib(limit)} is available (${source}). To fit: ${advice.join('; ')}.`, e, limit);
}
