// The Save LoRA node: writes the adapter of a TRAINING state as a LoRA file users load anywhere —
// kohya format (ComfyUI, A1111/Forge, sd-scripts, diffusers), diffusers format (diffusers, ComfyUI) or,
// for FLUX, ai-toolkit's (its default: ai-toolkit, ComfyUI, diffusers) — in fp16/bf16/fp32, with the
// metadata tools show.
import { mkdir, stat } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { z } from 'zod';
import { defineNode, input, widget } from './define';
import { familyById } from '../kernels/families/registry';
import { LORA_FORMAT_TOOLS, loraLoadsIn, resolveLoraFormat, SAVE_LORA_FORMATS, saveLoraFile } from './models/lora-file';
import { loraFileName, loraMetadata } from './models/lora-metadata';
import type { LoraFileValue, TrainingValue } from './sockets';

const DTYPES = { fp16: 'F16', bf16: 'BF16', fp32: 'F32' } as const;

export default defineNode({
  type: 'SaveLora',
  title: 'Save LoRA',
  category: 'output',
  description: 'Saves the trained adapter as a .safetensors LoRA file in the output folder.',
  version: 3,
  isOutput: true,
  inputs: { training: input<TrainingValue>('TRAINING') },
  widgets: z.object({
    name: widget.text({ default: 'my-lora', tooltip: 'the LoRA\'s name ({name} in the file name; ss_output_name)' }),
    fileName: widget.text({ default: '{name}', tooltip: 'file name under the output folder: {name}, {step}, {date}; subfolders allowed (e.g. "{name}/{name}-{step}")' }),
    format: widget.combo(SAVE_LORA_FORMATS, { default: 'auto', tooltip: `auto: the model's usual format (kohya for SD 1.x/SDXL, ai-toolkit for FLUX and Wan). Where the file loads completely — kohya: ${LORA_FORMAT_TOOLS.kohya.join(', ')} (LoKr: ${LORA_FORMAT_TOOLS['kohya-lokr'].join(', ')}); diffusers: ${LORA_FORMAT_TOOLS.diffusers.join(', ')} (alpha folded into the weights; no LoKr); ai-toolkit (FLUX, Wan: diffusion_model.… lora_A/lora_B, alpha folded): ai-toolkit, ComfyUI, diffusers; the status line says where each model's files load` }),
    dtype: widget.combo(['fp16', 'bf16', 'fp32'], { default: 'fp16', tooltip: 'precision of the saved tensors' }),
    useEma: widget.toggle({ default: false, tooltip: 'save the EMA weights (when the Train node keeps one)' }),
  }),
  outputs: { loraFile: 'LORA_FILE' },
  async execute({ inputs, widgets: w, ctx }) {
    const t = inputs.training;
    if (w.useEma && !t.ema) throw new Error('useEma: this TRAINING has no EMA weights (turn EMA on in the Train node)');
    if (/[/\\]/.test(w.name)) throw new Error('name: no slashes (use fileName for subfolders)');
    const file = ctx.resolvePath('output', loraFileName(w.fileName, { name: w.name, step: t.step }));
    const family = familyById(t.base.family);
    const format = resolveLoraFormat(w.format, family, t.adapter);
    const metadata = loraMetadata({ training: t, spec: t.adapter, name: w.name, format, usedEma: w.useEma, workflow: ctx.workflow });
    // The module layout comes from the base model's sizes, which travel with the TRAINING value.
    const config = t.base.config;
    if (!config) throw new Error(`training: the TRAINING value does not carry its base model's config (${t.base.label})`);
    await mkdir(dirname(file), { recursive: true });
    await saveLoraFile(file, { spec: t.adapter, family, config, weights: w.useEma ? t.ema! : t.weights, format, dtype: DTYPES[w.dtype], metadata });
    const size = (await stat(file)).size;
    const value: LoraFileValue = Object.freeze({ kind: 'lora_file' as const, path: file, format, byteSize: () => 256 });
    return {
      outputs: { loraFile: value },
      ui: { text: [`${relative(ctx.paths.output, file)} · ${(size / 1024).toFixed(1)} KB · ${format} ${w.dtype} · step ${t.step}`, `loads in ${loraLoadsIn(format, t.adapter.algo, family).join(', ')}`], file: relative(ctx.paths.output, file), bytes: size },
    };
  },
});
