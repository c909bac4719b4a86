// Wan 2.1 / 2.2 behind the ModelFamily contract: umT5 features of the prompt (real tokens, zeros after),
// the video transformer over [B, C, F, h, w] latents (an image is a one-frame clip), rectified flow with
// the timestep in thousandths, the causal video VAE (2.1: ×8 space, 16 channels; 2.2: ×16, 48), flow
// Euler or UniPC previews on Wan's shifted schedule, and LoRA names as musubi-tuner (lora_unet_blocks_0_self_attn_q)
// and diffusers (transformer.blocks.0.attn1.to_q) write them.
//
// I2V models take 20 more input channels: a 4-channel mask (1 on the first latent frame) and the VAE
// latent of the first frame followed by black frames. Those are `source: 'latent'` conditioning inputs,
// built from the training clip by `latentConditioning`. Wan 2.1 I2V adds a third, `clip`: CLIP ViT-H/14's
// penultimate states of the first frame (`wanClipFeatures`), whose tower the VAE value serves.
//
// Wan 2.1 FLF2V (first and last frame) is 2.1 I2V whose condition knows the clip's last frame too: the
// VAE latent of [first, black…, last] behind a mask that also marks the last pixel frame, and CLIP
// features of both frames (2 × 257 tokens, to which the transformer adds learned positions). Trained as
// I2V (`firstFrameOnly`, what ComfyUI's WanFirstLastFrameToVideo does without end_image), it takes the
// first frame alone: the mask marks latent frame 0 only and the image branch gets that frame's 257 tokens.
//
// Wan 2.2 TI2V-5B takes its first frame without extra channels (kernels/wan/ti2v.ts): an optional
// `first_frame` latent input swapped into the noisy latent at timestep 0, left out of the loss.
//
// Wan 2.2 A14B is two networks of the 14B architecture: a config names its boundary and the expert its
// denoiser is (`wanExpertConfig`); `LoadedWanModel.openExpert` opens the other expert's file only when
// asked, so training one expert never reads the other's weights.
import type { Builder } from '../nn/builder';
import type { WeightSource } from '../nn/weights';
import { constant, input, type Tensor } from '../tensor';
import { add, cast, equal, logicalNot, mul } from '../ops/elementwise';
import { concat, reshape, slice } from '../ops/shape-and-reduce';
import type { Conditioning, ConditioningInput, LoadedFamilyModel, LoadOptions, ModelFamily, ModelPart, Tokenizer } from '../families/contract';
import type { TargetPreset } from '../adapters';
import { targetFilter } from '../adapters/targets';
import type { T5Config } from '../text/t5';
import { CLIP_VISION_TINY_WAN, CLIP_VIT_H_14, clipVisionPenultimate, traceClipVision, type ClipVisionConfig } from '../vision/clip-vision';
import { T5PromptTokenizer } from '../text/t5-tokenizer';
import {
  clipImageTokens, WAN21_FLF2V_14B, WAN21_I2V_14B, WAN21_T2V_14B, WAN21_T2V_1_3B, WAN22_I2V_A14B, WAN22_T2V_A14B, WAN22_TI2V_5B, WAN_CLIP_TOKENS,
  WAN_TEXT_LEN, WAN_TINY, type WanTransformerConfig,
} from './config';
import type { WanExpert } from './detect';
import { defaultExpertBoundary, WAN_EXPERTS } from './experts';
import { wanToDiffusers } from './keys';
import { wanLoraFiles, wanTargetSpec } from './lora';
import { sampleWan, WAN_SAMPLERS } from './sampling';
import { SCHEDULER_NAMES } from '../schedules/schedulers';
import { tokenGrid, wanRope, wanTransformer } from './transformer';
import { UMT5_TINY, UMT5_XXL, wanTextFeatures } from './umt5';
import { vaeSpatialFactor, vaeTemporalFactor, WAN21_VAE, WAN_TINY_VAE, wanVaeDecode, wanVaeEncode, type WanVaeConfig } from './vae';
import { WAN22_TINY_VAE, WAN22_VAE, wan22VaeDecode, wan22VaeEncode } from './vae22';
import { findWanFiles, openWanParts, openWanTransformer, VaeWithClipVision } from './load';
import { firstFrameInput, firstFrameLossMask, givenFirstFrame, withFirstFrame, FIRST_FRAME } from './ti2v';

