// FLUX.2 [klein] and [dev] behind the ModelFamily contract: hidden states of the chat-formatted prompt
// as the text conditioning (klein: Qwen3 layers 9/18/27, right-padded; dev: Mistral Small 3 layers
// 10/20/30, left-padded), the transformer over 2×2-patchified, BatchNorm-normalised latents
// ([B, 128, H/16, W/16] between nodes, tokens inside the denoiser), rectified flow with the timestep
// in thousandths, flow Euler previews on FLUX.2's empirical schedule — true CFG for klein, the embedded
// guidance scale for the guidance-distilled dev — and BFL module paths for LoRA (kohya
// lora_unet_double_blocks_0_img_attn_qkv). FLUX.1 is kernels/flux/family1.ts.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Builder } from '../nn/builder';
import { constant, input } from '../tensor';
import { cast, equal, logicalNot, mul } from '../ops/elementwise';
import { reshape } from '../ops/shape-and-reduce';
import type { LoadedFamilyModel, LoadOptions, ModelFamily, ModelPart, Tokenizer } from '../families/contract';
import type { TargetPreset } from '../adapters';
import { targetFilter } from '../adapters/targets';
import type { VaeConfig } from '../sd/config';
import { vaeDecode as sdVaeDecode, vaeEncode as sdVaeEncode } from '../sd/vae';
import { openSafetensors } from '../io/safetensors';
import { ropeTables } from '../dit/layers';
import { FLUX2_DEV, FLUX2_KLEIN_9B, FLUX2_TINY, flux2Label, type FluxTransformerConfig } from './config';
import { fluxTransformer, jointPositions } from './transformer';
import { QWEN3_8B, QWEN3_TINY } from './qwen3';
import { MISTRAL_SMALL_3_24B, MISTRAL_TINY } from './mistral';
import { llamaDecoderFeatures, type LlamaDecoderConfig } from '../text/llama-decoder';
import { TEKKEN_CONTROL_TOKENS } from './tekken-tokenizer-json';
import { FLUX2_TINY_VAE, FLUX2_VAE, flux2BatchNormStats, flux2DenormalizeLatents, flux2NormalizeLatents, fromTokens, toTokens } from './vae';
import { FLUX_SAMPLERS, flux2Shift, fluxModelCall, sampleFlux, type FluxGuidance } from './sampling';
import { SCHEDULER_NAMES } from '../schedules/schedulers';
import { fluxModuleMapping } from './keys';
import { fluxLoraFiles, fluxTargetSpec } from './lora';
import { detectFluxTransformer } from './detect';
import { flux2VaeConfigFromShapes, indexSafetensors, loadFlux2, qwen3ConfigFromShapes } from './load';
import { mistralConfigFromShapes, mistralLanguageModelName } from './mistral';

export interface Flux2FamilyConfig {
  name: string;
  transformer: FluxTransformerConfig;
  /** Qwen3 (klein) or Mistral Small 3 (dev): which one is told by its `qkNorm` and `padding`. */
  text: LlamaDecoderConfig;
  /** The tokenizer's padding id (Qwen's <|endoftext|>, Mistral's <pad>), masked out of the text encoder's attention. */
  padId: number;
  vae: VaeConfig;
  sampleSize: number;
}

/** Qwen's <|endoftext|>, the pad token of every Qwen3 tokenizer.json. */
export const QWEN3_PAD_ID = 151643;
/**
 * The tiny text encoder's own tokenizer.json puts its 5 chat tokens at the end of the 512-entry
 * vocabulary (buildByteLevelBpeTokenizerJson's firstAddedId), so <|endoftext|> is id 507.
 */
export const TINY_QWEN3_FIRST_ADDED_ID = QWEN3_TINY.vocabSize - 5;

/** Mistral's <pad> (tekken's control token 11). */
export const MISTRAL_PAD_ID = TEKKEN_CONTROL_TOKENS.indexOf('<pad>');

