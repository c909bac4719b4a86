// Renders sample images (clips, for video families) for a set of prompts, optionally through an adapter:
// the function Sampler and Train's "sample every N steps" both call. Compiled pipelines are kept per (weights, size, clip skip,
// adapter layout) and the adapter's weights and strength are fed as inputs, so a new training step or
// a new strength reuses the same ORT sessions. Seeded: the same request gives the same pixels.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { defaultRuntime, type HostTensor, type WeightSource } from '../../kernels';
import { AdapterSet } from '../../kernels/adapters';
import { FamilyPipeline } from '../../kernels/families/pipeline';
import { modelLabel } from '../../kernels/families/contract';
import { composeGrid } from './grid';
import { encodeAnimatedWebp } from '../render/video';
import { gridLayout, type SampleTile } from './sheet';
import { adapterOptions, adapterSetsFor, setList } from '../models/adapters';
import type { AdapterSpec, ClipValue, ImageItem, ModelValue, SamplerPrompt, SamplerSettings, VaeValue } from '../sockets';
import { checkSampling } from '../training/memory-advice';
import { checkEndImage, isImageToVideo, requireStartImage, startClip, takesLastFrame, withoutLastFrame, type GivenImage } from './start-image';
import { checkSamplerChoice, checkSchedulerChoice } from './sampler-choice';

export { checkSamplerChoice, checkSchedulerChoice };

export interface RenderAdapter {
  spec: AdapterSpec;
  /** Adapter parameters by kohya tensor name (a TrainingValue's weights or ema). */
  weights: Readonly<Record<string, HostTensor>>;
  /** LoRA strength (multiplier); default the settings' loraStrength. */
  strength?: number;
}

export interface RenderRequest {
  model: ModelValue;
  clip: ClipValue;
  vae: VaeValue;
  settings: SamplerSettings;
  adapter?: RenderAdapter;
  /**
   * Two experts (Wan 2.2 A14B, a multistage Train's samples): `model`/`adapter` are the high-noise
   * expert's, this the low-noise one's, which runs the steps below `boundary` with its own LoRA.
   */
  lowNoise?: { model: ModelValue; adapter?: RenderAdapter; boundary: number };
  /** Render every prompt twice, without and then with the adapter (needs `adapter`). */
  compare?: boolean;
  /** Called as each image is finished (index in the returned order). */
  onImage?: (image: RenderedImage, index: number, total: number) => void;
  /** Called after each sampler step of each image; may throw to stop (interrupt). */
  onStep?: (done: number, total: number) => void;
  /** Unload the denoisers once rendered (Train's multistage previews: the experts leave memory until the next samples). */
  releaseAfter?: boolean;
  /** Called between sampler steps; throws to stop (the executor's interrupt). */
  throwIfInterrupted?: () => void;
  /** Image-to-video: the first frame of every clip (an encoded image; `what` names it in errors), instead of settings.startImage. */
  startImage?: GivenImage;
  /** First-and-last-frame models (Wan 2.1 FLF2V): the last frame of every clip, instead of settings.endImage. */
  endImage?: GivenImage;
}

/** What one image was rendered with, after the prompt's overrides. */
export interface ResolvedPrompt { prompt: string; negativePrompt: string; seed: number; width: number; height: number; steps: number; cfg: number; frames?: number }

export interface RenderedImage extends ImageItem {
  width: number;
  height: number;
  label: string;
  prompt: ResolvedPrompt;
  /** The adapter strength used (0 = the base model). */
  strength: number;
  /** RGB bytes, HWC (a clip's first frame). */
  rgb: Uint8Array;
}

/**
 * A prompt's settings after its inline overrides; walk seed gives prompt i the seed + i. A width or
 * height of 0 means the model's own size (`sampleSize`).
 */
