// The values that travel on the training sockets (MODEL, CLIP, VAE, ADAPTER, TRAINING, IMAGES,
// LORA_FILE, SAMPLER_SETTINGS, LOSS_HISTORY). Every value is immutable: a node returns new values and
// never changes the ones it was given. Each has `byteSize()` for the executor's memory budget.
import type { HostTensor } from '../kernels/tensor';
import type { WeightSource } from '../kernels/nn/weights';
import type { FamilyId, ModelFamily, Tokenizer } from '../kernels/families/contract';
import type { RngState } from '../kernels/random';
import type { LatentEncoder, TextEmbeddingEncoder } from './data/cache';

/** What a model was loaded from, for metadata and messages. */
export interface ModelSource {
  /** `builtin:tiny` or the absolute path of the checkpoint file / diffusers folder. */
  path: string;
  /** A short name shown on nodes and written into LoRA metadata (`ss_sd_model_name`). */
  label: string;
  /** The model family's id ('sd1', 'sdxl', …): kernels/families/registry.ts finds the family by it. */
  family: FamilyId;
  /** sha256 of the file header or folder listing: identifies the base model in cache keys. */
  id: string;
  /** The model's sizes (the family's config), for code that holds only a TrainingValue (Save LoRA lays out modules with it). */
  config?: unknown;
}

export type QuantScheme = 'none' | 'int8' | 'nf4' | 'int4' | 'fp8_e4m3';

/** The family a MODEL/CLIP/VAE belongs to and its config: every model call goes through `family`. */
export interface FamilyModel {
  readonly family: ModelFamily;
  /** The family's config (opaque to nodes). */
  readonly config: unknown;
}

/** MODEL: the denoiser (UNet or transformer) with its frozen weights, possibly quantised. */
export interface ModelValue extends FamilyModel {
  readonly kind: 'model';
  readonly source: ModelSource;
  readonly denoiser: WeightSource;
  readonly quantization: QuantScheme;
  /**
   * Layer offloading (Load Model's `offload`): 'blocks' trains and samples block by block, each block's
   * frozen weights streamed from the checkpoint file or host memory per step (kernels/train/offload.ts,
   * kernels/train/offload-forward.ts).
   */
  readonly offload?: 'none' | 'blocks';
  byteSize(): number;
}

/** One text encoder of a CLIP value: its part id, weights and tokenizer. */
export interface TextEncoderValue { readonly part: string; readonly weights: WeightSource; readonly tokenizer: Tokenizer }

/** CLIP: the family's text encoders (one for SD 1.x, two for SDXL) with their tokenizers. */
export interface ClipValue extends FamilyModel {
  readonly kind: 'clip';
  readonly source: ModelSource;
  readonly encoders: readonly TextEncoderValue[];
  /** 1 = last layer; 2 = penultimate (A1111's "clip skip"). */
  readonly clipSkip: number;
  readonly quantization: QuantScheme;
  /** Encodes captions to the family's text conditioning for the Train node's text-embedding cache. */
  readonly textEmbeddingEncoder: TextEmbeddingEncoder;
  byteSize(): number;
}

/** VAE: the autoencoder; `latentEncoder` is what the latent cache calls. */
export interface VaeValue extends FamilyModel {
  readonly kind: 'vae';
  readonly source: ModelSource;
  readonly weights: WeightSource;
  readonly latentEncoder: LatentEncoder;
  byteSize(): number;
}

export type AdapterAlgo = 'LoRA' | 'LoCon' | 'LoKr';
export type TargetPresetName = 'attention' | 'attention_ff' | 'all_linear' | 'all_linear_conv';

/** ADAPTER: what to train (LoRA Target), not weights. */
export interface AdapterSpec {
  readonly kind: 'adapter';
  readonly algo: AdapterAlgo;
  readonly rank: number;
  readonly alpha: number;
  readonly convRank: number;
  readonly convAlpha: number;
  readonly dropout: number;
  readonly factor: number;
  readonly fullMatrix: boolean;
  readonly preset: TargetPresetName;
  /** Extra module-path patterns (globs or /regex/), one per line. */
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly trainTextEncoder: boolean;
  byteSize(): number;
}

/** One point of the loss curve. */
export interface LossPoint { step: number; loss: number }

/**
 * TRAINING: the state after some steps — adapter weights, optimizer state, RNG, EMA, loss history.
 * A Train node given one continues from it and returns a new one.
 */
