// SDXL (and its fine-tunes: Pony, Illustrious, NoobAI… share the base layout) behind the ModelFamily
// contract: CLIP-L + OpenCLIP bigG penultimate states concatenated to 2048, pooled bigG and the six
// size numbers into label_emb, ε-prediction DDPM, the VAE scaled by 0.13025 (run in fp32), kohya's
// lora_unet_ (SGM paths) / lora_te1_ / lora_te2_ names.
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Builder } from '../nn/builder';
import { constant, input, type Tensor } from '../tensor';
import { cast, equal, mul, sub, where } from '../ops/elementwise';
import { concat, reduceMax } from '../ops/shape-and-reduce';
import type { LoadedFamilyModel, LoadOptions, ModelFamily, ModelPart, Tokenizer } from '../families/contract';
import { ddpmSchedule } from '../schedules/ddpm';
import { ClipTokenizer } from '../sd/tokenizer';
import { vaeDecode, vaeEncode } from '../sd/vae';
import { DDIM_SCHEDULERS, sample, SAMPLER_NAMES, type SamplerName } from '../sd/samplers';
import { SCHEDULER_NAMES } from '../schedules/schedulers';
import { SDXL_BASE, SIZE_CONDITIONING_COUNT, tinySdxlConfig, type SdxlConfig } from './config';
import { sizeConditioningValues } from './conditioning';
import { bigGText, clipLPenultimate } from './text';
import { sdxlUnet } from './unet';
import { loadSdxl } from './load';
import { sgmModulePath, SDXL_LORA_METADATA } from './lora-names';

/**
 * Position of each prompt's first EOS [B] (int64). CLIP vocabularies end with <|endoftext|>, so the EOS
 * id is vocabSize − 1 and this is what transformers' argmax over the ids finds. A row without one
 * (cannot come from the tokenizers) points at the last token.
 */
export function firstEosIndex(ids: Tensor, eosId: number): Tensor {
  const len = ids.shape[1];
  const isEos = equal(cast(ids, 'int64'), constant(BigInt64Array.of(BigInt(eosId)), [1, 1], 'int64'));
  const score = where(isEos, constant(Float32Array.from({ length: len }, (_, i) => len - i), [1, len]),
    constant(Float32Array.from({ length: len }, (_, i) => (i === len - 1 ? 1 : 0)), [1, len]));
  return cast(sub(len, reduceMax(score, 1)), 'int64');
}

/** The tokenizer of one tower: given, the diffusers folder's own, beside the file, the models folder, or a fallback that fits. */
function findTokenizer(path: string, folderName: 'tokenizer' | 'tokenizer_2', vocabSize: number, opts: LoadOptions<SdxlConfig>, given?: Tokenizer): Tokenizer {
  if (given) return given;
  const dir = existsSync(path) && !extname(path) ? path : dirname(path);
  const own = [join(dir, folderName), join(dir, 'tokenizer'), join(dirname(path), `${basename(path, extname(path))}.tokenizer`)];
  if (opts.modelsDir) own.push(join(opts.modelsDir, 'tokenizers', 'clip'));
  // bigG was trained with "!" (id 0) after the EOS; a tokenizer_2 folder says so itself, CLIP-L's folder does not.
  const padFor = (d: string) => (folderName === 'tokenizer_2' && !d.endsWith('tokenizer_2') ? { padToken: '!' } : {});
  const make = (d: string) => {
    try { return ClipTokenizer.fromFolder(d, padFor(d)); } catch { return ClipTokenizer.fromFolder(d); }
  };
  for (const d of own) {
    if (!existsSync(join(d, 'vocab.json')) || !existsSync(join(d, 'merges.txt'))) continue;
    const tok = make(d);
    if (tok.vocabSize !== vocabSize) throw new Error(`${d}: tokenizer has ${tok.vocabSize} tokens, the text encoder ${vocabSize}`);
    return tok;
  }
  for (const d of opts.fallbackTokenizerDirs ?? []) {
    const tok = make(d);
    if (tok.vocabSize === vocabSize) return tok;
  }
  throw new Error(`${path}: no CLIP tokenizer found for ${folderName === 'tokenizer' ? 'CLIP-L' : 'bigG'} (vocab.json + merges.txt); put them in one of: ${own.join(', ')}`);
}

function traceUnet(b: Builder, c: SdxlConfig) {
  const down = 2 ** (c.unet.blockOutChannels.length - 1);
  sdxlUnet(b, c, {
    sample: input('sample', [1, c.unet.inChannels, down, down]),
    timestep: input('timestep', [1]),
    context: input('context', [1, c.textL.maxPositions, c.unet.crossAttentionDim]),
    pooled: input('pooled', [1, c.textG.projectionDim]),
    timeIds: input('time_ids', [1, SIZE_CONDITIONING_COUNT]),
  });
}

const schedule = (c: SdxlConfig) => ({ betaStart: c.scheduler.betaStart, betaEnd: c.scheduler.betaEnd, numTrainTimesteps: c.scheduler.numTrainTimesteps, betaSchedule: c.scheduler.betaSchedule });

