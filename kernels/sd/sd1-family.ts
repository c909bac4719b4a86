// Stable Diffusion 1.x (and the embedded tiny model, the same code at miniature size) behind the
// ModelFamily contract: CLIP-L text encoder, the SD UNet on ε/v-prediction DDPM, the 4-channel VAE
// scaled by 0.18215, kohya's lora_unet_/lora_te_ names.
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Builder } from '../nn/builder';
import { input } from '../tensor';
import { mul } from '../ops/elementwise';
import type { LoadedFamilyModel, LoadOptions, ModelFamily, ModelPart } from '../families/contract';
import { ddpmSchedule } from '../schedules/ddpm';
import { SD15, tinyConfig, vaeScale, type SdConfig } from './config';
import { loadSd, type LoadedSd } from './load';
import { ClipTokenizer } from './tokenizer';
import { unet } from './unet';
import { clipTextEncoder } from './clip-text';
import { vaeDecode, vaeEncode } from './vae';
import { DDIM_SCHEDULERS, sample, SAMPLER_NAMES, type SamplerName } from './samplers';
import { SCHEDULER_NAMES } from '../schedules/schedulers';
import type { CheckpointWeights } from './checkpoint-weights';

/** Parameters of a part's tensors (counted from the file, not the config). */
export function parameterCount(w: CheckpointWeights): number {
  let n = 0;
  for (const loc of w.tensors.values()) n += loc.entry.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * The CLIP tokenizer (vocab.json + merges.txt) of a checkpoint: a diffusers folder's own tokenizer/,
 * then `tokenizer/` or `<name>.tokenizer/` beside a single file, then `tokenizers/clip/` in the models
 * folder; last, the fallbacks given (the built-in tiny model's) when their vocabulary fits.
 */
export function findClipTokenizer(path: string, vocabSize: number, own: ClipTokenizer | undefined, opts: { modelsDir?: string; fallbackDirs?: string[] }): ClipTokenizer {
  if (own) return own;
  const candidates = [join(dirname(path), 'tokenizer'), join(dirname(path), `${basename(path, extname(path))}.tokenizer`)];
  if (opts.modelsDir) candidates.push(join(opts.modelsDir, 'tokenizers', 'clip'));
  for (const dir of candidates) {
    if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) {
      const tok = ClipTokenizer.fromFolder(dir);
      if (tok.vocabSize !== vocabSize) throw new Error(`${dir}: tokenizer has ${tok.vocabSize} tokens, the text encoder ${vocabSize}`);
      return tok;
    }
  }
  for (const dir of opts.fallbackDirs ?? []) {
    const tok = ClipTokenizer.fromFolder(dir);
    if (tok.vocabSize === vocabSize) return tok;
  }
  throw new Error(`${path}: no CLIP tokenizer found (vocab.json + merges.txt of openai/clip-vit-large-patch14); put them in one of: ${candidates.join(', ')}`);
}

/** The SD UNet traced at its smallest latent size (every module and tensor, no pixels). */
function traceUnet(b: Builder, cfg: SdConfig) {
  const down = 2 ** (cfg.unet.blockOutChannels.length - 1);
  unet(b, cfg.unet, {
    sample: input('sample', [1, cfg.unet.inChannels, down, down]),
    timestep: input('timestep', [1]),
    context: input('context', [1, cfg.text.maxPositions, cfg.unet.crossAttentionDim]),
  });
}

export const sd1Family: ModelFamily<SdConfig> = {
  id: 'sd1',
  label: 'Stable Diffusion 1.x',
  baseModelVersion: 'sd_v1',
  modelspecArchitecture: 'stable-diffusion-v1',
  configs: { full: SD15, tiny: () => tinyConfig() },
  sampleSize: (c) => c.sampleSize,
  configName: (c) => c.name,

  async load(path: string, opts: LoadOptions<SdConfig> = {}): Promise<LoadedFamilyModel<SdConfig>> {
    const given = opts.tokenizers?.[0] as ClipTokenizer | undefined;
    const loaded: LoadedSd = await loadSd(path, { external: opts.external, config: opts.config, tokenizer: given });
    const tokenizer = findClipTokenizer(path, loaded.config.text.vocabSize, loaded.tokenizer, { modelsDir: opts.modelsDir, fallbackDirs: opts.fallbackTokenizerDirs });
    return {
      config: loaded.config,
      denoiser: loaded.unet,
      textEncoders: [{ part: 'text_encoder', weights: loaded.textEncoder, tokenizer }],
      vae: loaded.vae,
      dtypes: loaded.dtypes,
      params: { unet: parameterCount(loaded.unet), text_encoder: parameterCount(loaded.textEncoder), vae: parameterCount(loaded.vae) },
      close: () => loaded.close(),
    };
  },

  parts: (c): ModelPart[] => [
    { id: 'unet', role: 'denoiser', trace: (b) => traceUnet(b, c) },
    { id: 'text_encoder', role: 'text', trace: (b) => { clipTextEncoder(b, c.text, input('ids', [1, c.text.maxPositions], 'int64')); } },
    {
      id: 'vae', role: 'vae', trace: (b) => {
        const px = 2 ** (c.vae.blockOutChannels.length - 1);
        vaeEncode(b, c.vae, input('images', [1, c.vae.inChannels, px, px]));
        vaeDecode(b, c.vae, input('latents', [1, c.vae.latentChannels, 1, 1]));
      },
    },
  ],

  textEncoders: (c) => [{ part: 'text_encoder', maxLength: c.text.maxPositions, maxClipSkip: c.text.numLayers }],
  encodeText: (builders, c, ids, { clipSkip }) => ({ context: clipTextEncoder(builders[0], c.text, ids[0], { clipSkip }).hidden }),

  conditioning: (c) => [{ name: 'context', shape: [c.text.maxPositions, c.unet.crossAttentionDim], source: 'text' }],
  sampleConditioning: () => ({}),
  denoise: (b, c, { sample: x, timestep, cond }) => unet(b, c.unet, { sample: x, timestep, context: cond.context }),
  objective: (c) => ({
    kind: 'ddpm',
    prediction: c.scheduler.predictionType,
    schedule: { betaStart: c.scheduler.betaStart, betaEnd: c.scheduler.betaEnd, numTrainTimesteps: c.scheduler.numTrainTimesteps, betaSchedule: c.scheduler.betaSchedule },
  }),
  latentFormat: (c) => ({ channels: c.vae.latentChannels, spatialCompression: vaeScale(c.vae), temporalCompression: 1, scale: c.vae.scalingFactor, shift: 0 }),
  latentMultiple: (c) => 2 ** (c.unet.blockOutChannels.length - 1),

  vaeEncode: (b, c, pixels) => mul(vaeEncode(b, c.vae, pixels).mean, c.vae.scalingFactor),
  vaeDecode: (b, c, latents) => vaeDecode(b, c.vae, mul(latents, 1 / c.vae.scalingFactor)),

  samplers: SAMPLER_NAMES,
  schedulers: SCHEDULER_NAMES,
  samplerSchedulers: { ddim: DDIM_SCHEDULERS },
  sample: (call, c, run) => sample(call, {
    sampler: run.sampler as SamplerName, steps: run.steps, cfgScale: run.cfgScale, seed: run.seed,
    latentShape: run.latentShape as [number, number, number], batch: run.batch,
    schedule: ddpmSchedule({ betaStart: c.scheduler.betaStart, betaEnd: c.scheduler.betaEnd, numTrainTimesteps: c.scheduler.numTrainTimesteps, betaSchedule: c.scheduler.betaSchedule }),
    prediction: c.scheduler.predictionType, scheduler: run.scheduler, onStep: run.onStep,
  }),

  loraComponents: () => [
    { part: 'unet', kohyaPrefix: 'lora_unet', peftPrefix: 'unet' },
    { part: 'text_encoder', kohyaPrefix: 'lora_te', peftPrefix: 'text_encoder' },
  ],
};