export interface WanFamilyConfig {
  name: string;
  transformer: WanTransformerConfig;
  text: T5Config;
  /** Text tokens the encoder sees and the transformer attends to (512: Wan trims to the prompt and zero-pads). */
  textLength: number;
  vae: WanVaeConfig;
  /** 2.1 I2V: the CLIP vision tower whose penultimate hidden states of the first frame feed the image branch. */
  clipVision?: ClipVisionConfig;
  /** Preview size (the short side Wan generates at: 480; TI2V-5B 704). */
  sampleSize: number;
  /** Frames of a preview clip (4n + 1). */
  sampleFrames: number;
  /** Wan 2.2 A14B: the noise level (fraction of 1000) where the high-noise expert hands over, and which expert this config's denoiser is. */
  experts?: { boundary: number; active: WanExpert };
  /** 2.1 FLF2V conditioned on the first frame only, as 2.1 I2V is (`wanFamily.firstFrameOnly`). */
  firstFrameOnly?: boolean;
}

const family = (name: string, transformer: WanTransformerConfig, o: Partial<WanFamilyConfig> = {}): WanFamilyConfig => ({
  name, transformer, text: UMT5_XXL, textLength: WAN_TEXT_LEN, vae: WAN21_VAE, sampleSize: 480, sampleFrames: 81, ...o,
});
const experts = (t: WanTransformerConfig) => ({ boundary: defaultExpertBoundary(t), active: 'high_noise' as WanExpert });

export const WAN21_T2V_1_3B_FAMILY = family('wan2.1-t2v-1.3b', WAN21_T2V_1_3B);
export const WAN21_T2V_14B_FAMILY = family('wan2.1-t2v-14b', WAN21_T2V_14B);
export const WAN21_I2V_14B_FAMILY = family('wan2.1-i2v-14b', WAN21_I2V_14B, { clipVision: CLIP_VIT_H_14 });
/** Released at 720p only (Wan2.1-FLF2V-14B-720P): previews at 720. */
export const WAN21_FLF2V_14B_FAMILY = family('wan2.1-flf2v-14b', WAN21_FLF2V_14B, { clipVision: CLIP_VIT_H_14, sampleSize: 720 });
export const WAN22_T2V_A14B_FAMILY = family('wan2.2-t2v-a14b', WAN22_T2V_A14B, { experts: experts(WAN22_T2V_A14B) });
export const WAN22_I2V_A14B_FAMILY = family('wan2.2-i2v-a14b', WAN22_I2V_A14B, { experts: experts(WAN22_I2V_A14B) });
export const WAN22_TI2V_5B_FAMILY = family('wan2.2-ti2v-5b', WAN22_TI2V_5B, { vae: WAN22_VAE, sampleSize: 704, sampleFrames: 121 });

export const WAN_FAMILY_CONFIGS: readonly WanFamilyConfig[] = [
  WAN21_T2V_1_3B_FAMILY, WAN21_T2V_14B_FAMILY, WAN21_I2V_14B_FAMILY, WAN21_FLF2V_14B_FAMILY, WAN22_T2V_A14B_FAMILY, WAN22_I2V_A14B_FAMILY, WAN22_TI2V_5B_FAMILY,
];

/**
 * The Wan architecture at miniature size: tiny transformer, tiny umT5, tiny causal VAE; 64 text tokens,
 * 64 px, 9 frames. `ti2v`: TI2V-5B's switches (per-token timesteps, the 2.2 VAE's ×16 space).
 */