export const FLUX2_KLEIN_9B_FAMILY: Flux2FamilyConfig = { name: 'flux2-klein-9b', transformer: FLUX2_KLEIN_9B, text: QWEN3_8B, padId: QWEN3_PAD_ID, vae: FLUX2_VAE, sampleSize: 1024 };
export const FLUX2_DEV_FAMILY: Flux2FamilyConfig = { name: 'flux2-dev', transformer: FLUX2_DEV, text: MISTRAL_SMALL_3_24B, padId: MISTRAL_PAD_ID, vae: FLUX2_VAE, sampleSize: 1024 };
export const tinyFlux2Config = (): Flux2FamilyConfig => ({
  name: 'flux2-tiny', transformer: FLUX2_TINY, text: QWEN3_TINY, padId: TINY_QWEN3_FIRST_ADDED_ID, vae: FLUX2_TINY_VAE, sampleSize: 64,
});

/**
 * The dev architecture at miniature size (tests): the tiny klein's transformer with the guidance
 * embedding, reading a tiny Mistral's 3 × 16 features, and the tiny klein's VAE.
 */
export const tinyFlux2DevConfig = (): Flux2FamilyConfig => ({
  name: 'flux2-dev-tiny', transformer: { ...FLUX2_TINY, name: 'flux2-dev-tiny', contextDim: 3 * MISTRAL_TINY.hiddenSize, guidanceEmbed: true },
  text: MISTRAL_TINY, padId: MISTRAL_PAD_ID, vae: FLUX2_TINY_VAE, sampleSize: 64,
});

const TIMESTEP_SCALE = 1000;
/** What guidance-distilled dev trains at when nothing else is said (ai-toolkit's guidance_embedding_scale). */
const TRAIN_GUIDANCE = 1;

function traceTransformer(b: Builder, c: Flux2FamilyConfig) {
  const t = c.transformer;
  fluxTransformer(b, t, {
    img: input('img', [1, 4, t.inChannels]), txt: input('txt', [1, 2, t.contextDim]), timesteps: input('t', [1]),
    guidance: t.guidanceEmbed ? input('g', [1]) : undefined,
    rope: ropeTables(jointPositions(t, 2, 2, 2), t.axesDim, t.theta),
  });
}

/**
 * klein base: true CFG against the empty prompt; dev is guidance-distilled: the scale is embedded (fed
 * by the pipeline through sampleConditioning), one prediction per step.
 */
const flux2Guidance = (c: Flux2FamilyConfig, scale: number): FluxGuidance => (c.transformer.guidanceEmbed ? { mode: 'embedded', scale } : { mode: 'cfg', scale });

/** A diffusers folder of FLUX.2 [dev]: its transformer/config.json embeds guidance. */
function folderIsDev(folder: string): boolean {
  try { return JSON.parse(readFileSync(join(folder, 'transformer', 'config.json'), 'utf8')).guidance_embeds === true; } catch { return false; }
}

