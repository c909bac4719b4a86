// Text to image for SD 1.x previews in SD's own vocabulary (config, UNet, text encoder, tokenizer): the
// family preview pipeline (kernels/families/pipeline.ts) with the sd1 family — prompt → tokenizer → text
// encoder → sampler over the UNet → VAE decode → RGB bytes, adapter hooks injectable at a fed strength.
import type { HostTensor } from '../tensor';
import type { AdapterHook } from '../nn/builder';
import type { WeightSource } from '../nn/weights';
import type { Runtime } from '../runtime';
import { ddpmSchedule, type DdpmSchedule } from '../schedules/ddpm';
import { FamilyPipeline, type GeneratedImages } from '../families/pipeline';
import type { ClipTokenizer } from './tokenizer';
import type { SdConfig } from './config';
import type { SamplerName } from './samplers';
import { sd1Family } from './sd1-family';

export { toRgbBytes, type GeneratedImages } from '../families/pipeline';

export interface SdModelParts {
  config: SdConfig;
  unet: WeightSource;
  textEncoder: WeightSource;
  vae: WeightSource;
  tokenizer: ClipTokenizer;
}

export interface PipelineOptions {
  width: number;
  height: number;
  /** Images per generate() call. */
  batch?: number;
  clipSkip?: number;
  /** Adapters for the UNet / text encoder graphs (e.g. a LoRA from kernels/adapters). */
  adapters?: { unet?: AdapterHook; textEncoder?: AdapterHook };
}

export interface GenerateOptions {
  prompt: string;
  negativePrompt?: string;
  seed: number;
  steps?: number;
  cfgScale?: number;
  sampler?: SamplerName;
  /** ComfyUI's scheduler (default `auto`: normal). */
  scheduler?: string;
  /** Shorthand for scheduler 'karras'. */
  karras?: boolean;
  onStep?: (step: number, total: number) => void;
  /**
   * Values of the graph inputs the adapter hooks made (an AdapterSet's inference hook reads its parameters
   * and `lora_multiplier` as inputs), by name: one compiled session samples with any adapter weights and
   * strength. Each graph takes the ones it declares.
   */
  feeds?: Record<string, HostTensor>;
}

export class SdPipeline {
  private constructor(
    readonly parts: SdModelParts,
    readonly options: Required<Omit<PipelineOptions, 'adapters'>>,
    readonly schedule: DdpmSchedule,
    private readonly inner: FamilyPipeline,
  ) {}

  /** Builds and loads the three inference graphs (text encoder at batch 2n, UNet at 2n, VAE decoder at n). */
  static async create(rt: Runtime, parts: SdModelParts, opts: PipelineOptions): Promise<SdPipeline> {
    const cfg = parts.config;
    const inner = await FamilyPipeline.create(rt, {
      family: sd1Family, config: cfg, denoiser: parts.unet, textEncoders: [{ weights: parts.textEncoder, tokenizer: parts.tokenizer }], vae: parts.vae,
    }, {
      width: opts.width, height: opts.height, batch: opts.batch, clipSkip: opts.clipSkip,
      adapters: opts.adapters && { denoiser: opts.adapters.unet, text: [opts.adapters.textEncoder] },
    });
    const schedule = ddpmSchedule({
      betaStart: cfg.scheduler.betaStart, betaEnd: cfg.scheduler.betaEnd,
      numTrainTimesteps: cfg.scheduler.numTrainTimesteps, betaSchedule: cfg.scheduler.betaSchedule,
    });
    return new SdPipeline(parts, { width: opts.width, height: opts.height, batch: opts.batch ?? 1, clipSkip: opts.clipSkip ?? 1 }, schedule, inner);
  }

  /** Hidden states [2n, 77, D]: the n negative prompts first, then the n prompts. */
  async encodePrompts(prompt: string, negativePrompt = '', feeds: Record<string, HostTensor> = {}): Promise<HostTensor> {
    return (await this.inner.encodePrompts(prompt, negativePrompt, feeds)).context;
  }

  generate(g: GenerateOptions): Promise<GeneratedImages> {
    return this.inner.generate({ ...g, scheduler: g.karras ? 'karras' : g.scheduler ?? 'auto' });
  }
}