export function resolvePrompt(p: SamplerPrompt, i: number, s: SamplerSettings, sampleSize: number, sampleFrames = 1): ResolvedPrompt {
  return {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt ?? s.negativePrompt,
    seed: p.seed ?? (s.walkSeed ? s.seed + i : s.seed),
    width: p.width ?? (s.width || sampleSize),
    height: p.height ?? (s.height || sampleSize),
    steps: p.steps ?? s.steps,
    cfg: p.cfg ?? s.cfg,
    // Video models: numFrames, 0 = the model's own clip length; image models make one frame whatever it says.
    frames: sampleFrames > 1 ? (s.numFrames || sampleFrames) : 1,
  };
}

// ---- pipelines, cached per weights ---------------------------------------------------------------------

type PipelineMap = Map<string, Promise<FamilyPipeline>>;
const cache = new WeakMap<object, WeakMap<object, WeakMap<object, PipelineMap>>>();

function pipelinesFor(unet: WeightSource, te: object, vae: WeightSource): PipelineMap {
  let a = cache.get(unet);
  if (!a) cache.set(unet, (a = new WeakMap()));
  let b = a.get(te);
  if (!b) a.set(te, (b = new WeakMap()));
  let c = b.get(vae);
  if (!c) b.set(vae, (c = new Map()));
  return c;
}

function pipelineFor(req: RenderRequest, width: number, height: number, frames: number): Promise<FamilyPipeline> {
  const { model, clip, vae } = req;
  if (clip.family !== model.family || vae.family !== model.family) throw new Error(`clip / vae: a ${clip.family.label} text encoder and ${vae.family.label} VAE cannot drive a ${modelLabel(model.family, model.config)} model`);
  const spec = req.adapter?.spec;
  const low = req.lowNoise;
  const key = `${width}x${height}x${frames}|skip${clip.clipSkip}|${spec ? JSON.stringify(adapterOptions(spec)) : 'base'}${low ? `|low:${low.model.source.id}@${low.boundary}:${low.model.offload ?? 'none'}` : ''}|offload:${model.offload ?? 'none'}${takesLastFrame(model) ? '|last-frame' : ''}`;
  // Pipelines live as long as the weights they read (one text encoder's weights, or the list of several).
  const map = pipelinesFor(model.denoiser, clip.encoders.length === 1 ? clip.encoders[0].weights : clip.encoders, vae.weights);
  let p = map.get(key);
  if (!p) {
    const sets = spec ? adapterSetsFor(spec, model) : undefined;
    p = FamilyPipeline.create(defaultRuntime(), {
      family: model.family, config: model.config, denoiser: model.denoiser, textEncoders: clip.encoders, vae: vae.weights, offload: model.offload,
      ...(low ? { lowNoise: { denoiser: low.model.denoiser, config: low.model.config, boundary: low.boundary, offload: low.model.offload } } : {}),
    }, {
      width, height, frames, clipSkip: clip.clipSkip,
      preflight: (estimate) => checkSampling(estimate, { width, height, frames, model }),
      adapters: sets ? {
        denoiser: sets.denoiser.hook({ training: false }), text: sets.text.map((s) => s.hook({ training: false })),
        ...(low ? { lowNoiseDenoiser: adapterSetsFor(spec!, low.model).denoiser.hook({ training: false }) } : {}),
      } : undefined,
    });
    p.catch(() => map.delete(key));
    map.set(key, p);
  }
  return p;
}

/** The adapter parameter feeds, checked against the sets the spec makes. */
function adapterFeeds(adapter: RenderAdapter, model: ModelValue): Record<string, HostTensor> {
  const sets = adapterSetsFor(adapter.spec, model);
  const feeds: Record<string, HostTensor> = {};
  for (const set of setList(sets)) {
    for (const p of set.paramSpecs) {
      const v = adapter.weights[p.key];
      if (!v) throw new Error(`adapter weights lack '${p.key}' (weights made for another LoRA Target?)`);
      if (v.shape.join() !== p.shape.join()) throw new Error(`adapter weight '${p.key}' has shape [${v.shape}], the LoRA Target makes [${p.shape}]`);
      feeds[p.key] = v;
    }
  }
  return feeds;
}

async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer());
}

/**
 * Renders every prompt of `settings` (twice with `compare`: base model, then with the adapter), in order.
 * Same request, same images: noise comes from each prompt's seed only.
 */