/** *.safetensors files of a folder (none when it does not exist). */
const filesIn = (dir: string) => (existsSync(dir) && statSync(dir).isDirectory() ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')).map((f) => join(dir, f)) : []);

/** A file among `candidates` whose tensors `fits` accepts (headers only are read). */
async function findFile(candidates: string[], fits: (keys: string[], shapeOf: (k: string) => readonly number[] | undefined, metadata: Record<string, string>) => boolean): Promise<string | undefined> {
  for (const f of candidates) {
    const r = await openSafetensors(f).catch(() => undefined);
    if (!r) continue;
    try {
      const shapes = new Map(r.header.entries.map((e) => [e.name, e.shape]));
      if (fits([...shapes.keys()], (k) => shapes.get(k), r.metadata)) return f;
    } finally {
      await r.close();
    }
  }
  return undefined;
}

function findTokenizerJson(path: string, opts: LoadOptions<Flux2FamilyConfig>, textEncoder: string | undefined, kind: 'qwen3' | 'mistral'): string | undefined {
  const dir = existsSync(path) && statSync(path).isDirectory() ? path : dirname(path);
  const candidates = [join(dir, 'tokenizer', 'tokenizer.json'), join(dirname(path), `${basename(path, extname(path))}.tokenizer.json`), join(dir, 'tokenizer.json')];
  // Beside a text encoder chosen on its own (ComfyUI's text_encoders/).
  if (textEncoder) candidates.push(join(dirname(textEncoder), `${basename(textEncoder, extname(textEncoder))}.tokenizer.json`), join(dirname(textEncoder), 'tokenizer.json'));
  if (opts.modelsDir) candidates.push(join(opts.modelsDir, 'tokenizers', kind, 'tokenizer.json'));
  return candidates.find((c) => existsSync(c));
}

export const flux2Family: ModelFamily<Flux2FamilyConfig> = {
  id: 'flux2',
  // The family spans klein and dev; a loaded model names its variant.
  label: 'FLUX.2',
  labelOf: (c) => flux2Label(c.transformer),
  baseModelVersion: 'flux2_klein',
  // musubi-tuner's sai_model_spec names: Flux.2-klein-4b / Flux.2-klein-9b / Flux.2-dev (the stem for other sizes).
  modelspecArchitecture: 'Flux.2-klein',
  // dev at any size (the tiny one) is dev: its guidance embedder, not its width, makes it.
  modelspecArchitectureOf: (c) => (c.transformer.name === 'flux2-klein-4b' ? 'Flux.2-klein-4b' : c.transformer.name === 'flux2-klein-9b' ? 'Flux.2-klein-9b' : c.transformer.guidanceEmbed ? 'Flux.2-dev' : 'Flux.2-klein'),
  configs: { full: FLUX2_KLEIN_9B_FAMILY, tiny: tinyFlux2Config },
  sampleSize: (c) => c.sampleSize,
  configName: (c) => c.name,

  /**
   * A diffusers folder, or a transformer file with its Qwen3 text encoder and VAE — chosen on Load Model,
   * else found among the .safetensors files beside it and in the models folder's text_encoders/ and vae/
   * (ComfyUI's layout).
   */
  loadsSeparateFiles: true,
  async load(path: string, opts: LoadOptions<Flux2FamilyConfig> = {}): Promise<LoadedFamilyModel<Flux2FamilyConfig>> {
    const isFolder = existsSync(path) && statSync(path).isDirectory();
    let textEncoder = opts.textEncoderFiles?.[0], vae = opts.vaeFile;
    // Guidance-distilled dev reads Mistral Small 3; klein reads Qwen3.
    let kind: 'qwen3' | 'mistral' = isFolder && folderIsDev(path) ? 'mistral' : 'qwen3';
    if (!isFolder) {
      const own = await indexSafetensors(path);
      const detected = detectFluxTransformer([...own.tensors.keys()], (k) => own.tensors.get(k)?.entry.shape);
      if (!detected) throw new Error(`${path}: not a FLUX transformer`);
      if (detected.config.generation === 1) throw new Error(`${path}: this is a FLUX.1 transformer (${detected.config.name}); load it as FLUX.1`);
      if (detected.config.guidanceEmbed) kind = 'mistral';
      const near = [...filesIn(dirname(path)).filter((f) => f !== path), ...(opts.modelsDir ? [...filesIn(join(opts.modelsDir, 'text_encoders')), ...filesIn(join(opts.modelsDir, 'vae'))] : [])];
      // The encoder whose three hidden states make the transformer's text width (klein 4B: Qwen3-4B,
      // 9B: Qwen3-8B; dev: Mistral Small 3).
      textEncoder ??= await findFile(near, (keys, shapeOf, md) => {
        let te: LlamaDecoderConfig | undefined;
        if (kind === 'qwen3') {
          const pre = keys.some((k) => k.startsWith('model.')) ? '' : 'model.';
          te = qwen3ConfigFromShapes((k) => shapeOf(k.slice(pre.length)), keys.map((k) => pre + k));
        } else {
          const named = new Map(keys.flatMap((k) => { const n = mistralLanguageModelName(k); return n ? [[n, k] as const] : []; }));
          te = mistralConfigFromShapes((k) => (named.has(k) ? shapeOf(named.get(k)!) : undefined), [...named.keys()], md);
        }
        return !!te && te.hiddenSize * te.outputLayers.length === detected.config.contextDim;
      });
      vae ??= await findFile(near, (keys, shapeOf, md) => flux2VaeConfigFromShapes(shapeOf, keys, md)?.config.latentChannels === detected.config.inChannels / 4);
      if (!textEncoder) throw new Error(`${path}: no ${kind === 'mistral' ? 'Mistral Small 3 text encoder (FLUX.2 [dev]\'s, e.g. mistral_3_small_flux2_bf16.safetensors)' : 'Qwen3 text encoder'} found beside it${opts.modelsDir ? ` or in ${join(opts.modelsDir, 'text_encoders')}` : ''}`);
      if (!vae) throw new Error(`${path}: no FLUX.2 VAE (with bn.running_mean) found beside it${opts.modelsDir ? ` or in ${join(opts.modelsDir, 'vae')}` : ''}`);
    }
    const given = opts.tokenizers?.[0];
    const tokJson = given ? undefined : findTokenizerJson(path, opts, textEncoder, kind);
    const m = await loadFlux2({ transformer: path, textEncoder, vae, tokenizer: tokJson });
    try {
      if (!given && !m.tokenizer) {
        // A Mistral file of ComfyUI's carries its tokenizer (tekken_model); other encoders need tokenizer.json.
        const what = kind === 'mistral' ? 'Mistral tokenizer (no tekken_model in the text encoder file, no tokenizer.json — the FLUX.2-dev folder\'s tokenizer/tokenizer.json —' : 'Qwen3 tokenizer.json (';
        throw new Error(`${path}: no ${what} looked in tokenizer/, beside the file${textEncoder ? ' and beside the text encoder' : ''}${opts.modelsDir ? `, and the models folder's tokenizers/${kind}/` : ''})`);
      }
      if (!m.text || !m.vae) throw new Error(`${path}: the text encoder or the VAE is missing`);
      const tokenizer: Tokenizer = given ?? m.tokenizer!;
      const padId = given ? (opts.config?.padId ?? QWEN3_PAD_ID) : m.tokenizer!.padId;
      const config: Flux2FamilyConfig = opts.config ?? {
        name: m.detection.variant ?? m.transformerConfig.name, transformer: m.transformerConfig, text: m.text.config, padId, vae: m.vae.config,
        sampleSize: m.transformerConfig.hiddenSize >= 1024 ? 1024 : 64,
      };
      return {
        config,
        denoiser: m.transformer,
        textEncoders: [{ part: 'text_encoder', weights: m.text.weights, tokenizer }],
        vae: m.vae.weights,
        dtypes: m.dtypes,
        params: m.params,
        close: () => m.close(),
      };
    } catch (e) {
      m.close();
      throw e;
    }
  },

  parts: (c): ModelPart[] => [
    { id: 'transformer', role: 'denoiser', trace: (b) => traceTransformer(b, c) },
    { id: 'text_encoder', role: 'text', trace: (b) => { llamaDecoderFeatures(b, c.text, input('ids', [1, 4], 'int64'), input('mask', [1, 4])); } },
    {
      id: 'vae', role: 'vae', trace: (b) => {
        const px = 2 ** c.vae.blockOutChannels.length;
        flux2Family.vaeEncode(b, c, input('images', [1, 3, px, px]));
        flux2Family.vaeDecode(b, c, input('latents', [1, c.vae.latentChannels * 4, 1, 1]));
      },
    },
  ],

  textEncoders: (c) => [{ part: 'text_encoder', maxLength: c.text.maxLength, maxClipSkip: 0 }],
  encodeText: (builders, c, ids) => {
    const id64 = cast(ids[0], 'int64');
    const mask = cast(logicalNot(equal(id64, constant(BigInt64Array.of(BigInt(c.padId)), [1, 1], 'int64'))), 'float32');
    return { context: llamaDecoderFeatures(builders[0], c.text, id64, mask) };
  },

  conditioning: (c) => [
    { name: 'context', shape: [c.text.maxLength, c.transformer.contextDim], source: 'text' },
    ...(c.transformer.guidanceEmbed ? [{ name: 'guidance', shape: [1], source: 'sample' as const }] : []),
  ],
  // dev trains at guidance 1 (ai-toolkit); previews pass the Sampler's scale (BFL's default 4).
  sampleConditioning: (c, _g, preview?: { guidance?: number }): Record<string, Float32Array> => (c.transformer.guidanceEmbed ? { guidance: Float32Array.of(preview?.guidance ?? TRAIN_GUIDANCE) } : {}),
  denoise: (b, c, { sample, timestep, cond }) => {
    if (!cond.context) throw new Error('FLUX.2 denoiser: conditioning \'context\' is missing');
    if (c.transformer.guidanceEmbed && !cond.guidance) throw new Error('FLUX.2 [dev] denoiser: conditioning \'guidance\' is missing');
    const [bsz, , h, w] = sample.shape;
    const t = c.transformer;
    const v = fluxTransformer(b, t, {
      img: toTokens(sample), txt: cond.context, timesteps: mul(timestep, 1 / TIMESTEP_SCALE),
      guidance: cond.guidance && t.guidanceEmbed ? reshape(cond.guidance, [bsz]) : undefined,
      rope: ropeTables(jointPositions(t, cond.context.shape[1], h, w), t.axesDim, t.theta),
    });
    return fromTokens(v, h, w);
  },
  // ai-toolkit's default for FLUX (`sigmoid`) is the logit-normal (0, 1).
  objective: () => ({ kind: 'flow', timestepScale: TIMESTEP_SCALE, sampling: { kind: 'logit_normal', mean: 0, std: 1 } }),
  // Normalisation by the checkpoint's BatchNorm statistics happens inside vaeEncode/vaeDecode.
  latentFormat: (c) => ({ channels: c.vae.latentChannels * 4, spatialCompression: 2 ** c.vae.blockOutChannels.length, temporalCompression: 1, scale: 1, shift: 0 }),
  latentMultiple: () => 1,

  vaeEncode: (b, c, pixels) => flux2NormalizeLatents(sdVaeEncode(b, c.vae, pixels).mean, flux2BatchNormStats(b.weights, c.vae)),
  vaeDecode: (b, c, latents) => sdVaeDecode(b, c.vae, flux2DenormalizeLatents(latents, flux2BatchNormStats(b.weights, c.vae))),

  samplers: FLUX_SAMPLERS,
  schedulers: SCHEDULER_NAMES,
  sample: (call, c, run) => {
    const [ch, h, w] = run.latentShape;
    return sampleFlux(fluxModelCall(call, TIMESTEP_SCALE), {
      // ComfyUI's schedulers run over the levels of BFL's schedule for this size and step count (ModelSamplingFlux's 10000).
      sampler: run.sampler, steps: run.steps, shift: flux2Shift(run.steps, h * w), scheduler: run.scheduler, timesteps: 10000, guidance: flux2Guidance(c, run.cfgScale),
      seed: run.seed, perImage: ch * h * w, batch: run.batch, label: flux2Label(c.transformer), onStep: run.onStep,
    });
  },

  loraComponents: (c) => {
    const peft = new Map([...fluxModuleMapping(c.transformer)].filter(([, parts]) => parts.length === 1).map(([bfl, [p]]) => [bfl, p.module]));
    return [{
      part: 'transformer', kohyaPrefix: 'lora_unet', peftPrefix: 'transformer',
      // diffusers splits the fused qkv (and FLUX.1's linear1): those need kernels/flux/lora.ts's writer.
      modulePath: { peft: (p) => peft.get(p) },
    }, { part: 'text_encoder', kohyaPrefix: 'lora_te1', peftPrefix: 'text_encoder' }];
  },
  presetFilter: (preset: TargetPreset) => targetFilter(fluxTargetSpec(preset === 'attention' ? 'attention' : preset === 'attention_ff' ? 'ai_toolkit' : 'all_linear')),
  loraFiles: fluxLoraFiles<Flux2FamilyConfig>(2),
};