export const sdxlFamily: ModelFamily<SdxlConfig> = {
  id: 'sdxl',
  label: 'SDXL',
  baseModelVersion: SDXL_LORA_METADATA.ss_base_model_version,
  modelspecArchitecture: 'stable-diffusion-xl-v1-base',
  configs: { full: SDXL_BASE, tiny: () => tinySdxlConfig() },
  sampleSize: (c) => c.sampleSize,
  configName: (c) => c.name,

  async load(path: string, opts: LoadOptions<SdxlConfig> = {}): Promise<LoadedFamilyModel<SdxlConfig>> {
    const m = await loadSdxl(path, { external: opts.external, config: opts.config });
    try {
      const tokL = findTokenizer(path, 'tokenizer', m.config.textL.vocabSize, opts, opts.tokenizers?.[0]);
      const tokG = findTokenizer(path, 'tokenizer_2', m.config.textG.vocabSize, opts, opts.tokenizers?.[1] ?? opts.tokenizers?.[0]);
      return {
        config: m.config,
        denoiser: m.unet,
        textEncoders: [{ part: 'text_encoder', weights: m.textL, tokenizer: tokL }, { part: 'text_encoder_2', weights: m.textG, tokenizer: tokG }],
        vae: m.vae,
        dtypes: m.dtypes,
        params: { ...m.params },
        close: () => m.close(),
      };
    } catch (e) {
      m.close();
      throw e;
    }
  },

  parts: (c): ModelPart[] => [
    { id: 'unet', role: 'denoiser', trace: (b) => traceUnet(b, c) },
    { id: 'text_encoder', role: 'text', trace: (b) => { clipLPenultimate(b, c.textL, input('ids', [1, c.textL.maxPositions], 'int64'), { complete: true }); } },
    { id: 'text_encoder_2', role: 'text', trace: (b) => { bigGText(b, c.textG, input('ids', [1, c.textG.maxPositions], 'int64'), input('eos', [1], 'int64')); } },
    {
      id: 'vae', role: 'vae', trace: (b) => {
        const px = 2 ** (c.vae.blockOutChannels.length - 1);
        vaeEncode(b, c.vae, input('images', [1, c.vae.inChannels, px, px]));
        vaeDecode(b, c.vae, input('latents', [1, c.vae.latentChannels, 1, 1]));
      },
    },
  ],

  // SDXL always reads the penultimate layers (kohya ignores clip skip for SDXL): no clip skip to offer.
  textEncoders: (c) => [
    { part: 'text_encoder', maxLength: c.textL.maxPositions, maxClipSkip: 0 },
    { part: 'text_encoder_2', maxLength: c.textG.maxPositions, maxClipSkip: 0 },
  ],
  encodeText: (builders, c, ids) => {
    const l = clipLPenultimate(builders[0], c.textL, ids[0]);
    const g = bigGText(builders[1], c.textG, ids[1], firstEosIndex(ids[1], c.textG.vocabSize - 1));
    return { context: concatWidth(l, g.hidden), pooled: g.pooled };
  },

  conditioning: (c) => [
    { name: 'context', shape: [c.textL.maxPositions, c.unet.crossAttentionDim], source: 'text' },
    { name: 'pooled', shape: [c.textG.projectionDim], source: 'text' },
    { name: 'time_ids', shape: [SIZE_CONDITIONING_COUNT], source: 'sample' },
  ],
  sampleConditioning: (_c, g) => ({
    time_ids: Float32Array.from(sizeConditioningValues({
      originalSize: [g.originalSize.height, g.originalSize.width],
      cropTopLeft: [g.cropTopLeft.top, g.cropTopLeft.left],
      targetSize: [g.targetSize.height, g.targetSize.width],
    })),
  }),
  denoise: (b, c, { sample: x, timestep, cond }) => {
    for (const k of ['context', 'pooled', 'time_ids']) if (!cond[k]) throw new Error(`SDXL denoiser: conditioning '${k}' is missing`);
    return sdxlUnet(b, c, { sample: x, timestep, context: cond.context, pooled: cond.pooled, timeIds: cond.time_ids });
  },
  objective: (c) => ({ kind: 'ddpm', prediction: c.scheduler.predictionType, schedule: schedule(c) }),
  latentFormat: (c) => ({ channels: c.vae.latentChannels, spatialCompression: 2 ** (c.vae.blockOutChannels.length - 1), temporalCompression: 1, scale: c.vae.scalingFactor, shift: 0 }),
  latentMultiple: (c) => 2 ** (c.unet.blockOutChannels.length - 1),

  // The engine computes in fp32 whatever the weights' storage dtype: the SDXL VAE never runs in fp16.
  vaeEncode: (b, c, pixels) => mul(vaeEncode(b, c.vae, pixels).mean, c.vae.scalingFactor),
  vaeDecode: (b, c, latents) => vaeDecode(b, c.vae, mul(latents, 1 / c.vae.scalingFactor)),

  samplers: SAMPLER_NAMES,
  schedulers: SCHEDULER_NAMES,
  samplerSchedulers: { ddim: DDIM_SCHEDULERS },
  sample: (call, c, run) => sample(call, {
    sampler: run.sampler as SamplerName, steps: run.steps, cfgScale: run.cfgScale, seed: run.seed,
    latentShape: run.latentShape as [number, number, number], batch: run.batch,
    schedule: ddpmSchedule(schedule(c)), prediction: c.scheduler.predictionType, scheduler: run.scheduler, onStep: run.onStep,
  }),

  loraComponents: (c) => [
    {
      part: 'unet', kohyaPrefix: 'lora_unet', peftPrefix: 'unet',
      // kohya's SDXL names are SGM paths (input_blocks.4.1…); PEFT keeps the diffusers path.
      modulePath: { kohya: (p) => { try { return sgmModulePath(c.unet, p); } catch { return undefined; } } },
    },
    { part: 'text_encoder', kohyaPrefix: 'lora_te1', peftPrefix: 'text_encoder' },
    { part: 'text_encoder_2', kohyaPrefix: 'lora_te2', peftPrefix: 'text_encoder_2' },
  ],
};

/** [B, L, a] and [B, L, b] → [B, L, a + b]. */
function concatWidth(a: Tensor, b: Tensor): Tensor { return concat([a, b], 2); }
