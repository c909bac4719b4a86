// Text to image for previews: prompt → tokenizer → text encoder → sampler over the UNet → VAE decode →
// RGB bytes. Each model is its own ORT inference graph; an adapter hook (a LoRA being trained or
// loaded) can be injected into the UNet and text encoder graphs at a chosen strength.
import { input, type HostTensor, type Tensor } from '../tensor';
import { mul, add, clip } from '../ops/elementwise';
import { compileGraph } from '../compile';
import { topoOrder } from '../autodiff';
import { Builder, type AdapterHook } from '../nn/builder';
import type { WeightSource } from '../nn/weights';
import type { Runtime, Session } from '../runtime';
import { ddpmSchedule, type DdpmSchedule } from '../schedules/ddpm';
import type { ClipTokenizer } from './tokenizer';
import { vaeScale, type SdConfig } from './config';
import { unet } from './unet';
import { clipTextEncoder } from './clip-text';
import { vaeDecode } from './vae';
import { sample, type SamplerName } from './samplers';

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
  karras?: boolean;
  onStep?: (step: number, total: number) => void;
  /**
   * Values of the graph inputs the adapter hooks made (an AdapterSet's inference hook reads its parameters
   * and `lora_multiplier` as inputs), by name: one compiled session samples with any adapter weights and
   * strength. Each graph takes the ones it declares.
   */
  feeds?: Record<string, HostTensor>;
}

export interface GeneratedImages {
  width: number;
  height: number;
  /** One RGB (HWC, 8-bit) image per batch entry. */
  images: Uint8Array[];
  /** The sampled latents [batch, C, h, w] (UNet latent space). */
  latents: Float32Array;
}

/** Scales an adapter hook's contribution (LoRA strength / multiplier). */
export function withStrength(hook: AdapterHook, strength: number): AdapterHook {
  return (info, x) => {
    const d = hook(info, x);
    return d && strength !== 1 ? mul(d, strength) : d;
  };
}

export class SdPipeline {
  private constructor(
    readonly parts: SdModelParts,
    readonly options: Required<Omit<PipelineOptions, 'adapters'>>,
    readonly schedule: DdpmSchedule,
    private readonly text: Session,
    private readonly unetSession: Session,
    private readonly decoder: Session,
  ) {}

  /** Builds and loads the three inference graphs (text encoder at batch 2n, UNet at 2n, VAE decoder at n). */
  static async create(rt: Runtime, parts: SdModelParts, opts: PipelineOptions): Promise<SdPipeline> {
    const cfg = parts.config;
    const n = opts.batch ?? 1;
    const scale = vaeScale(cfg.vae);
    const unetDown = 2 ** (cfg.unet.blockOutChannels.length - 1);
    if (opts.width % (scale * unetDown) || opts.height % (scale * unetDown)) {
      throw new Error(`pipeline: ${opts.width}×${opts.height} must be multiples of ${scale * unetDown}`);
    }
    const h = opts.height / scale, w = opts.width / scale;
    const L = cfg.text.maxPositions;

    const ids = input('ids', [2 * n, L], 'int64');
    const te = clipTextEncoder(new Builder(parts.textEncoder, opts.adapters?.textEncoder), cfg.text, ids, { clipSkip: opts.clipSkip ?? 1 });
    const text = await rt.load(compileGraph(withHookInputs([ids], [te.hidden]), { hidden: te.hidden }, { name: 'sd_text_encoder' }));

    const x = input('sample', [2 * n, cfg.unet.inChannels, h, w]);
    const t = input('timestep', [2 * n]);
    const ctx = input('context', [2 * n, L, cfg.unet.crossAttentionDim]);
    const eps = unet(new Builder(parts.unet, opts.adapters?.unet), cfg.unet, { sample: x, timestep: t, context: ctx });
    const unetSession = await rt.load(compileGraph(withHookInputs([x, t, ctx], [eps]), { prediction: eps }, { name: 'sd_unet' }));

    const z = input('latents', [n, cfg.vae.latentChannels, h, w]);
    const img = vaeDecode(new Builder(parts.vae), cfg.vae, mul(z, 1 / cfg.vae.scalingFactor));
    const decoder = await rt.load(compileGraph([z], { image: toUnitRange(img) }, { name: 'sd_vae_decoder' }));

    const schedule = ddpmSchedule({
      betaStart: cfg.scheduler.betaStart, betaEnd: cfg.scheduler.betaEnd,
      numTrainTimesteps: cfg.scheduler.numTrainTimesteps, betaSchedule: cfg.scheduler.betaSchedule,
    });
    return new SdPipeline(parts, { width: opts.width, height: opts.height, batch: n, clipSkip: opts.clipSkip ?? 1 }, schedule, text, unetSession, decoder);
  }

