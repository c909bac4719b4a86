// The Load LoRA node: a LoRA file (kohya, diffusers/PEFT, or for FLUX ai-toolkit's) from the models or output folder as a TRAINING state —
// its weights and the network they form (type, rank, alpha, exactly the modules in the file) — to sample
// with or to continue training from (optimizer state starts empty; the step comes from ss_steps).
// One expert's file of a two-expert (Wan 2.2 A14B) save, `<name>_high_noise.safetensors`, loads with the
// other expert's file beside it as one two-expert TRAINING: the Sampler then runs each step with the
// LoRA of the expert that owns its noise level.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { tensorBytes, type ModelValue, type TrainingValue } from './sockets';
import { defineNode, input, widget } from './define';
import { readLoraFileFor, type LoadedLora } from './models/lora-file';
import { expertLoraFileName, parseExpertLoraFileName, WAN_EXPERTS } from '../kernels/wan/experts';
import { safetensorsHeaderHash } from './models/source';

export default defineNode({
  type: 'LoadLora',
  title: 'Load LoRA',
  category: 'loaders',
  description: 'Loads a LoRA file as a TRAINING state: sample with it, or connect it to a Train node to continue training.',
  version: 2,
  inputs: { model: input<ModelValue>('MODEL', { tooltip: 'the base model the LoRA belongs to' }) },
  widgets: z.object({
    loraFile: widget.path({ kind: 'lora', tooltip: 'a .safetensors LoRA (kohya lora_unet_… / LyCORIS LoKr, diffusers/PEFT lora_A/lora_B, or FLUX ai-toolkit diffusion_model.double_blocks.…) under the models folder, or output/… for one trained here' }),
    pairExperts: widget.toggle({ default: true, tooltip: 'a two-expert save (<name>_high_noise / <name>_low_noise.safetensors, Wan 2.2 A14B): also load the other expert\'s file beside it, so the Sampler (with lowNoiseModel) and a multistage Train use both; off = this file alone' , families: ['wan'] }),
  }),
  outputs: { training: 'TRAINING' },
  async execute({ inputs, widgets: w, ctx }) {
    const path = ctx.resolvePath('lora', w.loraFile);
    const lora = await readLoraFileFor(path, inputs.model);
    const meta = lora.metadata;
    const pair = w.pairExperts ? await expertPair(path, lora, inputs.model) : undefined;
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
      // Two experts: the high-noise expert's weights stand at the top level, as a multistage Train's state has them.
      weights: Object.freeze(pair ? pair.experts.high_noise.weights : lora.weights),
      ...(pair ? { experts: Object.freeze(pair.experts), expertBoundary: pair.boundary } : {}),
      optimizerState: Object.freeze({}),
      optimizerName: meta.ss_optimizer ?? '',
      optimizerSteps: 0,
      rng: Object.freeze({}),
      lossHistory: Object.freeze([]),
      metadata: Object.freeze(keep),
      byteSize: () => (pair ? pair.bytes : tensorBytes(lora.weights)) + 1024,
    });
    const s = lora.spec;
    const modules = s.include.length;
    return {
      outputs: { training },
      ui: { text: [...(pair ? [`two experts (boundary ${pair.boundary}): ${pair.files.map((f) => basename(f)).join(' + ')}`] : []), `${s.algo} rank ${s.rank}, alpha ${s.alpha}${s.algo !== 'LoRA' ? `, conv ${s.convRank}/${s.convAlpha}` : ''} · ${modules} modules${s.trainTextEncoder ? ' (with text encoder)' : ''} · ${lora.format} format · step ${training.step}`] },
    };
  },
});

/**
 * A file named as one expert's LoRA with the other expert's file beside it: both as a two-expert state
 * (same modules required). The boundary comes from the file's metadata, else from the model's config.
 */
async function expertPair(path: string, lora: LoadedLora, model: ModelValue) {
  const parsed = parseExpertLoraFileName(basename(path));
  if (!parsed) return undefined;
  const other = WAN_EXPERTS.find((e) => e !== parsed.expert)!;
  const otherPath = join(dirname(path), expertLoraFileName(parsed.name, other, parsed.step));
  if (!existsSync(otherPath)) return undefined;
  const second = await readLoraFileFor(otherPath, model);
  const modules = (l: LoadedLora) => JSON.stringify([l.spec.algo, l.spec.rank, [...l.spec.include].sort()]);
  if (modules(second) !== modules(lora)) throw new Error(`loraFile: ${basename(otherPath)} (the ${other} expert's LoRA beside it) has other modules or rank than ${basename(path)}; turn pairExperts off to load this file alone`);
  const boundary = Number(lora.metadata.loragraph_expert_boundary ?? second.metadata.loragraph_expert_boundary ?? (model.config as { experts?: { boundary?: number } }).experts?.boundary);
  if (!(boundary > 0 && boundary < 1)) throw new Error(`loraFile: ${basename(path)} names no expert boundary and ${model.source.label} states none; turn pairExperts off to load this file alone`);
  const state = (l: LoadedLora) => Object.freeze({ weights: Object.freeze(l.weights), optimizerState: Object.freeze({}), optimizerSteps: 0 });
  const byExpert = { [parsed.expert]: lora, [other]: second } as Record<string, LoadedLora>;
  return {
    experts: { high_noise: state(byExpert.high_noise), low_noise: state(byExpert.low_noise) },
    boundary,
    files: parsed.expert === 'high_noise' ? [path, otherPath] : [otherPath, path],
    bytes: tensorBytes(lora.weights) + tensorBytes(second.weights),
  };
}