export async function renderSamples(given: RenderRequest): Promise<RenderedImage[]> {
  const end = await endImageOf(given);
  // A first-and-last-frame model without an end image samples from the start image alone.
  const req = end ? given : { ...given, model: withoutLastFrame(given.model) };
  const { settings } = req;
  if (req.compare && !req.adapter) throw new Error('compare: connect a TRAINING or LORA_FILE input to compare with and without the adapter');
  if (settings.prompts.length === 0) throw new Error('prompts: write at least one prompt');
  checkSamplerChoice(req.model, settings.sampler);
  checkSchedulerChoice(req.model, settings.sampler, settings.scheduler);
  const strength = req.adapter?.strength ?? settings.loraStrength;
  const feeds = req.adapter ? adapterFeeds(req.adapter, req.model) : {};
  if (req.lowNoise && !!req.lowNoise.adapter !== !!req.adapter) throw new Error('lowNoise: give both experts an adapter, or neither');
  const lowFeeds = req.lowNoise?.adapter ? adapterFeeds(req.lowNoise.adapter, req.lowNoise.model) : undefined;
  const start = await startImageOf(req);
  const startClips = new Map<string, Promise<Float32Array>>();
  const plan = settings.prompts.flatMap((p, i) => {
    const r = resolvePrompt(p, i, settings, req.model.family.sampleSize(req.model.config), req.model.family.sampleFrames?.(req.model.config) ?? 1);
    if (!req.adapter) return [{ r, strength: 0 }];
    return req.compare ? [{ r, strength: 0 }, { r, strength }] : [{ r, strength }];
  });
  const stepsTotal = plan.reduce((n, x) => n + x.r.steps, 0);
  let stepsDone = 0;
  const out: RenderedImage[] = [];
  for (const { r, strength: s } of plan) {
    req.throwIfInterrupted?.();
    const pipe = await pipelineFor(req, r.width, r.height, r.frames ?? 1);
    const before = stepsDone;
    const gen = await pipe.generate({
      prompt: r.prompt, negativePrompt: r.negativePrompt, seed: r.seed, steps: r.steps, cfgScale: r.cfg, sampler: settings.sampler, scheduler: settings.scheduler,
      ...(settings.cfgHighNoise ? { cfgScaleHighNoise: settings.cfgHighNoise } : {}),
      feeds: req.adapter ? { ...feeds, ...AdapterSet.multiplierFeed(s) } : undefined,
      ...(lowFeeds ? { lowNoiseFeeds: lowFeeds } : {}),
      ...(start ? { startClip: await startClipFor(startClips, start, end, r.width, r.height, r.frames ?? 1) } : {}),
      onStep: (step) => { req.throwIfInterrupted?.(); stepsDone = before + step; req.onStep?.(stepsDone, stepsTotal); },
    });
    const rgb = gen.images[0];
    const label = `${r.prompt}${req.adapter ? (s === 0 ? ' [without LoRA]' : ` [LoRA ${s}]`) : ''} · seed ${r.seed}`;
    const video = gen.frames ? { frames: gen.frames[0]!, fps: settings.fps ?? DEFAULT_FPS } : undefined;
    const image: RenderedImage = { mime: 'image/png', data: await encodePng(rgb, r.width, r.height), width: r.width, height: r.height, label, prompt: r, strength: s, rgb, ...(video ? { video } : {}) };
    out.push(image);
    req.onImage?.(image, out.length - 1, plan.length);
  }
  if (req.releaseAfter) for (const r of new Set(plan.map(({ r }) => `${r.width}x${r.height}x${r.frames}`))) {
    const [w, h, f] = r.split('x').map(Number);
    await (await pipelineFor(req, w, h, f)).releaseDenoisers();
  }
  return out;
}

/** The start image of an image-to-video render (the request's, else the settings' file); refused for other models, required for I2V ones. */
async function startImageOf(req: RenderRequest): Promise<GivenImage | undefined> {
  const file = req.settings.startImage;
  const start = req.startImage ?? (file ? { data: await readFile(file).catch((e: Error) => { throw new Error(`startImage: cannot read ${file} (${e.message})`); }), what: `startImage ${file}` } : undefined);
  if (start && !isImageToVideo(req.model)) throw new Error(`startImage: ${req.model.source.label} is not an image-to-video model; clear startImage`);
  if (!start && isImageToVideo(req.model)) requireStartImage(req.model);
  return start;
}

