// The Optimizer node: which optimizer, its learning rate and hyper-parameters, gradient clipping and
// the LR scheduler — the settings kohya's optimizer_type / learning_rate / lr_scheduler users know.
import { z } from 'zod';
import { createOptimizer, type Optimizer } from '../kernels/optim';
import { LR_SCHEDULERS, lrAt, lrCurve, type LrScheduler } from '../kernels/schedules';
import { defineNode, widget } from './define';

export const OPTIMIZERS = ['AdamW', 'AdamW8bit', 'Adafactor', 'Lion', 'Prodigy', 'SGD'] as const;

/** The OPTIMIZER value: settings plus a factory for the in-graph optimizer. */
export interface OptimizerValue {
  readonly kind: 'optimizer';
  readonly name: (typeof OPTIMIZERS)[number];
  readonly learningRate: number;
  /** Text-encoder learning rate (when the adapter trains the text encoder); 0 = same as learningRate. */
  readonly textEncoderLr: number;
  readonly maxGradNorm: number;
  readonly lrScheduler: LrScheduler;
  readonly warmupSteps: number;
  readonly numCycles: number;
  readonly settings: Readonly<Record<string, number | boolean>>;
  create(): Optimizer;
  /** Learning rate at optimizer step `step` (0-based) of a run of `totalSteps`. */
  lrAt(step: number, totalSteps: number): number;
  byteSize(): number;
}

export default defineNode({
  type: 'Optimizer',
  title: 'Optimizer',
  category: 'training',
  description: 'The optimizer and learning-rate schedule for a Train node.',
  version: 1,
  widgets: z.object({
    optimizer: widget.combo(OPTIMIZERS, { default: 'AdamW', tooltip: 'AdamW8bit and Adafactor save memory; Prodigy finds its own step size (set learningRate to 1)' }),
    learningRate: widget.float({ default: 1e-4, min: 0, max: 10, step: 1e-5, tooltip: 'base learning rate (1e-4 is typical for LoRA; 1.0 for Prodigy)' }),
    textEncoderLr: widget.float({ default: 0, min: 0, max: 10, step: 1e-5, tooltip: 'learning rate for text-encoder LoRA modules; 0 = same as learningRate' }),
    weightDecay: widget.float({ default: 0.01, min: 0, max: 1, step: 0.001, tooltip: 'decoupled weight decay (AdamW, Lion, Prodigy); L2 for SGD' }),
    beta1: widget.float({ default: 0.9, min: 0, max: 0.9999, step: 0.001, tooltip: 'first-moment decay (momentum for SGD)' }),
    beta2: widget.float({ default: 0.999, min: 0, max: 0.99999, step: 0.0001, tooltip: 'second-moment decay (Lion uses 0.99)' }),
    eps: widget.float({ default: 1e-8, min: 0, max: 1, step: 1e-9, tooltip: 'numerical stability term' }),
    maxGradNorm: widget.float({ default: 1, min: 0, max: 1000, step: 0.1, tooltip: 'clip the global gradient norm to this; 0 = off' }),
    lrScheduler: widget.combo(LR_SCHEDULERS, { default: 'constant', tooltip: 'how the learning rate changes over the run' }),
    warmupSteps: widget.int({ default: 0, min: 0, max: 1_000_000, tooltip: 'linear warmup from 0 over this many steps' }),
    numCycles: widget.float({ default: 1, min: 0.5, max: 100, step: 0.5, tooltip: 'cosine_with_restarts: number of restarts' }),
    relativeStep: widget.toggle({ default: false, tooltip: 'Adafactor: ignore learningRate and use its own relative step size' }),
    nesterov: widget.toggle({ default: false, tooltip: 'SGD: Nesterov momentum' }),
  }),
  outputs: { optimizer: 'OPTIMIZER' },
  execute({ widgets: w }) {
    const momentum = w.optimizer === 'SGD' ? w.beta1 : 0;
    const options: Record<string, unknown> = {
      AdamW: { beta1: w.beta1, beta2: w.beta2, eps: w.eps, weightDecay: w.weightDecay },
      AdamW8bit: { beta1: w.beta1, beta2: w.beta2, eps: w.eps, weightDecay: w.weightDecay },
      Adafactor: { weightDecay: w.weightDecay, relativeStep: w.relativeStep, scaleParameter: w.relativeStep, warmupInit: false },
      Lion: { beta1: w.beta1, beta2: w.beta2 === 0.999 ? 0.99 : w.beta2, weightDecay: w.weightDecay },
      Prodigy: { beta1: w.beta1, beta2: w.beta2, eps: w.eps, weightDecay: w.weightDecay },
      SGD: { momentum, nesterov: w.nesterov && momentum > 0, weightDecay: w.weightDecay },
    }[w.optimizer]!;
    // Fail here, against this node, rather than when the Train node compiles.
    createOptimizer(w.optimizer, options as never);
    // numCycles means restarts; plain cosine keeps its half wave down to 0.
    const schedule = (totalSteps: number) => ({ scheduler: w.lrScheduler, learningRate: w.learningRate, totalSteps, warmupSteps: w.warmupSteps,
      ...(w.lrScheduler === 'cosine_with_restarts' ? { numCycles: w.numCycles } : {}) });
    const value: OptimizerValue = {
      kind: 'optimizer',
      name: w.optimizer,
      learningRate: w.learningRate,
      textEncoderLr: w.textEncoderLr,
      maxGradNorm: w.maxGradNorm,
      lrScheduler: w.lrScheduler,
      warmupSteps: w.warmupSteps,
      numCycles: w.numCycles,
      settings: options as Record<string, number | boolean>,
      create: () => createOptimizer(w.optimizer, options as never),
      lrAt: (step, totalSteps) => lrAt(step, schedule(Math.max(totalSteps, 1))),
      byteSize: () => 256,
    };
    const curve = lrCurve(schedule(1000));
    return {
      outputs: { optimizer: value },
      ui: { text: [`${w.optimizer}, lr ${w.learningRate} (${w.lrScheduler}${w.warmupSteps ? `, ${w.warmupSteps} warmup` : ''})`], lrCurve: Array.from(curve.filter((_, i) => i % 20 === 0)) },
    };
  },
});
