// The Loss Graph node: the loss curve of a TRAINING state (or a LOSS_HISTORY), raw and smoothed, as an
// inline PNG. Smoothing is an exponential moving average with bias correction, like TensorBoard's.
import { z } from 'zod';
import { defineNode, input, widget } from './define';
import { lineChartPng } from './render/chart';
import { publishImage } from './render/publish';
import type { LossHistoryValue, LossPoint, TrainingValue } from './sockets';

/** EMA of `values` with weight `smoothing` on the past, debiased so the start is not pulled to 0. */
export function smoothLoss(values: readonly number[], smoothing: number): number[] {
  const out: number[] = [];
  let avg = 0, weight = 0;
  for (const v of values) {
    avg = smoothing * avg + (1 - smoothing) * v;
    weight = smoothing * weight + (1 - smoothing);
    out.push(weight > 0 ? avg / weight : v);
  }
  return out;
}

export default defineNode({
  type: 'LossGraph',
  title: 'Loss Graph',
  category: 'output',
  description: 'Plots the training loss, raw and smoothed.',
  version: 1,
  isOutput: true,
  inputs: {
    training: input<TrainingValue>('TRAINING', { optional: true }),
    lossHistory: input<LossHistoryValue>('LOSS_HISTORY', { optional: true }),
  },
  widgets: z.object({
    smoothing: widget.float({ default: 0.9, min: 0, max: 0.999, step: 0.01, tooltip: 'weight of the past in the smoothed curve (0 = raw)' }),
  }),
  async execute({ inputs, widgets: w, ctx }) {
    const points: readonly LossPoint[] | undefined = inputs.lossHistory?.points ?? inputs.training?.lossHistory;
    if (!points) throw new Error('training / lossHistory: connect a TRAINING or LOSS_HISTORY input');
    if (points.length === 0) return { outputs: {}, ui: { text: ['no loss recorded yet'] } };
    const raw = points.map((p) => p.loss);
    const smooth = smoothLoss(raw, w.smoothing);
    const last = points[points.length - 1];
    const title = `loss · step ${points[0].step}–${last.step} · last ${smooth[smooth.length - 1].toPrecision(4)}`;
    const png = await lineChartPng([{ values: raw, color: '#4a9eff55' }, { values: smooth, color: '#ffb347' }], { width: 360, height: 180, title });
    ctx.preview({ mime: 'image/png', data: png });
    const ref = await publishImage(ctx, `loss-${ctx.nodeId}-${ctx.cacheKey.slice(0, 12)}.png`, png);
    return {
      outputs: {},
      ui: { images: [ref], text: [title], loss: points.map((p, i) => ({ step: p.step, loss: p.loss, smoothed: smooth[i] })) },
    };
  },
});
