// The one contract between the nodes and a model family (SD 1.x, SDXL, FLUX, Wan, …). Nodes hold a
// `ModelFamily` and its opaque config and call only these members; everything architecture-specific
// (layers, key names, tokenizers, latent statistics, objectives) stays in the family's kernels/ folder.
// A family is registered in kernels/families/registry.ts; nothing in nodes/ changes when one is added.
import type { Builder, ModuleInfo } from '../nn/builder';
import type { WeightSource } from '../nn/weights';
import type { HostTensor, Tensor } from '../tensor';
import type { TargetPreset } from '../adapters';
import type { DdpmConfig, PredictionType } from '../schedules/ddpm';

/** Short stable id written into sockets, cache keys and metadata: 'sd1', 'sdxl', 'flux1', 'wan21', … */
export type FamilyId = string;

/** What a text encoder's tokenizer must do (kernels/sd/tokenizer's ClipTokenizer satisfies it). */
export interface Tokenizer {
  readonly vocabSize: number;
  /** Ids padded or cut to exactly `maxLength` (BOS/EOS/padding as that encoder was trained with). */
  tokenize(text: string, opts: { maxLength: number }): { ids: ArrayLike<number> };
}

/**
 * A denoiser input besides (sample, timestep), per sample (no batch axis). Named so one training graph
 * and one preview pipeline serve every family: SD 1.x has `context`; SDXL `context`, `pooled` and
 * `time_ids`; FLUX adds `guidance`; Wan i2v a first-frame latent.
 */
export interface ConditioningInput {
  /** Graph input name (and feed name). */
  name: string;
  shape: readonly number[];
  /**
   * `text`: produced by `encodeText` (cached per caption with the text-embedding cache);
   * `sample`: computed per sample by `sampleConditioning` from what the dataset recorded (or the
   * preview's size);
   * `latent`: computed per sample from the clip's pixels by `latentConditioning`, beside the VAE encoder
   * (Wan I2V's first-frame mask and image latent); shaped by the latent being denoised.
   */
  source: 'text' | 'sample' | 'latent';
  /**
   * All zeros means "not given", a case the model was made for (Wan 2.2 TI2V-5B's first frame: text to
   * video without one, image to video with one), so previews may leave it out.
   */
  optional?: boolean;
}

/**
 * What the dataset's bucketing did to one sample, for size/crop micro-conditioning (SDXL) — pixels,
 * before the VAE. kohya's sdxl_train records exactly these; previews pass original = target, crop 0.
 */
export interface SampleGeometry {
  /** The image's size before any resize (upright). */
  originalSize: { width: number; height: number };
  /** Top-left of the crop within the resized image, after mirroring for a horizontal flip. */
  cropTopLeft: { top: number; left: number };
  /** The bucket (training) size. */
  targetSize: { width: number; height: number };
}

/**
 * How latents relate to the VAE's raw output: latent = (raw − shift) · scale, or per channel
 * (raw − mean_c) / std_c (Wan). Sizes let the dataset and the pipelines check buckets and frames.
 */
export interface LatentFormat {
  channels: number;
  /** Pixels per latent pixel along height and width (8 for SD/SDXL/FLUX.1 VAEs, 16 for FLUX.2's packing). */
  spatialCompression: number;
  /** Frames per latent frame (1 for image models; 4 for Wan, which also keeps the first frame alone). */
  temporalCompression: number;
  scale: number;
  shift: number;
  channelMean?: readonly number[];
  channelStd?: readonly number[];
}

/**
 * The training objective: DDPM noise prediction (ε or v, with its beta schedule) or rectified flow
 * (x_t = (1 − t)·x0 + t·noise, target noise − x0). Decides the noisy input, the target, the
 * timestep units the denoiser takes, min-SNR weighting (DDPM only) and which preview samplers apply.
 */
export type Objective =
  | { kind: 'ddpm'; prediction: PredictionType; schedule: Required<DdpmConfig> }
  | {
      kind: 'flow';
      /** The denoiser's timestep input is t · timestepScale (1000 for FLUX/Wan/SD3, 1 for Z-Image). */
      timestepScale: number;
      /** Default timestep sampling when no Timestep Schedule node is connected (ai-toolkit / musubi names). */
      sampling: { kind: 'uniform' } | { kind: 'logit_normal'; mean: number; std: number } | { kind: 'shift'; shift: number };
    };