export interface TrainingValue {
  readonly kind: 'training';
  /** The cache key of the Train node that made this state (checkpoint folder identity). */
  readonly id: string;
  readonly step: number;
  readonly adapter: AdapterSpec;
  readonly base: ModelSource;
  /** Adapter parameters by kohya tensor name (float32). */
  readonly weights: Readonly<Record<string, HostTensor>>;
  /** EMA of the weights, when EMA is on. */
  readonly ema?: Readonly<Record<string, HostTensor>>;
  /** Optimizer state by `tensor:state` name, and which optimizer made it. */
  readonly optimizerState: Readonly<Record<string, HostTensor>>;
  readonly optimizerName: string;
  /** Updates already applied to `optimizerState` (Adam's bias corrections continue from here). */
  readonly optimizerSteps: number;
  readonly rng: Readonly<Record<string, RngState>>;
  readonly lossHistory: readonly LossPoint[];
  /** Settings and dataset facts for LoRA metadata (ss_* keys). */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * Multistage (Wan 2.2 A14B): each expert's LoRA and optimizer state by expert name ('high_noise',
   * 'low_noise'); the top-level weights are then the first trained expert's.
   */
  readonly experts?: Readonly<Record<string, ExpertState>>;
  /** Multistage: the noise level in (0, 1) where the experts hand over. */
  readonly expertBoundary?: number;
  byteSize(): number;
}

/** One expert's part of a multistage TRAINING state. */
export interface ExpertState {
  readonly weights: Readonly<Record<string, HostTensor>>;
  readonly optimizerState: Readonly<Record<string, HostTensor>>;
  readonly ema?: Readonly<Record<string, HostTensor>>;
  readonly optimizerSteps: number;
}

/** IMAGES: encoded images with optional labels (prompt, step). */
export interface ImageItem {
  mime: 'image/png' | 'image/jpeg';
  /** The image (a clip's first frame). */
  data: Uint8Array;
  width?: number;
  height?: number;
  label?: string;
  /** A video sample: every frame's RGB bytes (HWC, width × height) and the rate it plays at. */
  video?: { readonly frames: readonly Uint8Array[]; readonly fps: number };
}
export interface ImagesValue { readonly images: readonly ImageItem[]; byteSize(): number }

export interface LoraFileValue {
  readonly kind: 'lora_file';
  /** The file (of a two-expert save: the first expert's). */
  readonly path: string;
  readonly format: 'kohya' | 'diffusers' | 'ai-toolkit';
  /** A two-expert (Wan 2.2 A14B) save: each expert's file by expert name, and where the experts hand over. */
  readonly experts?: Readonly<Record<string, string>>;
  readonly expertBoundary?: number;
  byteSize(): number;
}

/** SAMPLER_SETTINGS: what a preview renders; a Train node's sample-every uses the same settings. */
/** One prompt with kohya's inline overrides (`--n` negative, `--d` seed, `--w`/`--h` size, `--s` steps, `--l` CFG). */
export interface SamplerPrompt { prompt: string; seed?: number; width?: number; height?: number; negativePrompt?: string; steps?: number; cfg?: number }
export interface SamplerSettings {
  readonly kind: 'sampler_settings';
  readonly prompts: readonly SamplerPrompt[];
  readonly negativePrompt: string;
  readonly seed: number;
  /** Each prompt gets seed + its index instead of the same seed. */
  readonly walkSeed: boolean;
  readonly steps: number;
  readonly cfg: number;
  readonly sampler: 'euler' | 'euler_ancestral' | 'ddim' | 'dpmpp_2m' | 'unipc';
  /** Step noise levels: ComfyUI's scheduler over the model's noise range, or `auto`, the model's own schedule. */
  readonly scheduler: string;
  readonly width: number;
  readonly height: number;
  readonly loraStrength: number;
  /** Video models: frames of a clip (0 or absent = the model's own) and the rate previews play at. */
  readonly numFrames?: number;
  readonly fps?: number;
  /** Wan 2.2 A14B: CFG of the high-noise expert's steps (0 or absent = `cfg`). */
  readonly cfgHighNoise?: number;
  /** Image-to-video: the image file (absolute path) every clip starts from. */
  readonly startImage?: string;
  /** First-and-last-frame models (Wan 2.1 FLF2V): the image file (absolute path) every clip ends on. */
  readonly endImage?: string;
  byteSize(): number;
}

export interface LossHistoryValue { readonly points: readonly LossPoint[]; byteSize(): number }

/** Bytes of a set of host tensors (for byteSize). */
export function tensorBytes(ts: Readonly<Record<string, HostTensor>> | undefined): number {
  let n = 0;
  for (const t of Object.values(ts ?? {})) n += t.data.byteLength;
  return n;
}
