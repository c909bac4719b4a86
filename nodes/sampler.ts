// The Sampler and Sampler Settings nodes: prompts (kohya's sample-prompt syntax), seed, steps, CFG,
// sampler type, size and LoRA strength. Sampler Settings only packages them (Train's sample-every reads
// the same value); Sampler renders them on MODEL/CLIP/VAE, optionally through the adapter being trained
// (TRAINING) or a LoRA file, and shows the images inline as a grid — side by side with "compare".
// Wan 2.2 A14B: lowNoiseModel runs the low-noise expert's steps with its own LoRA; image-to-video models
// start every clip from startImage (or the firstFrame input); first-and-last-frame models (Wan 2.1 FLF2V)
// also end it on endImage (or the lastFrame input), as ComfyUI's WanFirstLastFrameToVideo start/end_image.
import { stat } from 'node:fs/promises';
import { z } from 'zod';
import { previewSamplers, previewSchedulers } from '../kernels/families/registry';
import { defineNode, input, widget } from './define';
import { readLoraFileFor } from './models/lora-file';
import { publishImage } from './render/publish';
import { gridSheet, renderSamples, type RenderAdapter, type RenderRequest } from './sampling/render';
import type { SampleSheet } from './sampling/sheet';
import { parsePrompts } from './sampling/prompts';
import type { HostTensor } from '../kernels';
import type { AdapterSpec, ClipValue, ImagesValue, LoraFileValue, ModelValue, SamplerSettings, TrainingValue, VaeValue } from './sockets';

/** startImage's "no first frame" (and endImage's "no last frame"). */
const NO_START_IMAGE = 'none';

const settingsWidgets = {
  prompts: widget.text({ default: 'a red circle on a blue background', multiline: true, tooltip: 'one prompt per line; inline overrides as kohya: --n negative --d seed --w width --h height --s steps --l cfg' }),
  negativePrompt: widget.text({ default: '', multiline: true, tooltip: 'used for every prompt without its own --n' }),
  seed: widget.seed({ default: 42, tooltip: 'noise seed (a prompt\'s --d overrides it)' }),
  walkSeed: widget.toggle({ default: false, tooltip: 'prompt i uses seed + i instead of the same seed' }),
  steps: widget.int({ default: 20, min: 1, max: 150, tooltip: 'sampling steps' }),
  cfg: widget.float({ default: 7, min: 1, max: 30, step: 0.5, tooltip: 'classifier-free guidance scale (SD: 5–8; FLUX.2 [klein] base: 4 over ~50 steps, against the empty prompt; distilled klein and FLUX.1 schnell: 1 over 4 steps, no CFG; FLUX.1 dev: the embedded guidance, ~3.5, one prediction per step; FLUX.2 [dev]: the embedded guidance, 4 as BFL samples it over ~50 steps)' }),
  sampler: widget.combo(previewSamplers() as unknown as readonly ['euler', 'euler_ancestral', 'ddim', 'dpmpp_2m', 'unipc'], { default: 'euler_ancestral', tooltip: 'euler, euler_ancestral (Euler a), ddim, dpmpp_2m (DPM++ 2M); flow-matching models (FLUX.2, FLUX.1, Wan): euler or unipc (UniPC, Wan\'s default)' }),
  scheduler: widget.combo(previewSchedulers() as unknown as readonly ['auto', ...string[]], { default: 'auto', tooltip: 'noise levels of the steps, as ComfyUI\'s scheduler over the model\'s own noise range: auto = the model\'s own schedule (SD: normal; FLUX.2: BFL\'s shift for the size and step count; FLUX.1 dev: the resolution shift; Wan: its fixed shift); simple and sgm_uniform (even in time), normal, karras (Karras et al., ρ = 7: more small steps at the end), exponential, ddim_uniform, beta (Beta(0.6, 0.6) quantiles), linear_quadratic (Mochi\'s), kl_optimal. SD\'s DDIM steps on its even timesteps: auto or normal only' }),
  width: widget.int({ default: 0, min: 0, max: 2048, step: 8, tooltip: 'image width; 0 = the model\'s own size (64 for the built-in tiny model, 512 for SD 1.5)' }),
  height: widget.int({ default: 0, min: 0, max: 2048, step: 8, tooltip: 'image height; 0 = the model\'s own size' }),
  loraStrength: widget.float({ default: 1, min: -4, max: 4, step: 0.05, tooltip: 'multiplier of the adapter (LoRA weight)' }),
  numFrames: widget.int({ default: 0, min: 0, max: 1025, tooltip: 'video models: frames of each sample clip (Wan: 4n+1, e.g. 33, 81); 0 = the model\'s own (81 for Wan, 9 for the tiny video model); image models ignore it' , families: ['wan'] }),
  fps: widget.int({ default: 16, min: 1, max: 120, tooltip: 'video models: frames per second the sample clips play at (Wan 2.1 / 2.2 A14B: 16, TI2V-5B: 24)' , families: ['wan'] }),
  cfgHighNoise: widget.float({ default: 0, min: 0, max: 30, step: 0.5, tooltip: 'Wan 2.2 A14B: CFG of the high-noise expert\'s steps (musubi-tuner\'s guidance_scale_high_noise); 0 = the same as cfg' , families: ['wan'] }),
  startImage: widget.path({ kind: 'input', default: NO_START_IMAGE, tooltip: 'image-to-video models (Wan I2V): the image every clip starts from, a file in the input folder (ComfyUI\'s WanImageToVideo start_image; scaled to cover the clip and centre-cropped); "none" = no first frame, which only models trained without one accept' , families: ['wan'] }),
  endImage: widget.path({ kind: 'input', default: NO_START_IMAGE, tooltip: 'first-and-last-frame models (Wan 2.1 FLF2V): the image every clip ends on, a file in the input folder (ComfyUI\'s WanFirstLastFrameToVideo end_image; scaled and cropped as startImage); "none" samples such a model from startImage alone, as image-to-video, and is the only choice for every other model', families: ['wan'] }),
};