/**
 * One part of the model as the family builds it, for everything that walks the modules without
 * running them: shape checks against checkpoints, parameter counts, Quantize, LoRA target discovery.
 */
export interface ModelPart {
  /** diffusers folder name: 'unet' | 'transformer' | 'text_encoder' | 'text_encoder_2' | 'vae'. */
  id: string;
  role: 'denoiser' | 'text' | 'vae';
  /** Builds the part symbolically with `b` (a ShapeRecorder, QuantizedWeights, or an adapter hook). */
  trace(b: Builder): void;
}

/** LoRA file formats the ecosystem loads. */
export type LoraFormat = 'kohya' | 'peft' | 'ai-toolkit';

/**
 * How one part's modules are named in LoRA files. Builders name modules in one scheme (diffusers for
 * SD 1.x, SGM for SDXL's UNet); each format's name is derived here so files load in ComfyUI, A1111/Forge,
 * diffusers and ai-toolkit.
 */
export interface LoraComponent {
  /** The ModelPart id this component adapts. */
  part: string;
  /** kohya prefix without the trailing underscore: 'lora_unet', 'lora_te', 'lora_te1', 'lora_te2'. */
  kohyaPrefix: string;
  /** diffusers/PEFT prefix: 'unet', 'text_encoder', 'text_encoder_2', 'transformer'. */
  peftPrefix: string;
  /**
   * The module's path in a format's naming (without prefix). Absent formats: kohya = the builder path
   * (dots become underscores), peft = the builder path. Returns undefined for modules a format cannot name.
   */
  modulePath?: Partial<Record<LoraFormat, (builderPath: string) => string | undefined>>;
}

/** One module's LoRA as float32, by the builder's module path: delta W = up · down · alpha / rank. */
export interface LoraModuleWeights { down: Float32Array; up: Float32Array; rank: number; inFeatures: number; outFeatures: number; alpha: number }

/**
 * A family's own LoRA file layouts for its denoiser (DiT trainers' names, fused ↔ split projections),
 * beside the generic kohya writer every family has. Save LoRA offers these formats; Load LoRA reads them.
 */
export interface FamilyLoraFiles<C = unknown> {
  /** Format → the tools a file of it loads in completely (Save LoRA's tooltip and status line). */
  formats: Readonly<Record<string, readonly string[]>>;
  /** What Save LoRA's `auto` writes for this family (ai-toolkit for FLUX). */
  defaultFormat: string;
  /** The file's tensors (float32) for modules keyed by builder path; formats without alpha fold alpha / rank into `up`. */
  write(config: C, modules: ReadonlyMap<string, LoraModuleWeights>, format: string): Map<string, HostTensor>;
  /** Which of `formats` a file's tensor names are in (undefined when none). */
  formatOf(keys: Iterable<string>): string | undefined;
  /** Modules keyed by builder path from float32 tensors in any of `formats`; names no module of `config` are refused. */
  read(config: C, tensors: ReadonlyMap<string, HostTensor>): Map<string, LoraModuleWeights>;
}

/** Text-encoder outputs and sample conditioning, as named graph tensors with a batch axis. */
export type Conditioning = Record<string, Tensor>;

/** What `load` returns: weights stay lazy (read when a graph asks), tokenizers are ready. */
export interface LoadedFamilyModel<C = unknown> {
  config: C;
  denoiser: WeightSource;
  /** In `textEncoders(config)` order. */
  textEncoders: { part: string; weights: WeightSource; tokenizer: Tokenizer }[];
  vae: WeightSource;
  /** Storage dtypes of the files, e.g. ['F16']. */
  dtypes: string[];
  /** Parameters per part id, counted from the tensors found. */
  params: Record<string, number>;
  close(): void;
}

export interface LoadOptions<C = unknown> {
  /** Keep fp32/fp16 tensors on disk as ONNX external data (user checkpoints). */
  external?: boolean;
  /** Overrides the config the file implies. */
  config?: C;
  /** Where to look for tokenizers besides the checkpoint's own folder (the models folder). */
  modelsDir?: string;
  /** Tokenizers to use instead of searching (the built-in tiny model's). */
  tokenizers?: Tokenizer[];
  /** Tokenizer folders tried last, used when their vocabulary fits (the built-in tiny tokenizer for tiny test checkpoints). */
  fallbackTokenizerDirs?: string[];
  /**
   * Separate files chosen on Load Model (ComfyUI's layout), used instead of searching: text encoders in
   * `textEncoders(config)` order (undefined entries are searched for) and the VAE. Only families with
   * `loadsSeparateFiles` take them.
   */
  textEncoderFiles?: (string | undefined)[];
  vaeFile?: string;
  /** A CLIP vision file chosen on Load Model (ComfyUI's clip_vision/, "Load CLIP Vision"): Wan 2.1 I2V's image encoder. */
  clipVisionFile?: string;
}