export const tinyWanConfig = (o: { i2v?: boolean; experts?: boolean; ti2v?: boolean } = {}): WanFamilyConfig => {
  if (o.ti2v) {
    const transformer = { ...WAN_TINY, name: 'wan-tiny-ti2v', inChannels: WAN22_TINY_VAE.zDim, outChannels: WAN22_TINY_VAE.zDim, perTokenTimesteps: true };
    return family('wan-tiny-ti2v', transformer, { text: UMT5_TINY, textLength: 64, vae: WAN22_TINY_VAE, sampleSize: 64, sampleFrames: 9 });
  }
  const z = WAN_TINY_VAE.zDim;
  const transformer = o.i2v ? { ...WAN_TINY, name: 'wan-tiny-i2v', inChannels: 2 * z + 4 } : WAN_TINY;
  return family(o.i2v ? 'wan-tiny-i2v' : 'wan-tiny', transformer, {
    text: UMT5_TINY, textLength: 64, vae: WAN_TINY_VAE, sampleSize: 64, sampleFrames: 9, experts: o.experts ? experts(transformer) : undefined,
  });
};

/** The tiny Wan with 2.1 I2V's CLIP image branch, fed by a tiny CLIP vision tower on ViT-H/14's 257-token grid. */
export const tinyWan21I2vConfig = (): WanFamilyConfig => {
  const c = tinyWanConfig({ i2v: true });
  const name = 'wan2.1-tiny-i2v';
  return { ...c, name, transformer: { ...c.transformer, name, clipImageDim: CLIP_VISION_TINY_WAN.hiddenSize }, clipVision: CLIP_VISION_TINY_WAN };
};

/** The tiny Wan 2.1 I2V made FLF2V: its image branch takes the first and the last frame (emb_pos over 2 × 257 tokens). */
export const tinyWan21Flf2vConfig = (): WanFamilyConfig => {
  const c = tinyWan21I2vConfig();
  const name = 'wan2.1-tiny-flf2v';
  return { ...c, name, transformer: { ...c.transformer, name, firstLastFrame: true } };
};

/** How each release is named to users (the tiny and custom sizes keep the family's label). */
const RELEASE_LABELS: Record<string, string> = {
  'wan2.1-t2v-1.3b': 'Wan 2.1 T2V 1.3B', 'wan2.1-t2v-14b': 'Wan 2.1 T2V 14B', 'wan2.1-i2v-14b': 'Wan 2.1 I2V 14B', 'wan2.1-flf2v-14b': 'Wan 2.1 FLF2V 14B',
  'wan2.2-t2v-a14b': 'Wan 2.2 T2V A14B', 'wan2.2-i2v-a14b': 'Wan 2.2 I2V A14B', 'wan2.2-ti2v-5b': 'Wan 2.2 TI2V-5B',
};

/** The same model as the other expert's denoiser (Wan 2.2 A14B). */
export function wanExpertConfig(c: WanFamilyConfig, expert: WanExpert): WanFamilyConfig {
  if (!c.experts) throw new Error(`${c.name} has one denoiser, not Wan 2.2 A14B's two experts`);
  return { ...c, experts: { ...c.experts, active: expert } };
}

/** The condition holds the clip's last frame too: 2.1 FLF2V, unless conditioned on the first frame only. */
const givesLastFrame = (c: WanFamilyConfig) => c.transformer.firstLastFrame && !c.firstFrameOnly;

/** Channels the I2V condition adds: the first-frame mask (4) and the image latent. */
const conditionChannels = (c: WanFamilyConfig) => c.transformer.inChannels - c.transformer.outChannels;
const MASK_CHANNELS = 4;
/** Wan's umT5 tokenizers pad with <pad> = 0, which the encoder masks out. */
const PAD_ID = 0;

/** Pixels [B, 3, (F,) H, W] → normalised latents [B, z, (F',) h, w] by the config's VAE (chunked, as Wan encodes). */
function encodeVideo(b: Builder, c: WanFamilyConfig, pixels: Tensor): Tensor {
  const image = pixels.rank === 4;
  const video = image ? reshape(pixels, [pixels.shape[0], 3, 1, ...pixels.shape.slice(2)]) : pixels;
  const z = c.vae.version === '2.2' ? wan22VaeEncode(b, c.vae, video).latents : wanVaeEncode(b, c.vae, video).latents;
  return image ? reshape(z, [z.shape[0], z.shape[1], ...z.shape.slice(3)]) : z;
}