  /** Hidden states [2n, 77, D]: the n negative prompts first, then the n prompts. */
  async encodePrompts(prompt: string, negativePrompt = '', feeds: Record<string, HostTensor> = {}): Promise<HostTensor> {
    const n = this.options.batch;
    const L = this.parts.config.text.maxPositions;
    const ids = new BigInt64Array(2 * n * L);
    const rows = [...Array(n).fill(negativePrompt), ...Array(n).fill(prompt)] as string[];
    rows.forEach((p, r) => {
      const tok = this.parts.tokenizer.tokenize(p, { maxLength: L });
      for (let i = 0; i < L; i++) ids[r * L + i] = BigInt(tok.ids[i]);
    });
    return (await this.text.run({ ...feeds, ids: { dtype: 'int64', shape: [2 * n, L], data: ids } })).hidden;
  }

  async generate(g: GenerateOptions): Promise<GeneratedImages> {
    const cfg = this.parts.config;
    const n = this.options.batch;
    const scale = vaeScale(cfg.vae);
    const h = this.options.height / scale, w = this.options.width / scale;
    const context = await this.encodePrompts(g.prompt, g.negativePrompt ?? '', g.feeds);
    const latentShape: [number, number, number] = [cfg.unet.inChannels, h, w];
    const latents = await sample(async (xs, timestep) => {
      const out = await this.unetSession.run({
        ...g.feeds,
        sample: { dtype: 'float32', shape: [2 * n, ...latentShape], data: xs },
        timestep: { dtype: 'float32', shape: [2 * n], data: new Float32Array(2 * n).fill(timestep) },
        context,
      });
      return out.prediction.data as Float32Array;
    }, {
      sampler: g.sampler ?? 'euler', steps: g.steps ?? 20, cfgScale: g.cfgScale ?? 7, seed: g.seed, karras: g.karras,
      latentShape, batch: n, schedule: this.schedule, prediction: cfg.scheduler.predictionType, onStep: g.onStep,
    });
    const decoded = (await this.decoder.run({ latents: { dtype: 'float32', shape: [n, ...latentShape], data: latents } })).image.data as Float32Array;
    return { width: this.options.width, height: this.options.height, images: toRgbBytes(decoded, n, this.options.height, this.options.width), latents };
  }
}

/** The listed inputs plus any other graph input the outputs read (made by adapter hooks), in a stable order. */
function withHookInputs(listed: Tensor[], outputs: Tensor[]): Tensor[] {
  const known = new Set(listed);
  const extra = topoOrder(outputs).filter((t) => t.source.kind === 'input' && !known.has(t));
  const name = (t: Tensor) => (t.source as { name: string }).name;
  return [...listed, ...extra.sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0))];
}

/** [-1, 1] → [0, 1], clamped (inside the graph). */
function toUnitRange(img: Tensor): Tensor {
  return clip(add(mul(img, 0.5), 0.5), 0, 1);
}

/** NCHW floats in [0, 1] → one HWC RGB byte image per batch entry. */
export function toRgbBytes(data: Float32Array, n: number, height: number, width: number): Uint8Array[] {
  const plane = height * width;
  return Array.from({ length: n }, (_, b) => {
    const out = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      const base = (b * 3 + c) * plane;
      for (let i = 0; i < plane; i++) out[i * 3 + c] = Math.round(data[base + i] * 255);
    }
    return out;
  });
}