/** A preview sampler's loop over one model call (uncond and cond latents batched, CFG applied by the loop). */
export type ModelCall = (x: Float32Array, timestep: number) => Promise<Float32Array>;

export interface SampleRun {
  sampler: string;
  steps: number;
  cfgScale: number;
  seed: number;
  /** [C, (F,) h, w] of one image and how many. */
  latentShape: number[];
  batch: number;
  /** ComfyUI's scheduler (kernels/schedules/schedulers.ts), or `auto`: the family's own schedule. */
  scheduler: string;
  /** Wan 2.2 A14B: CFG scale of the high-noise expert's steps (absent: `cfgScale` throughout). */
  cfgScaleHighNoise?: number;
  /**
   * The `sample` and `latent` conditioning values the denoiser is fed, [2·batch, …] by name (uncond half
   * first), for samplers that hold given latent values in place (Wan 2.2 TI2V's first frame).
   */
  conditioning?: Record<string, HostTensor>;
  onStep?: (step: number, total: number) => void;
}

/** The contract. `C` is the family's config type; nodes treat it as opaque. */
export interface ModelFamily<C = any> {
  id: FamilyId;
  /** Shown on nodes and in errors: 'Stable Diffusion 1.x', 'SDXL'. */
  label: string;
  /** The variant a config is, when the family spans several users tell apart ('FLUX.2 [dev]'); absent: `label`. */
  labelOf?(config: C): string;
  /** LoRA metadata: ss_base_model_version ('sd_v1', 'sdxl_base_v1-0') and modelspec.architecture stem ('stable-diffusion-xl-v1-base'). */
  baseModelVersion: string;
  modelspecArchitecture: string;
  /** The variant's modelspec.architecture stem when it is more precise than the family's ('Flux.2-klein-9b'). */
  modelspecArchitectureOf?(config: C): string;

  // ---- configs and loading ---------------------------------------------------------------------
  /** The real size and a tiny one for tests and CPU demos (same code, other numbers). */
  configs: { full: C; tiny(): C };
  /** Pixel size the model was trained at (default preview size), e.g. 512, 1024. */
  sampleSize(config: C): number;
  /** Video families: frames of a preview clip (1 + temporalCompression·n; Wan 81). Absent: images. */
  sampleFrames?(config: C): number;
  /** A config's display name (`sd15`, `sdxl-tiny`). */
  configName(config: C): string;
  /** Single-file, diffusers folder, or separate files; refuses wrong tensors by name. */
  load(path: string, opts?: LoadOptions<C>): Promise<LoadedFamilyModel<C>>;
  /** `load` takes text encoder and VAE files chosen separately (LoadOptions.textEncoderFiles / vaeFile). */
  loadsSeparateFiles?: boolean;
  /** The model's parts in denoiser, text encoders…, vae order. */
  parts(config: C): ModelPart[];

  // ---- text ------------------------------------------------------------------------------------
  /** Per text encoder: its part id, token length, and how many final layers clip skip may drop (0 = none). */
  textEncoders(config: C): { part: string; maxLength: number; maxClipSkip: number }[];
  /**
   * Text conditioning in the graph from token ids (one [B, L] int64 tensor per text encoder); one Builder
   * per encoder (with the text adapter hook when it trains). Returns the `source: 'text'` inputs.
   */
  encodeText(builders: Builder[], config: C, ids: Tensor[], opts: { clipSkip: number }): Conditioning;