function decodeVideo(b: Builder, c: WanFamilyConfig, latents: Tensor): Tensor {
  const image = latents.rank === 4;
  const z = image ? reshape(latents, [latents.shape[0], latents.shape[1], 1, ...latents.shape.slice(2)]) : latents;
  const px = c.vae.version === '2.2' ? wan22VaeDecode(b, c.vae, z) : wanVaeDecode(b, c.vae, z);
  return image ? reshape(px, [px.shape[0], 3, ...px.shape.slice(3)]) : px;
}

/**
 * The 4-channel mask [1, 4, latent frames, 1, 1] of the known pixel frames, laid out as Wan's pipelines
 * do: a pixel mask with the first frame repeated 4 times, folded 4 frames per latent frame. The first
 * frame fills latent frame 0; FLF2V's last pixel frame is the last channel of the last latent frame.
 */
function knownFramesMask(pixelFrames: number, latentFrames: number, lastKnown: boolean): Tensor {
  if (!lastKnown) return constant(Float32Array.from({ length: MASK_CHANNELS * latentFrames }, (_, i) => (i % latentFrames === 0 ? 1 : 0)), [1, MASK_CHANNELS, latentFrames, 1, 1]);
  const known = Array.from({ length: pixelFrames }, (_, i) => (i === 0 || (lastKnown && i === pixelFrames - 1) ? 1 : 0));
  const folded = [...Array(MASK_CHANNELS - 1).fill(known[0]), ...known];
  if (folded.length !== MASK_CHANNELS * latentFrames) throw new Error(`wan: ${pixelFrames} frames do not fold into ${latentFrames} latent frames of ${MASK_CHANNELS}`);
  // [latent frame, channel] → [channel, latent frame].
  return constant(Float32Array.from({ length: MASK_CHANNELS * latentFrames }, (_, i) => folded[(i % latentFrames) * MASK_CHANNELS + Math.floor(i / latentFrames)]), [1, MASK_CHANNELS, latentFrames, 1, 1]);
}

/**
 * I2V's condition from the clip's pixels [B, 3, F, H, W]: the VAE latent of the first frame followed by
 * black frames (how Wan's I2V pipeline and the trainers build it), behind a mask that is 1 on the first
 * latent frame and 0 after. FLF2V keeps the clip's last frame too ([first, black…, last] encoded
 * together, as Wan's and diffusers' FLF2V pipelines do) and marks it in the mask.
 */
export function wanI2vCondition(b: Builder, c: WanFamilyConfig, pixels: Tensor): Tensor {
  const video = pixels.rank === 4 ? reshape(pixels, [pixels.shape[0], 3, 1, ...pixels.shape.slice(2)]) : pixels;
  const frames = video.shape[2];
  const lastKnown = givesLastFrame(c) && frames > 1;
  const first = slice(video, [0], [1], [2]);
  const blank = (from: number, to: number) => mul(slice(video, [from], [to], [2]), 0);
  const known = frames === 1 ? first
    : lastKnown ? concat([first, ...(frames > 2 ? [blank(1, frames - 1)] : []), slice(video, [frames - 1], [frames], [2])], 2)
    : concat([first, blank(1, frames)], 2);
  const latent = encodeVideo(b, c, known);
  const lf = latent.shape[2];
  const maskFrames = knownFramesMask(frames, lf, lastKnown);
  // Broadcast the frame pattern over batch and pixels without a full-size constant.
  const mask = add(mul(slice(latent, [0], [MASK_CHANNELS], [1]), 0), maskFrames);
  const condition = concat([mask, latent], 1);
  if (condition.shape[1] !== conditionChannels(c)) throw new Error(`${c.name}: the I2V condition has ${condition.shape[1]} channels, the transformer takes ${conditionChannels(c)}`);
  return pixels.rank === 4 ? reshape(condition, [condition.shape[0], condition.shape[1], ...condition.shape.slice(3)]) : condition;
}

/** Where the VAE value serves the CLIP vision tower's weights (transformers names below it). */
export const CLIP_VISION_SCOPE = 'clip_vision';

