// Text to image (or clip, for video families) for previews, for any family: prompts → tokenizers → the
// family's text encoding → its sampler over the denoiser → VAE decode → RGB bytes. Each part is its own ORT inference graph;
// adapter hooks (a LoRA being trained or loaded) can be injected into the denoiser and text graphs, and
// their weights and strength are fed as inputs so one compiled pipeline serves any adapter values.
import { input, type HostTensor, type Tensor } from '../tensor';
import { add, clip, mul } from '../ops/elementwise';
import { compileGraph } from '../compile';
import { topoOrder } from '../autodiff';
import { Builder, type AdapterHook } from '../nn/builder';
import type { WeightSource } from '../nn/weights';
import { nativeHalfDtypes } from '../nn/precision';
import type { Runtime, Session } from '../runtime';
import { stackConditioning, type ModelFamily, type Tokenizer } from './contract';
import { idsInputName } from './training-graph';
import { estimateGraphMemory, type MemoryEstimate } from '../train/memory';
import { OffloadedForward } from '../train/offload-forward';
import type { OffloadMode } from '../train/offload';

/**
 * A pipeline's graphs are all loaded at once but run one at a time: their weights add up, their working
 * memory does not. A graph is its outputs, or the estimate of an offloaded one (its largest segment).
 */
function pipelineEstimate(graphs: (Tensor[] | MemoryEstimate)[]): MemoryEstimate {
  const parts = graphs.map((g) => (Array.isArray(g) ? estimateGraphMemory(g) : g));
  const weights = parts.reduce((a, e) => a + e.weights, 0);
  const inputs = Math.max(...parts.map((e) => e.inputs));
  const activations = Math.max(...parts.map((e) => e.activations));
  const live = Math.max(...parts.map((e) => e.live));
  const runtime = parts[0].runtime;
  return { weights, inputs, activations, live, runtime, total: weights + inputs + activations + runtime };
}

export interface PipelineParts {
  family: ModelFamily;
  config: unknown;
  denoiser: WeightSource;
  /** In the family's textEncoders order. */
  textEncoders: readonly { weights: WeightSource; tokenizer: Tokenizer }[];
  vae: WeightSource;
  /**
   * Two experts (Wan 2.2 A14B): `denoiser` is the high-noise one and this the low-noise one, which runs
   * the steps whose noise level is below `boundary` (a fraction of the objective's timestep range).
   */
  lowNoise?: { denoiser: WeightSource; config: unknown; boundary: number; offload?: OffloadMode };
  /**
   * Layer offloading (Load Model's offload): `blocks` runs the denoiser block by block, each block's
   * frozen weights read from the checkpoint or host memory per step (kernels/train/offload-forward.ts).
   */
  offload?: OffloadMode;
}

/** What runs the denoiser: one resident session, or an offloaded forward's segment sessions. */
type DenoiserRunner = Pick<Session, 'release'> & { run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> };

/**
 * The denoiser graph of `pred` over `inputs`: resident, or split at its blocks when `offload` is
 * `blocks` (the prediction was then built with the blocks marked). Returns its estimate and a loader.
 */
function denoiserGraph(inputs: Tensor[], pred: Tensor, offload: OffloadMode | undefined, name: string) {
  if (offload !== 'blocks') return { estimate: [pred], load: (rt: Runtime): Promise<DenoiserRunner> => rt.load(compileGraph(inputs, { prediction: pred }, { name })) };
  const off = OffloadedForward.plan(inputs, { prediction: pred });
  return { estimate: off.memoryEstimate, load: (rt: Runtime): Promise<DenoiserRunner> => off.load(rt, name) };
}

/**
 * A denoiser Builder for `rt`'s EP (GPU EPs multiply half-stored weights natively); layer offloading
 * needs the blocks marked, which gradient checkpointing does (it changes nothing else in a forward graph).
 */
function denoiserBuilder(rt: Runtime, weights: WeightSource, hook: AdapterHook | undefined, offload: OffloadMode | undefined): Builder {
  const b = new Builder(weights, hook);
  b.halfKernels = nativeHalfDtypes(rt.ep);
  b.gradientCheckpointing = offload === 'blocks';
  return b;
}

export interface PipelineOptions {
  width: number;
  height: number;
  /** Images per generate() call. */
  batch?: number;
  /** Frames of a clip (video families: 1 + temporalCompression·n); 1 (default) makes images. */
  frames?: number;
  clipSkip?: number;
  /** Adapter hooks for the denoiser and each text encoder. */
  adapters?: { denoiser?: AdapterHook; text?: (AdapterHook | undefined)[]; lowNoiseDenoiser?: AdapterHook };
  /**
   * Memory pre-flight: called with the estimated peak of the whole pipeline (every graph's weights, the
   * largest graph's working memory) before any session is made; throw to refuse.
   */
  preflight?: (estimate: MemoryEstimate) => void;
}

