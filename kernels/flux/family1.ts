// FLUX.1 dev/schnell behind the ModelFamily contract: T5-XXL hidden states (no attention mask, as BFL's
// embedder) as the per-token text, CLIP-L's pooled EOS state into `vector_in`, the guidance scale
// embedded (dev; ai-toolkit trains at guidance 1), 16-channel latents (z − 0.1159)·0.3611 packed 2×2
// into 64 channels ([B, 64, H/16, W/16] between nodes), rectified flow with the timestep in thousandths,
// flow Euler / UniPC previews (dev: resolution-shifted schedule; schnell: linear), kohya's lora_unet_ BFL paths.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Builder } from '../nn/builder';
import { input } from '../tensor';
import { add, mul } from '../ops/elementwise';
import { reshape } from '../ops/shape-and-reduce';
import type { LoadedFamilyModel, LoadOptions, ModelFamily, ModelPart, Tokenizer } from '../families/contract';
import type { TargetPreset } from '../adapters';
import { targetFilter } from '../adapters/targets';
import type { ClipTextConfig, VaeConfig } from '../sd/config';
import { SD15 } from '../sd/config';
import { clipTextEncoder } from '../sd/clip-text';
import { ClipJsonTokenizer } from '../text/clip-tokenizer-json';
import { vaeDecode as sdVaeDecode, vaeEncode as sdVaeEncode } from '../sd/vae';
import { firstEosIndex } from '../sdxl/family';
import { T5_XXL, t5Encoder, type T5Config } from '../text/t5';
import { T5PromptTokenizer } from '../text/t5-tokenizer';
import { ropeTables } from '../dit/layers';
import { FLUX1_DEV, FLUX1_SCHNELL, type FluxTransformerConfig } from './config';
import { fluxTransformer, jointPositions } from './transformer';
import { FLUX1_VAE, FLUX1_VAE_SHIFT, FLUX_TINY_VAE_8X, QuantConvsOrIdentity, fromTokens, patchify2x2, toTokens, unpatchify2x2 } from './vae';
import { FLUX_SAMPLERS, flux1Shift, fluxModelCall, sampleFlux } from './sampling';
import { SCHEDULER_NAMES } from '../schedules/schedulers';
import { fluxModuleMapping } from './keys';
import { fluxLoraFiles, fluxTargetSpec } from './lora';
import { loadFlux1, type LoadedFlux1 } from './load';

export interface Flux1FamilyConfig {
  name: string;
  transformer: FluxTransformerConfig;
  clip: ClipTextConfig;
  t5: T5Config;
  /** T5 tokens per prompt: 512 (dev), 256 (schnell). */
  t5Length: number;
  vae: VaeConfig;
  sampleSize: number;
}

export const FLUX1_DEV_FAMILY: Flux1FamilyConfig = { name: 'flux1-dev', transformer: FLUX1_DEV, clip: SD15.text, t5: T5_XXL, t5Length: 512, vae: FLUX1_VAE, sampleSize: 1024 };
export const FLUX1_SCHNELL_FAMILY: Flux1FamilyConfig = { ...FLUX1_DEV_FAMILY, name: 'flux1-schnell', transformer: FLUX1_SCHNELL, t5Length: 256 };

/** FLUX.1-dev's architecture at miniature size: 1 + 1 blocks of width 64, a 2-layer T5 and a 2-layer CLIP. */
export const tinyFlux1Config = (): Flux1FamilyConfig => ({
  name: 'flux1-tiny',
  transformer: { ...FLUX1_DEV, name: 'flux1-tiny', hiddenSize: 64, numHeads: 4, depthDouble: 1, depthSingle: 1, contextDim: 32, pooledDim: 32, axesDim: [4, 6, 6] },
  clip: { vocabSize: 1386, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 2, maxPositions: 77, hiddenAct: 'quick_gelu', layerNormEps: 1e-5 },
  t5: { ...T5_XXL, name: 't5-tiny', vocabSize: 64, dModel: 32, dKv: 8, dFf: 48, numLayers: 2, numHeads: 4, relativeBuckets: 8, relativeMaxDistance: 16 },
  t5Length: 32,
  vae: { ...FLUX_TINY_VAE_8X, latentChannels: 16, scalingFactor: FLUX1_VAE.scalingFactor },
  sampleSize: 64,
});

const TIMESTEP_SCALE = 1000;
const CLIP_EOS = (c: ClipTextConfig) => c.vocabSize - 1;

function traceTransformer(b: Builder, c: Flux1FamilyConfig) {
  const t = c.transformer;
  fluxTransformer(b, t, {
    img: input('img', [1, 4, t.inChannels]), txt: input('txt', [1, 2, t.contextDim]), timesteps: input('t', [1]),
    guidance: t.guidanceEmbed ? input('g', [1]) : undefined, pooled: input('pooled', [1, t.pooledDim]),
    rope: ropeTables(jointPositions(t, 2, 2, 2), t.axesDim, t.theta),
  });
}