/** The end image of a first-and-last-frame render (the request's, else the settings' file); required by exactly those models. */
async function endImageOf(req: RenderRequest): Promise<GivenImage | undefined> {
  const file = req.settings.endImage;
  const end = req.endImage ?? (file ? { data: await readFile(file).catch((e: Error) => { throw new Error(`endImage: cannot read ${file} (${e.message})`); }), what: `endImage ${file}` } : undefined);
  checkEndImage(req.model, !!end);
  return end;
}

function startClipFor(cache: Map<string, Promise<Float32Array>>, start: GivenImage, end: GivenImage | undefined, width: number, height: number, frames: number): Promise<Float32Array> {
  const key = `${width}x${height}x${frames}`;
  if (!cache.has(key)) cache.set(key, startClip(start, width, height, frames, end));
  return cache.get(key)!;
}

/** Frames per second of a video sample when the settings do not say (Wan 2.1 / 2.2 A14B make 16). */
export const DEFAULT_FPS = 16;

/** Columns of a sample grid: a row per prompt in compare mode (without | with the adapter), otherwise up to 4. */
function gridColumns(images: readonly RenderedImage[], columns?: number): number {
  const compare = images.length > 1 && images.some((im) => im.strength === 0) && images.some((im) => im.strength !== 0);
  return columns ?? (compare ? 2 : Math.min(4, images.length));
}

/**
 * One PNG of rendered images: a row per prompt in compare mode (without | with the adapter), otherwise up
 * to `columns` per row; `title` (e.g. "step 300") is written above.
 */
export function gridPng(images: readonly RenderedImage[], o: { columns?: number; title?: string } = {}): Promise<Uint8Array> {
  return composeGrid(images, gridColumns(images, o.columns), { title: o.title });
}

/** An animated sheet of clips: the grid of every clip's frame i is frame i (frames and rate recorded). */
export interface SheetVideo { webp: Uint8Array; frames: number; fps: number }

/**
 * The grid PNG (a clip's first frames) and, for each image, where it sits in it and what it was rendered with
 * (a node's `ui.samples`); for clips also the animated grid, whose frame i holds every clip's frame i (a
 * shorter clip holds its last frame).
 */
export async function gridSheet(images: readonly RenderedImage[], o: { columns?: number; title?: string } = {}): Promise<{ png: Uint8Array; tiles: SampleTile[]; video?: SheetVideo }> {
  const png = await gridPng(images, o);
  const video = images.some((im) => im.video) ? await videoGrid(images, o) : undefined;
  const { cells } = gridLayout(images, gridColumns(images, o.columns), { title: o.title });
  const tiles = images.map((im, i): SampleTile => ({
    ...cells[i]!,
    prompt: im.prompt.prompt, negativePrompt: im.prompt.negativePrompt, seed: im.prompt.seed, strength: im.strength,
    steps: im.prompt.steps, cfg: im.prompt.cfg, width: im.width, height: im.height,
  }));
  return { png, tiles, ...(video ? { video } : {}) };
}

async function videoGrid(images: readonly RenderedImage[], o: { columns?: number; title?: string }): Promise<SheetVideo> {
  const count = Math.max(...images.map((im) => im.video?.frames.length ?? 1));
  const fps = images.find((im) => im.video)!.video!.fps;
  const frames: Uint8Array[] = [];
  let size = { width: 0, height: 0 };
  for (let f = 0; f < count; f++) {
    const at = await Promise.all(images.map(async (im) => {
      const clip = im.video?.frames;
      return clip ? { ...im, data: await encodePng(clip[Math.min(f, clip.length - 1)]!, im.width, im.height) } : im;
    }));
    const { data, info } = await sharp(await gridPng(at, o)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    size = { width: info.width, height: info.height };
    frames.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return { webp: await encodeAnimatedWebp({ ...size, fps, frames }), frames: count, fps };
}
