// The Load Model node: a checkpoint file or diffusers folder from the models folder (or the built-in tiny
// model) → MODEL, CLIP and VAE; says which family it found, and applies clip skip.
import { z } from 'zod';
import { FAMILY_LABEL } from '../kernels/sd/family';
import { CheckpointError } from '../kernels/sd/load';
import { defineNode, widget } from './define';
import { BUILTIN_TINY } from './models/builtin';
import { loadModel } from './models/load';

const millions = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)}M`;

export default defineNode({
  type: 'LoadModel',
  title: 'Load Model',
  category: 'loaders',
  description: 'Loads a Stable Diffusion 1.x checkpoint (.safetensors single file or diffusers folder) and outputs its denoiser (MODEL), text encoder (CLIP) and VAE.',
  version: 1,
  widgets: z.object({
    checkpoint: widget.path({ kind: 'models', default: BUILTIN_TINY, tooltip: `a .safetensors checkpoint or diffusers folder under the models folder; "${BUILTIN_TINY}" is the small model shipped with loragraph` }),
    clipSkip: widget.int({ default: 1, min: 1, max: 12, tooltip: 'use the text encoder\'s n-th layer from the end (2 = penultimate, as many anime models expect)' }),
  }),
  outputs: { model: 'MODEL', clip: 'CLIP', vae: 'VAE' },
  async execute({ widgets: w, ctx }) {
    const path = w.checkpoint === BUILTIN_TINY ? BUILTIN_TINY : ctx.resolvePath('models', w.checkpoint);
    let loaded;
    try {
      loaded = await loadModel(path, { clipSkip: w.clipSkip, modelsDir: ctx.paths.models });
    } catch (e) {
      const family = e instanceof CheckpointError && e.family && e.family !== 'sd1' ? ` [${FAMILY_LABEL[e.family]}]` : '';
      throw new Error(`checkpoint${family}: ${(e as Error).message}${family ? ' — loragraph trains Stable Diffusion 1.x models' : ''}`);
    }
    const { model, clip, vae, dtypes, params } = loaded;
    return {
      outputs: { model, clip, vae },
      ui: {
        text: [
          `${FAMILY_LABEL.sd1} · ${model.source.label} (${model.config.sampleSize}px, ${dtypes.join('/')})`,
          `UNet ${millions(params.unet)}, text encoder ${millions(params.textEncoder)}, VAE ${millions(params.vae)} parameters`,
          ...(w.clipSkip > 1 ? [`clip skip ${w.clipSkip}`] : []),
        ],
        family: 'sd1',
      },
    };
  },
});