type SettingsWidgets = z.output<z.ZodObject<typeof settingsWidgets>>;

/** The SAMPLER_SETTINGS value of these widgets; prompt errors name the line; `resolveInput` places startImage in the input folder. */
export function samplerSettings(w: Omit<SettingsWidgets, 'endImage'> & { endImage?: string }, resolveInput: (p: string) => string = (p) => p): SamplerSettings {
  const prompts = parsePrompts(w.prompts);
  if (prompts.length === 0) throw new Error('prompts: write at least one prompt');
  return Object.freeze({
    kind: 'sampler_settings' as const,
    prompts: Object.freeze(prompts), negativePrompt: w.negativePrompt, seed: w.seed, walkSeed: w.walkSeed,
    steps: w.steps, cfg: w.cfg, sampler: w.sampler, scheduler: w.scheduler, width: w.width, height: w.height, loraStrength: w.loraStrength,
    numFrames: w.numFrames, fps: w.fps, cfgHighNoise: w.cfgHighNoise,
    ...(w.startImage !== NO_START_IMAGE ? { startImage: resolveInput(w.startImage) } : {}),
    ...(w.endImage && w.endImage !== NO_START_IMAGE ? { endImage: resolveInput(w.endImage) } : {}),
    byteSize: () => 256 + w.prompts.length * 2,
  });
}

export const samplerSettingsNode = defineNode({
  type: 'SamplerSettings',
  title: 'Sampler Settings',
  category: 'sampling',
  description: 'Prompts and sampling settings, for a Sampler or a Train node\'s "sample every N steps".',
  version: 1,
  widgets: z.object(settingsWidgets),
  outputs: { settings: 'SAMPLER_SETTINGS' },
  fingerprint: ({ widgets, resolvePath }) => imagesFingerprint([widgets.startImage, widgets.endImage], resolvePath),
  execute({ widgets: w, ctx }) {
    const settings = samplerSettings(w, (p) => ctx.resolvePath('input', p));
    return { outputs: { settings }, ui: { text: [`${settings.prompts.length} prompt(s), ${w.steps} steps ${w.sampler}${w.scheduler === 'auto' ? '' : ` ${w.scheduler}`}, CFG ${w.cfg}`] } };
  },
});

