// The Load Model node: a checkpoint file or diffusers folder from the models folder (or the built-in tiny
// model) → MODEL, CLIP and VAE; detects the model family from the checkpoint's keys (SDXL fine-tunes such
// as Pony and Illustrious load as SDXL), names families it cannot train, and applies clip skip.
import { z } from 'zod';
import { UnsupportedModelError, familyLabel, modelLabel, trainableFamilies } from '../kernels/families/registry';
import { defineNode, widget } from './define';
import { BUILTIN_TINY } from './models/builtin';
import { loadModel } from './models/load';
import { PRECISION_CHOICES, resolvePrecision, withPrecision } from './models/precision';
import { OFFLOAD_MODES } from '../kernels/train/offload';

/** The family widget's choices: detect, or one of the families loragraph trains (by id). */
const FAMILY_CHOICES = ['auto', ...trainableFamilies().map((f) => f.id)] as [string, ...string[]];
/** A separate-file widget left on `auto` is searched for (beside the checkpoint, text_encoders/, vae/). */
const AUTO = 'auto';

const millions = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)}M`;
const PART_NAMES: Record<string, string> = { unet: 'UNet', transformer: 'transformer', text_encoder: 'text encoder', text_encoder_2: 'text encoder 2', vae: 'VAE', clip_vision: 'CLIP vision' };

export default defineNode({
  type: 'LoadModel',
  title: 'Load Model',
  category: 'loaders',
  description: 'Loads a checkpoint (.safetensors single file or diffusers folder) — Stable Diffusion 1.x, SDXL (Pony, Illustrious…), FLUX.2 [klein] and [dev], FLUX.1 — and outputs its denoiser (MODEL), text encoders (CLIP) and VAE; for FLUX the text encoder and VAE may be separate files (ComfyUI\'s layout).',
  version: 1,
  widgets: z.object({
    checkpoint: widget.path({ kind: 'models', default: BUILTIN_TINY, tooltip: `a .safetensors checkpoint or diffusers folder under the models folder; "${BUILTIN_TINY}" is the small model shipped with loragraph` }),
    clipSkip: widget.int({ default: 1, min: 1, max: 12, tooltip: 'use the text encoder\'s n-th layer from the end (2 = penultimate, as many anime models expect)', families: ['sd1'] }),
    precision: widget.combo(PRECISION_CHOICES, { default: 'auto', tooltip: 'storage of the frozen denoiser weights: bf16/fp16 halve their memory (the LoRA still trains in fp32); auto = bf16 for models of 1B+ parameters (SDXL, FLUX, Wan), fp32 below' }),
    family: widget.combo(FAMILY_CHOICES, { default: 'auto', tooltip: `auto: detected from the checkpoint's tensor names (${trainableFamilies().map((f) => `${f.id} = ${f.label}`).join(', ')}); a family here loads the file as that family (refused when it is clearly another) and tells \`loragraph export\` the ai-toolkit arch`, choosesFamily: true }),
    textEncoder: widget.path({ kind: 'models', default: AUTO, tooltip: 'the text encoder file when it is separate (ComfyUI\'s text_encoders/): FLUX.2 [klein]\'s Qwen3, FLUX.2 [dev]\'s Mistral Small 3 (mistral_3_small_flux2_*.safetensors, the FLUX.2-dev tokenizer.json beside it as <name>.tokenizer.json or tokenizer.json), FLUX.1\'s CLIP-L; auto = found beside the checkpoint or in the models folder\'s text_encoders/' }),
    textEncoder2: widget.path({ kind: 'models', default: AUTO, tooltip: 'the second text encoder file when it is separate: FLUX.1\'s T5-XXL; auto = found with the checkpoint' }),
    vae: widget.path({ kind: 'models', default: AUTO, tooltip: 'the VAE file when it is separate (ComfyUI\'s vae/, e.g. FLUX.2\'s flux2-vae / ae.safetensors); auto = found beside the checkpoint or in the models folder\'s vae/' }),
    clipVision: widget.path({ kind: 'models', default: AUTO, tooltip: 'the CLIP vision file (ComfyUI\'s clip_vision/, what "Load CLIP Vision" reads): Wan 2.1 I2V conditions on its features of the first frame (FLF2V: of the first and last frames) — clip_vision_h.safetensors; auto = found beside the checkpoint or in the models folder\'s clip_vision/', families: ['wan'] }),
    offload: widget.combo(OFFLOAD_MODES, { default: 'none', tooltip: 'layer offloading for models that do not fit in memory: blocks = train and sample block by block, each block\'s weights read from the checkpoint (or host memory) when it runs — much less memory, slower steps (ai-toolkit\'s low VRAM mode)' }),
  }),
  outputs: { model: 'MODEL', clip: 'CLIP', vae: 'VAE' },
  async execute({ widgets: w, ctx }) {
    const path = w.checkpoint === BUILTIN_TINY ? BUILTIN_TINY : ctx.resolvePath('models', w.checkpoint);
    let loaded;
    try {
      const file = (p: string) => (p === AUTO ? undefined : ctx.resolvePath('models', p));
      const textEncoderFiles = [file(w.textEncoder), file(w.textEncoder2)];
      loaded = await loadModel(path, {
        clipSkip: w.clipSkip, modelsDir: ctx.paths.models, family: w.family,
        textEncoderFiles: textEncoderFiles.some(Boolean) ? textEncoderFiles : undefined, vaeFile: file(w.vae), clipVisionFile: file(w.clipVision),
      });
    } catch (e) {
      // Loaders name the family of a file they refuse (UnsupportedModelError, a family loader's CheckpointError).
      const family = e instanceof UnsupportedModelError ? e.family : (e as { family?: string }).family;
      const tag = family && family !== 'sd1' ? ` [${familyLabel(family)}]` : '';
      const message = (e as Error).message;
      // Errors about another widget already name it.
      if (/^(family|textEncoder|vae|clipVision)\b/.test(message)) throw e;
      throw new Error(`checkpoint${tag}: ${message}`);
    }
    const { family, dtypes, params } = loaded;
    const precision = resolvePrecision(w.precision, params[family.parts(loaded.model.config).find((p) => p.role === 'denoiser')!.id] ?? 0);
    const model = withPrecision(loaded.model, precision, ctx.paths.temp);
    const label = modelLabel(family, model.config);
    return {
      outputs: { model: w.offload === 'none' ? model : Object.freeze({ ...model, offload: w.offload }), clip: loaded.clip, vae: loaded.vae },
      ui: {
        text: [
          `${label} · ${model.source.label} (${family.sampleSize(model.config)}px, ${dtypes.join('/')})`,
          `${Object.entries(params).map(([part, n]) => `${PART_NAMES[part] ?? part} ${millions(n)}`).join(', ')} parameters`,
          ...(w.clipSkip > 1 ? [`clip skip ${w.clipSkip}`] : []),
          ...(precision !== 'fp32' ? [`frozen weights in ${precision}`] : []),
          ...(w.offload !== 'none' ? [`layer offloading: ${w.offload}`] : []),
        ],
        family: family.id,
        familyLabel: label,
      },
    };
  },
});
