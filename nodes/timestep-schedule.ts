// The Timestep Schedule node: which noise levels training samples (ai-toolkit's timestep_type,
// content_or_style bias, min/max denoising steps, shift, multistage experts), with a histogram preview.
import { z } from 'zod';
import { TIMESTEP_TYPES, TIMESTEP_BIASES, timestepHistogram, sampleTimesteps, type TimestepSamplingConfig, type MultistageConfig, multistageStages, stageAt, withStageRange } from '../kernels/schedules';
import { dynamicShiftMu, imageSeqLen } from '../kernels/schedules/flow-matching';
import type { Rng } from '../kernels/random';
import { defineNode, widget } from './define';
import { barChartPng } from './render/chart';
import { publishImage } from './render/publish';

/** The SCHEDULE value: draws training timesteps (noise levels in [0, 1]) for a given step. */
export interface ScheduleValue {
  readonly kind: 'schedule';
  readonly config: Readonly<TimestepSamplingConfig>;
  readonly multistage?: Readonly<MultistageConfig>;
  /**
   * `count` noise levels in [0, 1] for optimizer step `step` (multistage picks the stage's band). With
   * dynamic shift, `imageSeqLen` (the batch's latent token count, when the trainer knows it) sets μ;
   * without it, the node's resolution does.
   */
  sample(rng: Rng, count: number, step: number, imageSeqLen?: number): Float64Array;
  byteSize(): number;
}

export function parseBoundaries(text: string): number[] {
  if (!text.trim()) return [];
  const values = text.split(/[\s,;]+/).filter(Boolean).map(Number);
  if (values.some((v) => !(v > 0 && v < 1000))) throw new Error(`multistageBoundaries: expected timesteps between 0 and 1000 like "875" (got "${text}")`);
  return values.map((v) => v / 1000).sort((a, b) => b - a);
}

export default defineNode({
  type: 'TimestepSchedule',
  title: 'Timestep Schedule',
  category: 'training',
  description: 'How training picks noise levels: distribution type, content/style bias, range, shift and multistage experts.',
  // 2: `weighted` draws uniformly and weighs the loss (ai-toolkit's table) instead of drawing from a bell.
  version: 2,
  widgets: z.object({
    timestepType: widget.combo(TIMESTEP_TYPES, { default: 'sigmoid', tooltip: 'linear = uniform; sigmoid concentrates mid-range; weighted = uniform like linear, and on flow models (FLUX, Wan…) each sample\'s loss is scaled by its noise level as ai-toolkit does: ×1.5 around timestep 875, ×0.9 at pure noise, ×0.45 nearly clean; shift skews to high noise; lognorm_blend mixes lognormal and uniform' }),
    timestepBias: widget.combo(TIMESTEP_BIASES, { default: 'balanced', tooltip: 'high_noise favours composition/content, low_noise favours detail/style' }),
    minTimestep: widget.int({ default: 0, min: 0, max: 999, tooltip: 'lowest timestep sampled (0–999)' }),
    maxTimestep: widget.int({ default: 1000, min: 1, max: 1000, tooltip: 'highest timestep sampled (1–1000)' }),
    shift: widget.float({ default: 3, min: 0.1, max: 20, step: 0.1, tooltip: 'shift type: how far to skew towards high noise' }),
    dynamicShift: widget.toggle({ default: false, tooltip: 'shift type: the shift follows the image size as FLUX does (μ from the latent token count: 0.5 at 256 tokens, 1.15 at 4096; shift = e^μ) instead of the fixed shift' }),
    resolution: widget.int({ default: 1024, min: 64, max: 4096, step: 64, tooltip: 'dynamic shift: the training resolution whose token count, (resolution / 16)², sets μ (the trainer uses each batch\'s own size when it reports it)' }),
    sigmoidScale: widget.float({ default: 1, min: 0.1, max: 10, step: 0.1, tooltip: 'sigmoid type: spread of the normal before the sigmoid' }),
    multistageBoundaries: widget.text({ default: '', tooltip: 'timesteps where experts hand over, e.g. "875" for Wan 2.2 high/low noise; empty = one stage' }),
    switchEvery: widget.int({ default: 1, min: 1, max: 100000, tooltip: 'multistage: steps on one expert before switching' }),
  }),
  outputs: { schedule: 'SCHEDULE' },
  async execute({ widgets: w, ctx }) {
    if (w.minTimestep >= w.maxTimestep) throw new Error(`minTimestep (${w.minTimestep}) must be below maxTimestep (${w.maxTimestep})`);
    const config: TimestepSamplingConfig = {
      timestepType: w.timestepType, timestepBias: w.timestepBias,
      minTimestep: w.minTimestep / 1000, maxTimestep: w.maxTimestep / 1000, shift: w.shift, sigmoidScale: w.sigmoidScale,
      ...(w.dynamicShift ? { dynamicShift: { imageSeqLen: imageSeqLen(w.resolution, w.resolution) } } : {}),
    };
    if (w.dynamicShift && w.timestepType !== 'shift') ctx.warn(`dynamicShift applies to the shift type only (this schedule is ${w.timestepType})`);
    const withSeqLen = (c: TimestepSamplingConfig, seqLen?: number): TimestepSamplingConfig => (c.dynamicShift && seqLen ? { ...c, dynamicShift: { ...c.dynamicShift, imageSeqLen: seqLen } } : c);
    const boundaries = parseBoundaries(w.multistageBoundaries);
    const multistage = boundaries.length ? { boundaries, switchEvery: w.switchEvery } : undefined;
    if (multistage) multistageStages(multistage);
    const value: ScheduleValue = {
      kind: 'schedule', config, multistage,
      sample: (rng, count, step, seqLen) => sampleTimesteps(rng, count, withSeqLen(multistage ? withStageRange(config, stageAt(step, multistage)) : config, seqLen)),
      byteSize: () => 256,
    };
    const hist = timestepHistogram(config, 50);
    const shiftText = config.dynamicShift ? ` · shift e^${dynamicShiftMu(config.dynamicShift.imageSeqLen).toFixed(2)} at ${w.resolution}px` : '';
    const png = await barChartPng(hist.probability, { title: `${w.timestepType} · ${w.timestepBias}${shiftText}` });
    ctx.preview({ mime: 'image/png', data: png });
    const ref = await publishImage(ctx, `timesteps-${ctx.nodeId}-${ctx.cacheKey.slice(0, 12)}.png`, png);
    return { outputs: { schedule: value }, ui: { images: [ref], histogram: Array.from(hist.probability) } };
  },
});