export const samplerNode = defineNode({
  type: 'Sampler',
  title: 'Sampler',
  category: 'sampling',
  description: 'Renders the prompts with the model, optionally through the adapter being trained or a LoRA file; shows them as a grid.',
  version: 1,
  isOutput: true,
  inputs: {
    model: input<ModelValue>('MODEL'),
    clip: input<ClipValue>('CLIP'),
    vae: input<VaeValue>('VAE'),
    training: input<TrainingValue>('TRAINING', { optional: true, tooltip: 'preview the adapter being trained' }),
    loraFile: input<LoraFileValue>('LORA_FILE', { optional: true, tooltip: 'sample with a saved LoRA file' }),
    lowNoiseModel: input<ModelValue>('MODEL', { optional: true, tooltip: 'Wan 2.2 A14B: the low-noise expert (model is the high-noise one); each step runs the expert owning its noise level, with that expert\'s LoRA from a two-expert TRAINING or LORA_FILE' }),
    settings: input<SamplerSettings>('SAMPLER_SETTINGS', { optional: true, tooltip: 'use these settings instead of this node\'s widgets' }),
    firstFrame: input<ImagesValue>('IMAGES', { optional: true, tooltip: 'image-to-video models: every clip starts from the first of these images (instead of the startImage file)' }),
    lastFrame: input<ImagesValue>('IMAGES', { optional: true, tooltip: 'first-and-last-frame models (Wan 2.1 FLF2V): every clip ends on the first of these images (instead of the endImage file)' }),
  },
  widgets: z.object({
    ...settingsWidgets,
    compare: widget.toggle({ default: false, tooltip: 'render each prompt without and with the adapter, side by side' }),
    useEma: widget.toggle({ default: false, tooltip: 'sample the EMA of the weights (when the Train node keeps one)' }),
  }),
  outputs: { images: 'IMAGES' },
  fingerprint: ({ widgets, resolvePath }) => imagesFingerprint([widgets.startImage, widgets.endImage], resolvePath),
  async execute({ inputs, widgets: w, ctx }) {
    const settings = inputs.settings ?? samplerSettings(w, (p) => ctx.resolvePath('input', p));
    if (inputs.training && inputs.loraFile) throw new Error('training / loraFile: connect one adapter source, not both');
    let adapter: RenderAdapter | undefined;
    // Two experts: each expert's weights by name, and where they hand over.
    let experts: { weights: Readonly<Record<string, Readonly<Record<string, HostTensor>>>>; boundary?: number } | undefined;
    let spec: AdapterSpec | undefined;
    if (inputs.training) {
      const t = inputs.training;
      if (t.base.id !== inputs.model.source.id) ctx.warn(`the adapter was trained on ${t.base.label}, sampling on ${inputs.model.source.label}`);
      if (w.useEma && !t.ema) throw new Error('useEma: this TRAINING has no EMA weights (turn EMA on in the Train node)');
      spec = t.adapter;
      adapter = { spec: t.adapter, weights: w.useEma ? t.ema! : t.weights, strength: settings.loraStrength };
      if (t.experts) experts = { weights: Object.fromEntries(Object.entries(t.experts).map(([e, x]) => [e, w.useEma && x.ema ? x.ema : x.weights])), boundary: t.expertBoundary };
    } else if (inputs.loraFile) {
      const lora = await readLoraFileFor(inputs.loraFile.path, inputs.model);
      spec = lora.spec;
      adapter = { spec: lora.spec, weights: lora.weights, strength: settings.loraStrength };
      const files = inputs.loraFile.experts;
      if (files) {
        const weights: Record<string, Readonly<Record<string, HostTensor>>> = {};
        for (const [e, file] of Object.entries(files)) weights[e] = file === inputs.loraFile.path ? lora.weights : (await readLoraFileFor(file, inputs.model)).weights;
        experts = { weights, boundary: inputs.loraFile.expertBoundary };
      }
    }
    if (experts && !inputs.lowNoiseModel) {
      // Graphs made before lowNoiseModel existed keep sampling as they did: the high-noise expert throughout.
      ctx.warn(`lowNoiseModel is not connected: every step runs ${inputs.model.source.label} with the high_noise expert's LoRA; connect the low-noise expert's Load Model to lowNoiseModel to run each step on the expert owning its noise level`);
      experts = undefined;
    }
    const lowNoise = twoExperts(inputs.model, inputs.lowNoiseModel, spec, experts, settings.loraStrength);
    if (lowNoise && spec) adapter = { spec, weights: experts!.weights.high_noise, strength: settings.loraStrength };
    if (w.compare && !adapter) throw new Error('compare: connect a TRAINING or LORA_FILE input to compare with and without the adapter');
    const images = await renderSamples({
      model: inputs.model, clip: inputs.clip, vae: inputs.vae, settings, adapter, compare: w.compare, ...(lowNoise ? { lowNoise } : {}),
      onImage: (im) => ctx.preview({ mime: 'image/png', data: im.data }),
      onStep: (step, total) => ctx.progress({ step, total }),
      throwIfInterrupted: () => ctx.throwIfInterrupted(),
      ...(inputs.firstFrame ? { startImage: firstImageOf(inputs.firstFrame, 'firstFrame') } : {}),
      ...(inputs.lastFrame ? { endImage: firstImageOf(inputs.lastFrame, 'lastFrame') } : {}),
    });
    const step = adapter && inputs.training ? inputs.training.step : null;
    const grid = await gridSheet(images, { title: step !== null ? `step ${step}` : undefined });
    // Clips show as one animated WebP of the grid (it plays on the node and in the lightbox).
    const name = `samples-${ctx.nodeId}-${ctx.cacheKey.slice(0, 12)}`;
    const ref = grid.video ? await publishImage(ctx, `${name}.webp`, grid.video.webp) : await publishImage(ctx, `${name}.png`, grid.png);
    const items = images.map(({ mime, data, width, height, label, video }) => ({ mime, data, width, height, label, ...(video ? { video } : {}) }));
    const value: ImagesValue = Object.freeze({ images: Object.freeze(items), byteSize: () => items.reduce((n, i) => n + i.data.byteLength + (i.video?.frames.reduce((m, f) => m + f.byteLength, 0) ?? 0), 0) });
    const sheet: SampleSheet = { image: ref, step, lora: null, tiles: grid.tiles, ...(grid.video ? { frames: grid.video.frames, fps: grid.video.fps } : {}) };
    const text = images.map((im) => (im.video ? `${im.label} · ${im.video.frames.length} frames at ${im.video.fps} fps` : im.label));
    return { outputs: { images: value }, ui: { images: [ref], text, samples: [sheet] } };
  },
});