export interface GenerateOptions {
  prompt: string;
  negativePrompt?: string;
  seed: number;
  steps?: number;
  cfgScale?: number;
  sampler?: string;
  /** ComfyUI's scheduler, or `auto` (the default): the family's own schedule. */
  scheduler?: string;
  /** Wan 2.2 A14B: the high-noise expert's CFG scale (absent: cfgScale throughout). */
  cfgScaleHighNoise?: number;
  onStep?: (step: number, total: number) => void;
  /** Values of the graph inputs the adapter hooks made (parameters, `lora_multiplier`), by name. */
  feeds?: Record<string, HostTensor>;
  /** Two experts: the low-noise expert's adapter inputs (its own LoRA), used on its steps instead of `feeds`' parameters. */
  lowNoiseFeeds?: Record<string, HostTensor>;
  /**
   * Image-to-video: the clip the first-frame condition is encoded from, [3, frames, H, W] in [−1, 1] (the
   * start image, then frames the family blanks); absent, the condition is zero (no frame given).
   */
  startClip?: Float32Array;
}

export interface GeneratedImages {
  width: number;
  height: number;
  /** One RGB (HWC, 8-bit) image per batch entry (a clip's first frame). */
  images: Uint8Array[];
  /** Clips: per batch entry, every frame's RGB bytes (absent for images). */
  frames?: Uint8Array[][];
  /** The sampled latents [batch, C, (F,) h, w] (denoiser latent space). */
  latents: Float32Array;
}

/** Token ids of `rows` for one encoder as an int64 [rows, L] host tensor. */
export function tokenIdTensor(tokenizer: Tokenizer, rows: readonly string[], length: number): HostTensor {
  const ids = new BigInt64Array(rows.length * length);
  rows.forEach((p, r) => {
    const tok = tokenizer.tokenize(p, { maxLength: length });
    for (let i = 0; i < length; i++) ids[r * length + i] = BigInt(tok.ids[i]);
  });
  return { dtype: 'int64', shape: [rows.length, length], data: ids };
}

export class FamilyPipeline {
  private constructor(
    readonly parts: PipelineParts,
    readonly options: { width: number; height: number; batch: number; clipSkip: number; frames: number },
    private readonly text: Session,
    private readonly denoiserSession: DenoiserRunner,
    private readonly decoder: Session,
    private readonly latentShape: number[],
    /** Per-sample conditioning of a preview: size/crop for SDXL, the embedded guidance scale for FLUX.1 dev. */
    private readonly sampleCond: (preview: { guidance?: number }) => Record<string, HostTensor>,
    /** Two experts: the low-noise denoiser and the timestep (objective units) below which it runs. */
    private readonly lowNoise?: { session: DenoiserRunner; below: number },
    private readonly rt?: Runtime,
  ) {}

  /** The VAE-side graph of an image-to-video condition (start clip → the `latent` inputs), compiled on first use. */
  private startImageSession?: Promise<Session>;

  /** The `source: 'latent'` inputs [2n, …] of a start clip [3, F, H, W]: both CFG halves see the same first frame. */
  private async startImageCond(clip: Float32Array): Promise<Record<string, HostTensor>> {
    const { family, config: cfg, vae } = this.parts;
    const { width, height, frames, batch: n } = this.options;
    if (!family.latentConditioning || !this.rt) throw new Error(`startImage: ${family.label} takes no start image`);
    if (clip.length !== 3 * frames * height * width) throw new Error(`startImage: ${clip.length} values are not a [3, ${frames}, ${height}, ${width}] clip`);
    this.startImageSession ??= (async () => {
      const pixels = input('start_clip', [1, 3, ...(frames === 1 ? [] : [frames]), height, width]);
      const cond = family.latentConditioning!(new Builder(vae), cfg, pixels);
      return this.rt!.load(compileGraph([pixels], cond, { name: `${family.id}_start_image` }));
    })();
    const out = await (await this.startImageSession).run({ start_clip: { dtype: 'float32', shape: [1, 3, ...(frames === 1 ? [] : [frames]), height, width], data: clip } });
    return Object.fromEntries(Object.entries(out).map(([name, t]) => {
      const one = t.data as Float32Array;
      const data = new Float32Array(one.length * 2 * n);
      for (let i = 0; i < 2 * n; i++) data.set(one, i * one.length);
      return [name, { dtype: 'float32', shape: [2 * n, ...t.shape.slice(1)], data } satisfies HostTensor];
    }));
  }

