// The Load LoRA node: a LoRA file (kohya, diffusers/PEFT, or for FLUX ai-toolkit's) from the models or output folder as a TRAINING state —
// its weights and the network they form (type, rank, alpha, exactly the modules in the file) — to sample
// with or to continue training from (optimizer state starts empty; the step comes from ss_steps).
import { z } from 'zod';
import { tensorBytes, type ModelValue, type TrainingValue } from './sockets';
import { defineNode, input, widget } from './define';
import { readLoraFileFor } from './models/lora-file';
import { safetensorsHeaderHash } from './models/source';

export default defineNode({
  type: 'LoadLora',
  title: 'Load LoRA',
  category: 'loaders',
  description: 'Loads a LoRA file as a TRAINING state: sample with it, or connect it to a Train node to continue training.',
  version: 1,
  inputs: { model: input<ModelValue>('MODEL', { tooltip: 'the base model the LoRA belongs to' }) },
  widgets: z.object({
    loraFile: widget.path({ kind: 'lora', tooltip: 'a .safetensors LoRA (kohya lora_unet_… / LyCORIS LoKr, diffusers/PEFT lora_A/lora_B, or FLUX ai-toolkit diffusion_model.double_blocks.…) under the models folder, or output/… for one trained here' }),
  }),
  outputs: { training: 'TRAINING' },
  async execute({ inputs, widgets: w, ctx }) {
    const path = ctx.resolvePath('lora', w.loraFile);
    const lora = await readLoraFileFor(path, inputs.model);
    const meta = lora.metadata;
    const step = Number.parseInt(meta.ss_steps ?? '0', 10);
    if (meta.loragraph_base_model_id && meta.loragraph_base_model_id !== inputs.model.source.id) {
      ctx.warn(`the LoRA was trained on ${meta.ss_sd_model_name ?? 'another model'}, loading onto ${inputs.model.source.label}`);
    }
    const keep = Object.fromEntries(Object.entries(meta).filter(([k]) => k.startsWith('ss_') && !k.startsWith('ss_network_')));
    const training: TrainingValue = Object.freeze({
      kind: 'training' as const,
      id: `lora-file:${await safetensorsHeaderHash(path)}`,
      step: Number.isFinite(step) && step > 0 ? step : 0,
      adapter: lora.spec,
      base: inputs.model.source,
      weights: Object.freeze(lora.weights),
      optimizerState: Object.freeze({}),
      optimizerName: meta.ss_optimizer ?? '',
      optimizerSteps: 0,
      rng: Object.freeze({}),
      lossHistory: Object.freeze([]),
      metadata: Object.freeze(keep),
      byteSize: () => tensorBytes(lora.weights) + 1024,
    });
    const s = lora.spec;
    const modules = s.include.length;
    return {
      outputs: { training },
      ui: { text: [`${s.algo} rank ${s.rank}, alpha ${s.alpha}${s.algo !== 'LoRA' ? `, conv ${s.convRank}/${s.convAlpha}` : ''} · ${modules} modules${s.trainTextEncoder ? ' (with text encoder)' : ''} · ${lora.format} format · step ${training.step}`] },
    };
  },
});