/**
 * Wan 2.1 I2V's image features of the clip's first frame (pixels [B, 3, (F,) H, W] in [−1, 1]): the CLIP
 * vision tower's penultimate hidden states [B, 257, 1280], frozen, computed beside the VAE encoder.
 * FLF2V: the first frame's then the last frame's, one sequence [B, 514, 1280] (an image is both); with
 * `firstFrameOnly`, the first frame's alone.
 */
export function wanClipFeatures(b: Builder, c: WanFamilyConfig, pixels: Tensor): Tensor {
  if (!c.clipVision) throw new Error(`${c.name}: the transformer has a CLIP image branch but the config names no CLIP vision tower`);
  const bsz = pixels.shape[0];
  const [h, w] = pixels.shape.slice(-2);
  const frames = pixels.rank === 5 ? pixels.shape[2] : 1;
  const frame = (i: number) => (pixels.rank === 5 ? reshape(slice(pixels, [i], [i + 1], [2]), [bsz, 3, h, w]) : pixels);
  // Both frames through the tower as one batch [first…; last…], then each sample's two sequences joined.
  const images = givesLastFrame(c) ? concat([frame(0), frame(frames - 1)], 0) : frame(0);
  const states = clipVisionPenultimate(b.scope(CLIP_VISION_SCOPE), c.clipVision, images);
  if (states.shape[1] !== WAN_CLIP_TOKENS || states.shape[2] !== c.transformer.clipImageDim) {
    throw new Error(`${c.name}: the CLIP vision tower gives ${states.shape[1]} tokens × ${states.shape[2]}; the image branch takes ${WAN_CLIP_TOKENS} × ${c.transformer.clipImageDim}`);
  }
  return givesLastFrame(c) ? concat([slice(states, [0], [bsz], [0]), slice(states, [bsz], [2 * bsz], [0])], 1) : states;
}

function traceTransformer(b: Builder, c: WanFamilyConfig) {
  const t = c.transformer;
  const [pt, ph, pw] = t.patch;
  const latent = [1, t.outChannels, pt, 2 * ph, 2 * pw];
  wanTransformer(b, t, {
    latents: input('x', latent),
    condition: conditionChannels(c) > 0 ? input('y', [1, conditionChannels(c), ...latent.slice(2)]) : undefined,
    context: input('context', [1, 2, t.textDim]), timesteps: input('t', [1]),
    clipImage: t.clipImageDim ? input('clip', [1, clipImageTokens(t), t.clipImageDim]) : undefined,
    rope: wanRope(t, [1, 2, 2]),
  });
}

/** Wan cleans prompts (whitespace runs to one space) before its umT5 tokenizer. */
export function wanTokenizer(t5: T5PromptTokenizer): Tokenizer {
  return { vocabSize: t5.vocabSize, tokenize: (text, o) => t5.tokenize(text.replace(/\s+/g, ' ').trim(), o) };
}

/** What `wanFamily.load` returns: the contract's parts, plus the 2.2 A14B experts. */
export interface LoadedWanModel extends LoadedFamilyModel<WanFamilyConfig> {
  /** 2.2 A14B: each expert's transformer file or folder found (the other one may be missing). */
  expertFiles?: Partial<Record<WanExpert, string>>;
  /** Opens one expert's transformer (headers only; tensors are read when a graph asks for them). */
  openExpert(expert: WanExpert): Promise<WeightSource & { close(): void }>;
}

const TIMESTEP_SCALE = 1000;

/** The contract, with `load` returning the experts too. */
export interface WanModelFamily extends ModelFamily<WanFamilyConfig> {
  load(path: string, opts?: LoadOptions<WanFamilyConfig>): Promise<LoadedWanModel>;
}

