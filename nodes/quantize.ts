// The Quantize node: stores the frozen denoiser and, separately, the text encoder in fewer bits — int8
// (per channel), NF4 or int4 (blockwise, as bitsandbytes), or fp8 e4m3 — dequantised inside the graphs;
// adapters still train in float32. Shows the weight memory before and after.
import { z } from 'zod';
import { defineNode, input, widget } from './define';
import { quantizePart } from './models/quantize';
import { WeightFile } from '../kernels/nn/weight-file';
import { clipValue, modelValue } from './models/values';
import type { ClipValue, ModelValue, QuantScheme } from './sockets';

const CHOICES = ['none', 'int8', 'nf4', 'int4', 'fp8'] as const;
const SCHEME: Record<(typeof CHOICES)[number], QuantScheme> = { none: 'none', int8: 'int8', nf4: 'nf4', int4: 'int4', fp8: 'fp8_e4m3' };

const mb = (n: number) => `${(n / (1 << 20)).toFixed(n < 10 << 20 ? 2 : 0)} MB`;

export default defineNode({
  type: 'Quantize',
  title: 'Quantize',
  category: 'loaders',
  description: 'Stores the frozen UNet and text encoder weights in int8, 4-bit (NF4/int4) or fp8 to save memory; the LoRA still trains in float32.',
  version: 1,
  inputs: {
    model: input<ModelValue>('MODEL'),
    clip: input<ClipValue>('CLIP', { optional: true, tooltip: 'connect to quantise the text encoder too' }),
  },
  widgets: z.object({
    unet: widget.combo(CHOICES, { default: 'int8', tooltip: 'UNet weights: int8 (per channel, near lossless), nf4 (4-bit normal-float, as QLoRA), int4, fp8 (e4m3)' }),
    textEncoder: widget.combo(CHOICES, { default: 'none', tooltip: 'text encoder weights (when CLIP is connected)' }),
  }),
  outputs: { model: 'MODEL', clip: 'CLIP' },
  execute({ inputs, widgets: w, ctx }) {
    // Packed weights go to a scratch file that graphs read as external data (no JS copy beside ORT's).
    const file = (label: string) => new WeightFile(ctx.paths.temp, label);
    const { model, clip } = inputs;
    if (model.quantization !== 'none' && w.unet !== 'none') throw new Error(`unet: this MODEL is already quantised (${model.quantization}); connect the Load Model output`);
    if (clip && clip.quantization !== 'none' && w.textEncoder !== 'none') throw new Error(`textEncoder: this CLIP is already quantised (${clip.quantization})`);
    const text: string[] = [];
    let outModel = model;
    if (w.unet !== 'none') {
      const before = model.byteSize();
      const part = model.family.parts(model.config).find((p) => p.role === 'denoiser')!.id;
      const q = quantizePart(model.family, model.config, part, model.denoiser, SCHEME[w.unet] as Exclude<QuantScheme, 'none'>, file(`${model.source.label}-${w.unet}`));
      const after = before - q.fp32Bytes + q.quantBytes;
      outModel = modelValue(model.family, model.source, model.config, q.weights, SCHEME[w.unet], () => after);
      text.push(`${part === 'unet' ? 'UNet' : 'transformer'} ${w.unet}: ${mb(before)} → ${mb(after)} (${q.layers} layers)`);
    }
    let outClip = clip;
    if (clip && w.textEncoder !== 'none') {
      const before = clip.byteSize();
      // Every text encoder of the family (SDXL: CLIP-L and OpenCLIP bigG) in the same scheme.
      const parts = clip.encoders.map((e) => ({ e, q: quantizePart(clip.family, clip.config, e.part, e.weights, SCHEME[w.textEncoder] as Exclude<QuantScheme, 'none'>, file(`${clip.source.label}-${e.part}-${w.textEncoder}`)) }));
      const after = before - parts.reduce((n, p) => n + p.q.fp32Bytes - p.q.quantBytes, 0);
      outClip = clipValue(clip.family, clip.source, clip.config, parts.map((p) => ({ ...p.e, weights: p.q.weights })), clip.clipSkip, SCHEME[w.textEncoder], () => after);
      text.push(`text encoder ${w.textEncoder}: ${mb(before)} → ${mb(after)} (${parts.reduce((n, p) => n + p.q.layers, 0)} layers)`);
    }
    if (!clip && w.textEncoder !== 'none') text.push('text encoder: connect CLIP to quantise it');
    if (!text.length) text.push('nothing quantised');
    return {
      outputs: { model: outModel, clip: outClip },
      ui: { text, memory: { unetBefore: model.byteSize(), unetAfter: outModel.byteSize(), ...(clip ? { textEncoderBefore: clip.byteSize(), textEncoderAfter: outClip!.byteSize() } : {}) } },
    };
  },
});