  /** Builds and loads the three inference graphs (text at batch 2n, denoiser at 2n, VAE decoder at n). */
  static async create(rt: Runtime, parts: PipelineParts, opts: PipelineOptions): Promise<FamilyPipeline> {
    const { family, config: cfg } = parts;
    const n = opts.batch ?? 1;
    const latent = family.latentFormat(cfg);
    const scale = latent.spatialCompression;
    const multiple = scale * family.latentMultiple(cfg);
    if (opts.width % multiple || opts.height % multiple) throw new Error(`pipeline: ${opts.width}×${opts.height} must be multiples of ${multiple}`);
    const h = opts.height / scale, w = opts.width / scale;
    const frames = opts.frames ?? 1;
    const tc = latent.temporalCompression;
    if (frames !== 1) {
      if (tc <= 1 || !(Number.isInteger(frames) && frames > 1)) throw new Error(`frames: ${family.label} makes images, not ${frames}-frame clips`);
      const below = frames - ((frames - 1) % tc);
      if ((frames - 1) % tc) throw new Error(`frames: ${family.label} clips have 1 + ${tc}·n frames (${below} or ${below + tc}), not ${frames}`);
    }
    // A clip's latent keeps its first frame alone and packs the rest `tc` to a latent frame.
    const spatial = frames === 1 ? [h, w] : [1 + (frames - 1) / tc, h, w];
    const clipSkip = opts.clipSkip ?? 1;
    const encoders = family.textEncoders(cfg);
    if (parts.textEncoders.length !== encoders.length) throw new Error(`${family.label}: ${encoders.length} text encoder(s) expected, got ${parts.textEncoders.length}`);

    const ids = encoders.map((e, i) => input(idsInputName(i), [2 * n, e.maxLength], 'int64'));
    const cond = family.encodeText(encoders.map((_, i) => new Builder(parts.textEncoders[i].weights, opts.adapters?.text?.[i])), cfg, ids, { clipSkip });

    const x = input('sample', [2 * n, latent.channels, ...spatial]);
    const t = input('timestep', [2 * n]);
    // Sized by the latent being sampled (a video family's I2V condition spans the clip's latent frames).
    const condSpecs = family.conditioning(cfg, [latent.channels, ...spatial]);
    const condInputs = condSpecs.map((c) => input(c.name, [2 * n, ...c.shape]));
    const condByName = Object.fromEntries(condSpecs.map((c, i) => [c.name, condInputs[i]]));
    const pred = family.denoise(denoiserBuilder(rt, parts.denoiser, opts.adapters?.denoiser, parts.offload), cfg, { sample: x, timestep: t, cond: condByName });
    const low = parts.lowNoise;
    const lowPred = low && family.denoise(denoiserBuilder(rt, low.denoiser, opts.adapters?.lowNoiseDenoiser, low.offload), low.config, { sample: x, timestep: t, cond: condByName });
    const z = input('latents', [n, latent.channels, ...spatial]);
    const image = toUnitRange(family.vaeDecode(new Builder(parts.vae), cfg, z));
    const denoiser = denoiserGraph(withHookInputs([x, t, ...condInputs], [pred]), pred, parts.offload, `${family.id}_denoiser`);
    const lowDenoiser = low && lowPred && denoiserGraph(withHookInputs([x, t, ...condInputs], [lowPred]), lowPred, low.offload, `${family.id}_denoiser_low_noise`);
    if (opts.preflight) opts.preflight(pipelineEstimate([Object.values(cond), denoiser.estimate, ...(lowDenoiser ? [lowDenoiser.estimate] : []), [image]]));

    const text = await rt.load(compileGraph(withHookInputs(ids, Object.values(cond)), cond, { name: `${family.id}_text_encoder` }));
    const denoiserSession = await denoiser.load(rt);
    let lowNoise: { session: DenoiserRunner; below: number } | undefined;
    if (low && lowDenoiser) {
      const objective = family.objective(cfg);
      const range = objective.kind === 'flow' ? objective.timestepScale : objective.schedule.numTrainTimesteps;
      lowNoise = { session: await lowDenoiser.load(rt), below: low.boundary * range };
    }
    const decoder = await rt.load(compileGraph([z], { image }, { name: `${family.id}_vae_decoder` }));

    // Size conditioning of a preview: the image is its own original, uncropped (as kohya's sampler).
    const size = { width: opts.width, height: opts.height };
    const sampleCond = (preview: { guidance?: number }) => {
      const values = family.sampleConditioning(cfg, { originalSize: size, cropTopLeft: { top: 0, left: 0 }, targetSize: size }, preview);
      const fromSample = family.conditioning(cfg).filter((c) => c.source === 'sample')
        .map((c) => [c.name, stackConditioning(c, Array.from({ length: 2 * n }, () => values[c.name]))]);
      // Without a start image an image-to-video model's first-frame condition (mask and image latent) is
      // zero — no frame given, text to video (the tiny Wan is trained for that case too); generate's
      // startClip replaces it.
      const noStartImage = condSpecs.filter((c) => c.source === 'latent')
        .map((c) => [c.name, { dtype: 'float32', shape: [2 * n, ...c.shape], data: new Float32Array(2 * n * c.shape.reduce((a, b) => a * b, 1)) } satisfies HostTensor]);
      return Object.fromEntries([...fromSample, ...noStartImage]);
    };
    return new FamilyPipeline(parts, { width: opts.width, height: opts.height, batch: n, clipSkip, frames }, text, denoiserSession, decoder, [latent.channels, ...spatial], sampleCond, lowNoise, rt);
  }