export const flux1Family: ModelFamily<Flux1FamilyConfig> = {
  id: 'flux1',
  label: 'FLUX.1',
  baseModelVersion: 'flux1',
  modelspecArchitecture: 'flux-1-dev',
  // sd-scripts' sai_model_spec: flux-1-dev / flux-1-schnell.
  modelspecArchitectureOf: (c) => (c.transformer.guidanceEmbed ? 'flux-1-dev' : 'flux-1-schnell'),
  configs: { full: FLUX1_DEV_FAMILY, tiny: tinyFlux1Config },
  sampleSize: (c) => c.sampleSize,
  configName: (c) => c.name,

  /**
   * A diffusers folder (transformer/, text_encoder/, text_encoder_2/, vae/, tokenizer/, tokenizer_2/), or a
   * transformer file with CLIP-L, T5-XXL and the VAE chosen on Load Model (the tokenizers in the folder's
   * tokenizer/ and tokenizer_2/, both run by @huggingface/tokenizers: CLIP's tokenizer.json, or the one
   * converted from its vocab.json + merges.txt).
   */
  loadsSeparateFiles: true,
  async load(path: string, opts: LoadOptions<Flux1FamilyConfig> = {}): Promise<LoadedFamilyModel<Flux1FamilyConfig>> {
    const [clip, t5] = opts.textEncoderFiles ?? [];
    const m = await loadFlux1({ transformer: path, clip, t5, vae: opts.vaeFile });
    try {
      if (!m.clip || !m.t5 || !m.vae) throw new Error(`${path}: FLUX.1 needs CLIP-L, T5-XXL and its VAE: text_encoder/, text_encoder_2/ and vae/ beside transformer/, or the files chosen on Load Model (text encoder, text encoder 2, VAE)`);
      const root = existsSync(path) && statSync(path).isDirectory() ? path : dirname(path);
      const clipTok: Tokenizer = opts.tokenizers?.[0] ?? ClipJsonTokenizer.fromFolder(join(root, 'tokenizer'));
      const t5Tok: Tokenizer = opts.tokenizers?.[1] ?? T5PromptTokenizer.fromFile(join(root, 'tokenizer_2', 'tokenizer.json'));
      const config = opts.config ?? flux1ConfigOf(path, m, clip ?? path, t5 ?? path);
      return {
        config, denoiser: m.transformer,
        textEncoders: [{ part: 'text_encoder', weights: m.clip, tokenizer: clipTok }, { part: 'text_encoder_2', weights: m.t5, tokenizer: t5Tok }],
        vae: m.vae.weights, dtypes: m.dtypes, params: m.params, close: () => m.close(),
      };
    } catch (e) {
      m.close();
      throw e;
    }
  },

  parts: (c): ModelPart[] => [
    { id: 'transformer', role: 'denoiser', trace: (b) => traceTransformer(b, c) },
    { id: 'text_encoder', role: 'text', trace: (b) => { clipTextEncoder(b, c.clip, input('ids', [1, c.clip.maxPositions], 'int64'), { eosIndex: input('eos', [1], 'int64') }); } },
    { id: 'text_encoder_2', role: 'text', trace: (b) => { t5Encoder(b, c.t5, input('ids', [1, 4], 'int64')); } },
    {
      id: 'vae', role: 'vae', trace: (b) => {
        const px = 2 ** c.vae.blockOutChannels.length;
        flux1Family.vaeEncode(b, c, input('images', [1, 3, px, px]));
        flux1Family.vaeDecode(b, c, input('latents', [1, c.vae.latentChannels * 4, 1, 1]));
      },
    },
  ],

  textEncoders: (c) => [
    { part: 'text_encoder', maxLength: c.clip.maxPositions, maxClipSkip: 0 },
    { part: 'text_encoder_2', maxLength: c.t5Length, maxClipSkip: 0 },
  ],
  encodeText: (builders, c, ids) => {
    const pooled = clipTextEncoder(builders[0], c.clip, ids[0], { eosIndex: firstEosIndex(ids[0], CLIP_EOS(c.clip)) }).pooled!;
    return { pooled, context: t5Encoder(builders[1], c.t5, ids[1]) };
  },

  conditioning: (c) => [
    { name: 'context', shape: [c.t5Length, c.t5.dModel], source: 'text' },
    { name: 'pooled', shape: [c.clip.hiddenSize], source: 'text' },
    ...(c.transformer.guidanceEmbed ? [{ name: 'guidance', shape: [1], source: 'sample' as const }] : []),
  ],
  // Guidance-distilled dev trains at guidance 1 (ai-toolkit); previews pass their scale (3.5 is usual).
  sampleConditioning: (c, _g, preview?: { guidance?: number }): Record<string, Float32Array> => (c.transformer.guidanceEmbed ? { guidance: Float32Array.of(preview?.guidance ?? 1) } : {}),
  denoise: (b, c, { sample, timestep, cond }) => {
    for (const k of ['context', 'pooled', ...(c.transformer.guidanceEmbed ? ['guidance'] : [])]) if (!cond[k]) throw new Error(`FLUX.1 denoiser: conditioning '${k}' is missing`);
    const [bsz, , h, w] = sample.shape;
    const t = c.transformer;
    const v = fluxTransformer(b, t, {
      img: toTokens(sample), txt: cond.context, pooled: cond.pooled, timesteps: mul(timestep, 1 / TIMESTEP_SCALE),
      guidance: cond.guidance ? reshape(cond.guidance, [bsz]) : undefined,
      rope: ropeTables(jointPositions(t, cond.context.shape[1], h, w), t.axesDim, t.theta),
    });
    return fromTokens(v, h, w);
  },
  objective: () => ({ kind: 'flow', timestepScale: TIMESTEP_SCALE, sampling: { kind: 'logit_normal', mean: 0, std: 1 } }),
  latentFormat: (c) => ({ channels: c.vae.latentChannels * 4, spatialCompression: 2 ** c.vae.blockOutChannels.length, temporalCompression: 1, scale: 1, shift: 0 }),
  latentMultiple: () => 1,

  vaeEncode: (b, c, pixels) => patchify2x2(mul(add(sdVaeEncode(quantFree(b), c.vae, pixels).mean, -FLUX1_VAE_SHIFT), c.vae.scalingFactor)),
  vaeDecode: (b, c, latents) => sdVaeDecode(quantFree(b), c.vae, add(mul(unpatchify2x2(latents), 1 / c.vae.scalingFactor), FLUX1_VAE_SHIFT)),

  samplers: FLUX_SAMPLERS,
  schedulers: SCHEDULER_NAMES,
  sample: (call, c, run) => {
    const [ch, h, w] = run.latentShape;
    return sampleFlux(fluxModelCall(call, TIMESTEP_SCALE), {
      sampler: run.sampler, steps: run.steps, shift: flux1Shift(h * w, c.transformer.guidanceEmbed), scheduler: run.scheduler,
      // ComfyUI tabulates dev's shifted levels as ModelSamplingFlux (10000) and schnell's unshifted ones as discrete flow (1000).
      timesteps: c.transformer.guidanceEmbed ? 10000 : 1000,
      // dev: the CFG scale is the embedded guidance (fed by the pipeline through sampleConditioning), one
      // prediction per step; schnell is timestep-distilled: the conditional prediction alone.
      guidance: c.transformer.guidanceEmbed ? { mode: 'embedded', scale: run.cfgScale } : { mode: 'distilled' },
      seed: run.seed, perImage: ch * h * w, batch: run.batch, label: flux1Family.label, onStep: run.onStep,
    });
  },

  loraComponents: (c) => {
    const peft = new Map([...fluxModuleMapping(c.transformer)].filter(([, parts]) => parts.length === 1).map(([bfl, [p]]) => [bfl, p.module]));
    // sd-scripts names FLUX.1's CLIP-L lora_te1 and its T5-XXL lora_te3 (as SD3's third encoder).
    return [
      { part: 'transformer', kohyaPrefix: 'lora_unet', peftPrefix: 'transformer', modulePath: { peft: (p) => peft.get(p) } },
      { part: 'text_encoder', kohyaPrefix: 'lora_te1', peftPrefix: 'text_encoder' },
      { part: 'text_encoder_2', kohyaPrefix: 'lora_te3', peftPrefix: 'text_encoder_2' },
    ];
  },
  presetFilter: (preset: TargetPreset) => targetFilter(fluxTargetSpec(preset === 'attention' ? 'attention' : preset === 'attention_ff' ? 'ai_toolkit' : 'all_linear')),
  loraFiles: fluxLoraFiles<Flux1FamilyConfig>(1),
};