  // ---- denoiser --------------------------------------------------------------------------------
  /**
   * Every input the denoiser takes besides sample and timestep. `latentShape` ([C, (F,) h, w] of one
   * sample) sizes the `source: 'latent'` inputs; without it they have a one-frame preview's size.
   */
  conditioning(config: C, latentShape?: readonly number[]): ConditioningInput[];
  /** Values of the `source: 'sample'` inputs for one sample, flat, in `conditioning` order. */
  sampleConditioning(config: C, geometry: SampleGeometry, preview?: { guidance?: number }): Record<string, Float32Array>;
  /** The `source: 'latent'` inputs, in a graph, from pixels [B, 3, (F,) H, W] in [−1, 1] (absent: the family has none). */
  latentConditioning?(b: Builder, config: C, pixels: Tensor): Conditioning;
  /**
   * The `latent` inputs take the clip's last frame as well as its first (Wan 2.1 FLF2V): previews need an
   * end image beside the start image. Absent: first frame only.
   */
  takesLastFrame?(config: C): boolean;
  /**
   * The same model with its `latent` inputs made from the clip's first frame only (Wan 2.1 FLF2V trained
   * as image-to-video, as ComfyUI's WanFirstLastFrameToVideo runs without an end_image). Only for models
   * whose `takesLastFrame` is true.
   */
  firstFrameOnly?(config: C): C;
  /**
   * The prediction (ε, v or flow velocity) for noisy latents `sample` [B, C, (F,) h, w] at float32
   * `timestep` [B] in the objective's units, with every conditioning input by name.
   */
  denoise(b: Builder, config: C, x: { sample: Tensor; timestep: Tensor; cond: Conditioning }): Tensor;
  /**
   * Where the training loss counts, 1 or 0, broadcastable to the prediction [B, C, (F,) h, w]: latents the
   * denoiser was given clean through `cond` are left out (Wan 2.2 TI2V's first frame, as DiffSynth-Studio
   * trains it). Absent or undefined: everywhere.
   */
  lossMask?(config: C, cond: Conditioning, latentShape: readonly number[]): Tensor | undefined;
  objective(config: C): Objective;
  /** Latents of one image/clip per pixel size: channels, compression, normalisation. */
  latentFormat(config: C): LatentFormat;
  /** Latent size must be a multiple of this for the denoiser (its down-sampling × patch size). */
  latentMultiple(config: C): number;

  // ---- VAE -------------------------------------------------------------------------------------
  /** Pixels in [−1, 1] [B, 3, (F,) H, W] → normalised latents (the distribution's mean; no sampling). */
  vaeEncode(b: Builder, config: C, pixels: Tensor): Tensor;
  /** Normalised latents → pixels in [−1, 1]. */
  vaeDecode(b: Builder, config: C, latents: Tensor): Tensor;

  // ---- previews --------------------------------------------------------------------------------
  /** Preview samplers this family's objective supports, by ComfyUI name. */
  samplers: readonly string[];
  /** Schedulers its samplers step on: `auto` (the family's own schedule) and ComfyUI's names; absent: `auto` alone. */
  schedulers?: readonly string[];
  /** Samplers that step on their own timesteps, with the only schedulers they take (SD's DDIM: auto, normal). */
  samplerSchedulers?: Readonly<Record<string, readonly string[]>>;
  /** Runs one sampler loop; returns the final latents (batch × latentShape). */
  sample(call: ModelCall, config: C, run: SampleRun): Promise<Float32Array>;

  // ---- LoRA ------------------------------------------------------------------------------------
  /** One per trainable part: UNet/transformer first, then text encoders in `textEncoders` order. */
  loraComponents(config: C): LoraComponent[];
  /** Narrows a preset for this architecture (absent: kernels/adapters' generic module-name rules). */
  presetFilter?(preset: TargetPreset): ((m: ModuleInfo) => boolean) | undefined;
  /** The family's own LoRA file layouts (absent: kohya and diffusers through the generic names above). */
  loraFiles?: FamilyLoraFiles<C>;
}

/** What a loaded model is called: its variant's label when the family tells variants apart, else the family's. */
export function modelLabel(family: ModelFamily, config: unknown): string {
  return family.labelOf?.(config) ?? family.label;
}

/** A batch of per-sample host values stacked for a conditioning input (helper for trainers/pipelines). */
export function stackConditioning(input: ConditioningInput, rows: readonly Float32Array[]): HostTensor {
  const per = input.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(per * rows.length);
  rows.forEach((r, i) => {
    if (r.length !== per) throw new Error(`conditioning '${input.name}': ${r.length} values per sample, expected ${per} [${input.shape.join(',')}]`);
    data.set(r, i * per);
  });
  return { dtype: 'float32', shape: [rows.length, ...input.shape], data };
}