  /**
   * Unloads the denoiser sessions (the large weights) until the next generate: a multistage Train's
   * previews need both experts only while sampling.
   */
  async releaseDenoisers() {
    await this.denoiserSession.release();
    await this.lowNoise?.session.release();
  }

  /** Text conditioning [2n, …] by name: the n negative prompts first, then the n prompts. */
  async encodePrompts(prompt: string, negativePrompt = '', feeds: Record<string, HostTensor> = {}): Promise<Record<string, HostTensor>> {
    const n = this.options.batch;
    const rows = [...Array(n).fill(negativePrompt), ...Array(n).fill(prompt)] as string[];
    const encoders = this.parts.family.textEncoders(this.parts.config);
    const ids = Object.fromEntries(encoders.map((e, i) => [idsInputName(i), tokenIdTensor(this.parts.textEncoders[i].tokenizer, rows, e.maxLength)]));
    return this.text.run({ ...feeds, ...ids });
  }

  async generate(g: GenerateOptions): Promise<GeneratedImages> {
    const { family, config } = this.parts;
    const n = this.options.batch;
    const cond = await this.encodePrompts(g.prompt, g.negativePrompt ?? '', g.feeds);
    const per = this.latentShape.reduce((a, b) => a * b, 1);
    const cfgScale = g.cfgScale ?? 7;
    // Guidance-distilled models (FLUX.1 dev) take the scale as an input instead of mixing two predictions.
    const sampleCond = { ...this.sampleCond({ guidance: cfgScale }), ...(g.startClip ? await this.startImageCond(g.startClip) : {}) };
    const latents = await family.sample(async (xs, timestep) => {
      // Two experts: each step runs the expert owning its noise level, with that expert's LoRA.
      const low = this.lowNoise && timestep < this.lowNoise.below;
      const out = await (low ? this.lowNoise!.session : this.denoiserSession).run({
        ...g.feeds,
        ...(low ? g.lowNoiseFeeds : {}),
        ...cond,
        ...sampleCond,
        sample: { dtype: 'float32', shape: [2 * n, ...this.latentShape], data: xs },
        timestep: { dtype: 'float32', shape: [2 * n], data: new Float32Array(2 * n).fill(timestep) },
      });
      return out.prediction.data as Float32Array;
    }, config, {
      sampler: g.sampler ?? 'euler', steps: g.steps ?? 20, cfgScale, seed: g.seed, scheduler: g.scheduler ?? 'auto',
      ...(g.cfgScaleHighNoise ? { cfgScaleHighNoise: g.cfgScaleHighNoise } : {}),
      latentShape: this.latentShape, batch: n, conditioning: sampleCond, onStep: g.onStep,
    });
    if (latents.length !== per * n) throw new Error(`${family.label}: the sampler returned ${latents.length} values, expected ${per * n}`);
    const decoded = (await this.decoder.run({ latents: { dtype: 'float32', shape: [n, ...this.latentShape], data: latents } })).image.data as Float32Array;
    const { width, height, frames } = this.options;
    if (frames === 1) return { width, height, images: toRgbBytes(decoded, n, height, width), latents };
    const clips = toRgbFrames(decoded, n, frames, height, width);
    return { width, height, images: clips.map((c) => c[0]!), frames: clips, latents };
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

/** NCFHW floats in [0, 1] → per batch entry, one HWC RGB byte image per frame. */
export function toRgbFrames(data: Float32Array, n: number, frames: number, height: number, width: number): Uint8Array[][] {
  const plane = height * width;
  return Array.from({ length: n }, (_, b) => Array.from({ length: frames }, (_, f) => {
    const out = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      const base = ((b * 3 + c) * frames + f) * plane;
      for (let i = 0; i < plane; i++) out[i * 3 + c] = Math.round(data[base + i]! * 255);
    }
    return out;
  }));
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
