// The Save LoRA node: writes the adapter of a TRAINING state as a LoRA file users load anywhere —
// kohya format (ComfyUI, A1111/Forge, sd-scripts, diffusers), diffusers format (diffusers, ComfyUI) or,
// for FLUX, ai-toolkit's (its default: ai-toolkit, ComfyUI, diffusers) — in fp16/bf16/fp32, with the
// metadata tools show. A two-expert (Wan 2.2 A14B multistage) state is saved as one file per expert,
// named as ai-toolkit does: `<name>_high_noise.safetensors` and `<name>_low_noise.safetensors`.
import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { z } from 'zod';
import { defineNode, input, widget } from './define';
import { familyById } from '../kernels/families/registry';
import { expertLoraFileName } from '../kernels/wan/experts';
import { LORA_FORMAT_TOOLS, loraLoadsIn, resolveLoraFormat, SAVE_LORA_FORMATS, saveLoraFile } from './models/lora-file';
import { loraFileName, loraMetadata } from './models/lora-metadata';
import type { LoraFileValue, TrainingValue } from './sockets';
import type { WanExpert } from '../kernels/wan/detect';

const DTYPES = { fp16: 'F16', bf16: 'BF16', fp32: 'F32' } as const;

export default defineNode({
  type: 'SaveLora',
  title: 'Save LoRA',
  category: 'output',
  description: 'Saves the trained adapter as a .safetensors LoRA file in the output folder (two experts: one file per expert, <name>_high_noise / <name>_low_noise).',
  version: 4,
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
    // One file per expert when two were trained (the same modules, each expert's own weights).
    const files = t.experts
      ? Object.entries(t.experts).map(([expert, e]) => {
        if (w.useEma && !e.ema) throw new Error(`useEma: the ${expert} expert has no EMA weights (turn EMA on in the Train node)`);
        return { expert, path: expertFile(file, expert), weights: w.useEma ? e.ema! : e.weights, untrained: e.optimizerSteps === 0 };
      })
      : [{ expert: undefined, path: file, weights: w.useEma ? t.ema! : t.weights, untrained: false }];
    await mkdir(dirname(file), { recursive: true });
    const sizes: number[] = [];
    for (const f of files) {
      const meta = f.expert ? { ...metadata, loragraph_expert: f.expert, loragraph_expert_boundary: String(t.expertBoundary) } : metadata;
      await saveLoraFile(f.path, { spec: t.adapter, family, config, weights: f.weights, format, dtype: DTYPES[w.dtype], metadata: meta });
      sizes.push((await stat(f.path)).size);
    }
    const experts = t.experts ? Object.freeze(Object.fromEntries(files.map((f) => [f.expert!, f.path]))) : undefined;
    const value: LoraFileValue = Object.freeze({
      kind: 'lora_file' as const, path: files[0].path, format, byteSize: () => 256,
      ...(experts ? { experts, expertBoundary: t.expertBoundary } : {}),
    });
    const shown = files.map((f, i) => `${relative(ctx.paths.output, f.path)} · ${(sizes[i] / 1024).toFixed(1)} KB${f.untrained ? ' (this expert was not trained)' : ''}`);
    return {
      outputs: { loraFile: value },
      ui: { text: [...shown.slice(0, -1), `${shown.at(-1)} · ${format} ${w.dtype} · step ${t.step}`, `loads in ${loraLoadsIn(format, t.adapter.algo, family).join(', ')}`], file: relative(ctx.paths.output, files[0].path), bytes: sizes[0] },
    };
  },
});

/** One expert's file beside the name the fileName widget gives: `<name>_high_noise.safetensors`, as ai-toolkit names it. */
function expertFile(file: string, expert: string): string {
  return join(dirname(file), expertLoraFileName(basename(file, '.safetensors'), expert as WanExpert));
}