/** The family config of loaded files: sizes from their tensors (full size: the release's; tiny: their own). */
function flux1ConfigOf(path: string, m: LoadedFlux1, clipFile: string, t5File: string): Flux1FamilyConfig {
  const t = m.transformerConfig;
  const base = t.guidanceEmbed ? FLUX1_DEV_FAMILY : FLUX1_SCHNELL_FAMILY;
  if (!m.clipConfig) throw new Error(`${clipFile}: cannot tell the CLIP text encoder's heads (its width is not a multiple of CLIP-L's 64-wide heads and the file states no loragraph_num_heads)`);
  if (!m.t5Config) throw new Error(`${t5File}: the T5 encoder lacks shared / relative_attention_bias / wi_0 tensors`);
  if (m.clipConfig.hiddenSize !== t.pooledDim) throw new Error(`${clipFile}: the CLIP text encoder is ${m.clipConfig.hiddenSize} wide; the transformer's vector_in takes ${t.pooledDim}`);
  if (m.t5Config.dModel !== t.contextDim) throw new Error(`${t5File}: the T5 encoder is ${m.t5Config.dModel} wide; the transformer's txt_in takes ${t.contextDim}`);
  return {
    ...base, name: m.detection.variant ?? t.name, transformer: t, clip: m.clipConfig, t5: m.t5Config, t5Length: m.t5Length ?? base.t5Length,
    vae: m.vae!.config, sampleSize: t.hiddenSize >= 1024 ? 1024 : 64,
  };
}

/** FLUX.1's VAE has no quant convs (BFL's AutoEncoder; diffusers' use_quant_conv false): identity ones. */
const quantFree = (b: Builder): Builder => new Builder(new QuantConvsOrIdentity(b.weights, new Set()), b.adapter, b.prefix);