export const wanFamily: WanModelFamily = {
  id: 'wan',
  label: 'Wan 2.1/2.2',
  labelOf: (c) => RELEASE_LABELS[c.transformer.name] ?? 'Wan 2.1/2.2',
  // musubi-tuner writes modelspec.architecture `wan2.1/lora` for every Wan (its ARCH_WAN); files of any Wan start with `wan`.
  baseModelVersion: 'wan',
  modelspecArchitecture: 'wan2.1',
  configs: { full: WAN22_I2V_A14B_FAMILY, tiny: () => tinyWanConfig() },
  sampleSize: (c) => c.sampleSize,
  sampleFrames: (c) => c.sampleFrames,
  configName: (c) => (c.experts ? `${c.name}-${c.experts.active}` : c.name),
  loadsSeparateFiles: true,

  /**
   * A diffusers folder (transformer/, transformer_2/ for 2.2 A14B's low-noise expert, text_encoder/,
   * tokenizer/, vae/), or a diffusion-model file with its umT5 and VAE found beside it or in ComfyUI's
   * text_encoders/ and vae/ folders. The umT5 tokenizer.json comes from tokenizer/, beside the text
   * encoder (`<name>.tokenizer.json`), or the models folder's tokenizers/umt5/.
   */
  async load(path: string, opts: LoadOptions<WanFamilyConfig> = {}): Promise<LoadedWanModel> {
    const files = await findWanFiles(path, { modelsDir: opts.modelsDir, textEncoder: opts.textEncoderFiles?.[0], vae: opts.vaeFile, clipVision: opts.clipVisionFile });
    const wantExpert = opts.config?.experts?.active;
    const transformerFile = wantExpert ? files.experts?.[wantExpert] : files.transformer;
    if (!transformerFile) throw new Error(`${path}: the ${wantExpert} expert's file was not found (expected the same name with high_noise/low_noise swapped, or diffusers' transformer_2/)`);
    const external = { external: opts.external };
    const m = await openWanParts({ ...files, transformer: transformerFile }, opts.config?.transformer.numHeads, external);
    try {
      const given = opts.tokenizers?.[0];
      if (!given && !m.tokenizer) throw new Error(`${path}: no umT5 tokenizer.json found (tokenizer/, beside ${files.textEncoder} as <name>.tokenizer.json${opts.modelsDir ? ', or the models folder\'s tokenizers/umt5/' : ''})`);
      const d = m.transformer.detection;
      // Two expert files make a 2.1 14B look-alike the 2.2 A14B release it is (their tensors are the same).
      const twoExperts = !!files.experts?.high_noise && !!files.experts?.low_noise;
      const variant = twoExperts && d.variant?.startsWith('wan2.1') ? (d.sameKeysAs.find((n) => n.startsWith('wan2.2')) ?? d.variant) : d.variant;
      const detected = variant ? WAN_FAMILY_CONFIGS.find((f) => f.transformer.name === variant) : undefined;
      const hasExperts = !!files.experts || !!d.expert || detected?.experts;
      const config: WanFamilyConfig = opts.config ?? {
        ...(detected ?? family(d.config.name, d.config, { sampleSize: d.config.dim >= 1536 ? 480 : 64, sampleFrames: d.config.dim >= 1536 ? 81 : 9 })),
        transformer: detected?.transformer ?? d.config, text: m.text.config, vae: m.vae.config,
        textLength: d.config.dim >= 1536 ? WAN_TEXT_LEN : Math.min(WAN_TEXT_LEN, Number(m.transformer.metadata.loragraph_text_length ?? 64)),
        experts: hasExperts ? { boundary: files.boundary ?? defaultExpertBoundary(d.config), active: d.expert ?? 'high_noise' } : undefined,
        // Without a file, ViT-H/14 is assumed; the VAE value then names the missing file when a graph needs the features.
        clipVision: d.config.clipImageDim ? (m.clipVision?.config ?? detected?.clipVision ?? CLIP_VIT_H_14) : undefined,
      };
      const clipImageDim = config.transformer.clipImageDim;
      const flf2v = config.transformer.firstLastFrame;
      const missingClipVision = `clipVision: ${config.name} (Wan 2.1 ${flf2v ? 'FLF2V' : 'I2V'}) conditions on CLIP ViT-H/14 features of the ${flf2v ? 'first and last frames' : 'first frame'} and no CLIP vision file was found: choose ComfyUI's clip_vision_h.safetensors on Load Model's clipVision widget, or put it in the models folder's clip_vision/`;
      return {
        config,
        denoiser: m.transformer.weights,
        textEncoders: [{ part: 'text_encoder', weights: m.text.weights, tokenizer: given ?? wanTokenizer(m.tokenizer!) }],
        vae: clipImageDim ? new VaeWithClipVision(m.vae.weights, m.clipVision?.weights, CLIP_VISION_SCOPE, missingClipVision) : m.vae.weights,
        dtypes: m.dtypes,
        params: { transformer: m.transformer.params, text_encoder: m.text.params, vae: m.vae.params, ...(m.clipVision ? { clip_vision: m.clipVision.params } : {}) },
        expertFiles: files.experts,
        async openExpert(expert: WanExpert) {
          const file = files.experts?.[expert];
          if (!file) throw new Error(`${path}: no ${expert} expert file found`);
          const t = await openWanTransformer(file, config.transformer.numHeads, external);
          return { get: (p, shape, use) => t.weights.get(p, shape, use), close: () => t.close() };
        },
        close: () => m.close(),
      };
    } catch (e) {
      m.close();
      throw e;
    }
  },

  parts: (c): ModelPart[] => [
    { id: 'transformer', role: 'denoiser', trace: (b) => traceTransformer(b, c) },
    { id: 'text_encoder', role: 'text', trace: (b) => { wanTextFeatures(b, c.text, input('ids', [1, 4], 'int64'), input('mask', [1, 4])); } },
    {
      id: 'vae', role: 'vae', trace: (b) => {
        // Two latent frames: the time convolutions act only past the first frame.
        const s = vaeSpatialFactor(c.vae);
        encodeVideo(b, c, input('video', [1, 3, 1 + vaeTemporalFactor(c.vae), s, s]));
        decodeVideo(b, c, input('latents', [1, c.vae.zDim, 2, 1, 1]));
      },
    },
    // Wan 2.1 I2V's image encoder: its weights travel with the VAE value's (CLIP_VISION_SCOPE), every tensor of its file traced.
    ...(c.clipVision ? [{
      id: 'clip_vision', role: 'vae' as const,
      trace: (b: Builder) => traceClipVision(b.scope(CLIP_VISION_SCOPE), c.clipVision!, input('image', [1, 3, c.clipVision!.imageSize, c.clipVision!.imageSize])),
    }] : []),
  ],

  textEncoders: (c) => [{ part: 'text_encoder', maxLength: c.textLength, maxClipSkip: 0 }],
  encodeText: (builders, c, ids) => {
    const id64 = cast(ids[0], 'int64');
    const mask = cast(logicalNot(equal(id64, constant(BigInt64Array.of(BigInt(PAD_ID)), [1, 1], 'int64'))), 'float32');
    return { context: wanTextFeatures(builders[0], c.text, id64, mask) };
  },

  conditioning: (c, latentShape?: readonly number[]): ConditioningInput[] => {
    const out: ConditioningInput[] = [{ name: 'context', shape: [c.textLength, c.transformer.textDim], source: 'text' }];
    if (conditionChannels(c) > 0) {
      // Sized by the latent being denoised: [C, (F,) h, w] → [20, (F,) h, w]. Without one, a one-frame preview's.
      const rest = latentShape ? latentShape.slice(1) : [1, c.sampleSize / vaeSpatialFactor(c.vae), c.sampleSize / vaeSpatialFactor(c.vae)];
      out.push({ name: 'condition', shape: [conditionChannels(c), ...rest], source: 'latent' });
    }
    if (c.transformer.clipImageDim) out.push({ name: 'clip', shape: [clipImageTokens({ firstLastFrame: givesLastFrame(c) }), c.transformer.clipImageDim], source: 'latent' });
    if (c.transformer.perTokenTimesteps) {
      const preview = c.sampleSize / vaeSpatialFactor(c.vae);
      const first = firstFrameInput(c.transformer.outChannels, latentShape, [preview, preview]);
      if (first) out.push(first);
    }
    return out;
  },
  sampleConditioning: () => ({}),
  latentConditioning: (b, c, pixels): Conditioning => {
    if (c.transformer.perTokenTimesteps) {
      // TI2V: the first frame encoded alone (clips only; an image is text to image).
      if (pixels.rank !== 5 || pixels.shape[2] < 2) return {};
      return { [FIRST_FRAME]: givenFirstFrame(encodeVideo(b, c, slice(pixels, [0], [1], [2]))) };
    }
    return {
      ...(conditionChannels(c) > 0 ? { condition: wanI2vCondition(b, c, pixels) } : {}),
      ...(c.transformer.clipImageDim ? { clip: wanClipFeatures(b, c, pixels) } : {}),
    };
  },
  takesLastFrame: (c) => givesLastFrame(c),
  firstFrameOnly: (c) => {
    if (!c.transformer.firstLastFrame) throw new Error(`${c.name} takes no last frame; only first-and-last-frame models (Wan 2.1 FLF2V) can be conditioned on the first frame only`);
    return { ...c, firstFrameOnly: true };
  },
  denoise: (b, c, { sample, timestep, cond }) => {
    if (!cond.context) throw new Error('Wan denoiser: conditioning \'context\' is missing');
    const t = c.transformer;
    const toClip = (x: Tensor) => (x.rank === 4 ? reshape(x, [x.shape[0], x.shape[1], 1, ...x.shape.slice(2)]) : x);
    const x = toClip(sample);
    if (conditionChannels(c) > 0 && !cond.condition) throw new Error(`${c.name} is an image-to-video model: conditioning 'condition' (first-frame mask + image latent) is missing`);
    const sigma = mul(timestep, 1 / TIMESTEP_SCALE);
    const first = cond[FIRST_FRAME] ? withFirstFrame(x, sigma, cond[FIRST_FRAME]) : { latents: x, timesteps: sigma };
    const v = wanTransformer(b, t, {
      latents: first.latents, condition: cond.condition && toClip(cond.condition), context: cond.context, timesteps: first.timesteps,
      clipImage: cond.clip, rope: wanRope(t, tokenGrid(t, x.shape)),
    });
    return sample.rank === 4 ? reshape(v, sample.shape) : v;
  },
  lossMask: (_c, cond, latentShape) => (cond[FIRST_FRAME] ? firstFrameLossMask(cond[FIRST_FRAME], latentShape[1]) : undefined),
  // musubi-tuner's recommended Wan setting: shifted timesteps (`--timestep_sampling shift --discrete_flow_shift 3.0`).
  objective: () => ({ kind: 'flow', timestepScale: TIMESTEP_SCALE, sampling: { kind: 'shift', shift: 3 } }),
  // vaeEncode/vaeDecode normalise by the per-channel statistics themselves; they are stated for reference.
  latentFormat: (c) => ({
    channels: c.vae.zDim, spatialCompression: vaeSpatialFactor(c.vae), temporalCompression: vaeTemporalFactor(c.vae), scale: 1, shift: 0,
    channelMean: c.vae.latentMean, channelStd: c.vae.latentStd,
  }),
  latentMultiple: (c) => c.transformer.patch[1],

  vaeEncode: (b, c, pixels) => encodeVideo(b, c, pixels),
  vaeDecode: (b, c, latents) => decodeVideo(b, c, latents),

  // Flow Euler or UniPC on Wan's shifted schedule; 2.2 A14B's high-noise steps take run.cfgScaleHighNoise.
  samplers: WAN_SAMPLERS,
  schedulers: SCHEDULER_NAMES,
  sample: (call, c, run) => sampleWan(call, c.transformer, run, { boundary: c.experts?.boundary }),

  loraComponents: () => [
    { part: 'transformer', kohyaPrefix: 'lora_unet', peftPrefix: 'transformer', modulePath: { peft: (p) => { try { return wanToDiffusers(p); } catch { return undefined; } } } },
    { part: 'text_encoder', kohyaPrefix: 'lora_te', peftPrefix: 'text_encoder' },
  ],
  loraFiles: wanLoraFiles<WanFamilyConfig>(),
  // ai-toolkit's and musubi-tuner's default (attention + FFN of every block) is the default preset here too.
  presetFilter: (preset: TargetPreset) => targetFilter(wanTargetSpec(preset === 'attention' ? 'attention' : preset === 'attention_ff' ? 'blocks' : 'all_linear')),
};

export { WAN_EXPERTS };