/** A changed start or end image file re-runs the node (their sizes and modification times). */
async function imagesFingerprint([startImage, endImage]: readonly [string, string], resolvePath: (kind: 'input', p: string) => string): Promise<string> {
  const one = async (f: string) => {
    if (f === NO_START_IMAGE) return '';
    const s = await stat(resolvePath('input', f));
    return `${s.size}:${s.mtimeMs}`;
  };
  const [start, end] = await Promise.all([one(startImage), one(endImage)]);
  // Without an end image, the start image's alone (what it was before endImage existed).
  return end ? `${start}|${end}` : start;
}

function firstImageOf(images: ImagesValue, input: 'firstFrame' | 'lastFrame'): { data: Uint8Array; what: string } {
  const first = images.images[0];
  if (!first) throw new Error(`${input}: the connected IMAGES value holds no image`);
  return { data: first.data, what: `${input} (${first.label ?? 'image 1'})` };
}

/**
 * The low-noise expert's part of a two-expert render (Wan 2.2 A14B): its model, its LoRA and the boundary.
 * lowNoiseModel needs a LoRA per expert (or no adapter at all).
 */
function twoExperts(model: ModelValue, lowNoiseModel: ModelValue | undefined, spec: AdapterSpec | undefined, experts: { weights: Readonly<Record<string, Readonly<Record<string, HostTensor>>>>; boundary?: number } | undefined, strength: number): RenderRequest['lowNoise'] {
  if (!lowNoiseModel) return undefined;
  if (lowNoiseModel.denoiser === model.denoiser) throw new Error('lowNoiseModel: the same model is connected to model and lowNoiseModel; connect the high-noise expert to model and the low-noise one to lowNoiseModel');
  if (spec && !experts) throw new Error('lowNoiseModel: the adapter is one LoRA, not one per expert; connect a multistage Train\'s TRAINING, a two-expert Save LoRA\'s LORA_FILE, or Load LoRA of a <name>_high_noise.safetensors file');
  for (const e of ['high_noise', 'low_noise']) if (experts && !experts.weights[e]) throw new Error(`training / loraFile: the adapter has no ${e} expert's LoRA`);
  const boundary = experts?.boundary ?? (model.config as { experts?: { boundary?: number } } | undefined)?.experts?.boundary;
  if (!(boundary !== undefined && boundary > 0 && boundary < 1)) throw new Error(`lowNoiseModel: ${model.source.label} states no expert boundary and the adapter names none`);
  return { model: lowNoiseModel, boundary, ...(spec && experts ? { adapter: { spec, weights: experts.weights.low_noise, strength } } : {}) };
}

export default samplerNode;
