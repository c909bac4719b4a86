// `npm run eval:tiny-wan`: how well the tiny Wan draws the clip it is asked for — every world shape ×
// colour × direction, each on a background that differs from it, sampled as Wan previews are (umT5
// features, flow Euler on the shifted schedule with CFG against the empty prompt, each step routed to
// the expert owning its noise level, causal VAE decode), all through wanFamily as loaded from the files,
// and read back by the clip analyzer.
// Text-to-video by default (a zero first-frame condition); `--i2v 1` conditions on the rendered first
// frame instead, which tests the motion alone. Target: ≥ 80% shape, colour and direction.
// `--x0 1` instead reads the one-step x0 estimates of noised world clips at σ 0.3…1 (which noise levels
// the model has learned).
//   npx tsx kernels/wan/tiny/eval.ts [--dir DIR] [--samples N] [--steps N] [--cfg X] [--frames N] [--i2v 1] [--x0 1]
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { input, type HostTensor } from '../../tensor';
import { add, clip, mul } from '../../ops/elementwise';
import { Builder } from '../../nn/builder';
import type { WeightSource } from '../../nn/weights';
import { compileGraph } from '../../compile';
import { Runtime, type Session } from '../../runtime';
import { Rng } from '../../random';
import { idsInputName } from '../../families/training-graph';
import { tokenIdTensor } from '../../families/pipeline';
import { COLOR_NAMES, WORLD_SHAPES, type ColorName, type ShapeName } from '../../sd/tiny/world';
import { checkClipFrames } from '../vae';
import { WAN_EXPERTS, expertForTimestep } from '../experts';
import type { WanExpert } from '../detect';
import { wanExpertConfig, wanFamily, wanI2vCondition, type WanFamilyConfig } from '../family';
import { analyzeClip } from './analyze';
import { DIRECTIONS, clipCaption, framesToPlanar, planarToFrames, renderClip, sampleClip, type Direction } from './world';
import { TINY_WAN_FILES } from './model';
import { TINY_WAN_ROOT } from './pretrain';

export interface VideoEvalPrompt { prompt: string; shape: ShapeName; color: ColorName; background: ColorName; direction: Direction }

/** Every world shape in every colour and direction, each on a background that differs from its colour. */
export function videoEvalPrompts(): VideoEvalPrompt[] {
  const out: VideoEvalPrompt[] = [];
  WORLD_SHAPES.forEach((shape, si) => COLOR_NAMES.forEach((color, ci) => DIRECTIONS.forEach((direction, di) => {
    const background = COLOR_NAMES[(ci + 1 + ((si * 3 + di * 2) % 7)) % COLOR_NAMES.length];
    out.push({ prompt: clipCaption({ shape, color, background, direction }), shape, color, background, direction });
  })));
  return out;
}

type Loaded = Awaited<ReturnType<typeof wanFamily.load>>;

/**
 * Inference graphs for `batch` clips of `frames` frames, built through wanFamily as the Sampler node's
 * pipeline builds them: the family's text encoding, one denoiser per expert (the loaded file's and the
 * other expert's, opened beside it), its I2V condition and VAE decode, and its flow sampler with each
 * step's model call routed to the expert that owns the step's noise level.
 */
export class TinyWanSampler {
  private constructor(
    private readonly rt: Runtime, readonly model: Loaded, readonly config: WanFamilyConfig, readonly batch: number, readonly frames: number,
    private readonly text: Session, private readonly denoisers: Record<WanExpert, Session>, private readonly encoder: Session, private readonly decoder: Session,
    readonly latentShape: number[], private readonly closeOther: () => void,
  ) {}

  static async create(rt: Runtime, model: Loaded, batch: number, frames: number): Promise<TinyWanSampler> {
    const cfg = model.config, n = batch, L = cfg.textLength, fam = wanFamily;
    if (!cfg.experts) throw new Error(`${cfg.name}: the tiny Wan eval samples with two experts (a high_noise/low_noise pair of files)`);
    const lf = fam.latentFormat(cfg), size = fam.sampleSize(cfg);
    const T = checkClipFrames(cfg.vae, frames), h = size / lf.spatialCompression;
    const latentShape = [lf.channels, T, h, h];
    const ids = input(idsInputName(0), [2 * n, L], 'int64');
    const { context } = fam.encodeText([new Builder(model.textEncoders[0].weights)], cfg, [ids], { clipSkip: 1 });
    const text = await rt.load(compileGraph([ids], { context }, { name: 'tiny_wan_text' }));
    const other = cfg.experts.active === 'high_noise' ? 'low_noise' : 'high_noise';
    const otherWeights = await model.openExpert(other);
    const weights: Record<WanExpert, WeightSource> = { [cfg.experts.active]: model.denoiser, [other]: otherWeights } as Record<WanExpert, WeightSource>;
    const condSpec = fam.conditioning(cfg, latentShape);
    const denoisers = {} as Record<WanExpert, Session>;
    for (const e of WAN_EXPERTS) {
      const x = input('sample', [2 * n, ...latentShape]), t = input('timestep', [2 * n]);
      const cond = Object.fromEntries(condSpec.map((c) => [c.name, input(c.name, [2 * n, ...c.shape])]));
      const pred = fam.denoise(new Builder(weights[e]), wanExpertConfig(cfg, e), { sample: x, timestep: t, cond });
      denoisers[e] = await rt.load(compileGraph([x, t, ...Object.values(cond)], { prediction: pred }, { name: `tiny_wan_${e}` }));
    }
    const video = input('video', [n, 3, frames, size, size]);
    const encoder = await rt.load(compileGraph([video], { condition: wanI2vCondition(new Builder(model.vae), cfg, video) }, { name: 'tiny_wan_i2v_condition' }));
    const z = input('latents', [n, ...latentShape]);
    const decoder = await rt.load(compileGraph([z], { video: clip(add(mul(fam.vaeDecode(new Builder(model.vae), cfg, z), 0.5), 0.5), 0, 1) }, { name: 'tiny_wan_vae_decode' }));
    return new TinyWanSampler(rt, model, cfg, n, frames, text, denoisers, encoder, decoder, latentShape, () => otherWeights.close());
  }

  /** The I2V condition [n, 20, T, h, w]: of the given first frames (RGB bytes), or zeros (text to video). */
  async condition(firstFrames?: readonly Uint8Array[]): Promise<Float32Array> {
    const [, T, h, w] = this.latentShape;
    if (!firstFrames) return new Float32Array(this.batch * 20 * T * h * w);
    const S = this.config.sampleSize, clipValues = 3 * this.frames * S * S;
    // Only the first frame matters: the condition graph blanks the others, as Wan's I2V pipeline does.
    const video = new Float32Array(this.batch * clipValues);
    firstFrames.forEach((f, i) => framesToPlanar(Array(this.frames).fill(f), S, video, i * clipValues));
    return (await this.encoder.run({ video: { dtype: 'float32', shape: [this.batch, 3, this.frames, S, S], data: video } })).condition.data as Float32Array;
  }

  async generate(g: { prompt: string; negativePrompt?: string; seed: number; steps: number; cfgScale: number; firstFrames?: readonly Uint8Array[] }): Promise<TinyWanVideo> {
    const n = this.batch, cfg = this.config;
    const rows = [...Array(n).fill(g.negativePrompt ?? ''), ...Array(n).fill(g.prompt)] as string[];
    const { context } = await this.text.run({ [idsInputName(0)]: tokenIdTensor(this.model.textEncoders[0].tokenizer, rows, cfg.textLength) });
    const cond1 = await this.condition(g.firstFrames);
    const cond2 = new Float32Array(2 * cond1.length);
    cond2.set(cond1); cond2.set(cond1, cond1.length);
    const condition: HostTensor = { dtype: 'float32', shape: [2 * n, 20, ...this.latentShape.slice(1)], data: cond2 };
    const boundary = cfg.experts!.boundary;
    const latents = await wanFamily.sample(async (x, timestep) => {
      const e = expertForTimestep(timestep / 1000, boundary);
      const out = await this.denoisers[e].run({
        sample: { dtype: 'float32', shape: [2 * n, ...this.latentShape], data: x },
        timestep: { dtype: 'float32', shape: [2 * n], data: new Float32Array(2 * n).fill(timestep) }, context, condition,
      });
      return out.prediction.data as Float32Array;
    }, cfg, { sampler: 'euler', steps: g.steps, cfgScale: g.cfgScale, seed: g.seed, scheduler: 'auto', latentShape: this.latentShape, batch: n });
    const video = (await this.decoder.run({ latents: { dtype: 'float32', shape: [n, ...this.latentShape], data: latents } })).video.data as Float32Array;
    const S = cfg.sampleSize, clipValues = 3 * this.frames * S * S;
    // planarToFrames reads [−1, 1]; the decoder gave [0, 1].
    const frames = Array.from({ length: n }, (_, i) => planarToFrames(video.subarray(i * clipValues, (i + 1) * clipValues).map((v) => 2 * v - 1), this.frames, S));
    return { frames, latents };
  }

  private clipEncoder?: Session;

  /**
   * The denoiser's one-step estimate of the clean clip, x0 = x_σ − σ·v (with CFG), for world clips
   * `clips` (RGB byte frames, `batch` of them) noised to `sigma` and decoded — a diagnostic of which
   * noise levels the model has learned: the analyzer reads these as it reads samples.
   */
  async predictX0(g: { prompt: string; clips: readonly Uint8Array[][]; sigma: number; seed: number; cfgScale: number; firstFrames?: readonly Uint8Array[] }): Promise<Uint8Array[][]> {
    const n = this.batch, cfg = this.config, S = cfg.sampleSize, clipValues = 3 * this.frames * S * S;
    if (!this.clipEncoder) {
      const video = input('video', [n, 3, this.frames, S, S]);
      this.clipEncoder = await this.rt.load(compileGraph([video], { latents: wanFamily.vaeEncode(new Builder(this.model.vae), cfg, video) }, { name: 'tiny_wan_clip_encode' }));
    }
    const pixels = new Float32Array(n * clipValues);
    g.clips.forEach((frames, i) => framesToPlanar(frames, S, pixels, i * clipValues));
    const clean = (await this.clipEncoder.run({ video: { dtype: 'float32', shape: [n, 3, this.frames, S, S], data: pixels } })).latents.data as Float32Array;
    const noise = new Rng(g.seed).fillNormal(new Float32Array(clean.length));
    const noisy = clean.map((v, i) => (1 - g.sigma) * v + g.sigma * noise[i]);
    const rows = [...Array(n).fill(''), ...Array(n).fill(g.prompt)] as string[];
    const { context } = await this.text.run({ [idsInputName(0)]: tokenIdTensor(this.model.textEncoders[0].tokenizer, rows, cfg.textLength) });
    const cond1 = await this.condition(g.firstFrames);
    const cond2 = new Float32Array(2 * cond1.length);
    cond2.set(cond1); cond2.set(cond1, cond1.length);
    const x2 = new Float32Array(2 * noisy.length);
    x2.set(noisy); x2.set(noisy, noisy.length);
    const e = expertForTimestep(g.sigma, cfg.experts!.boundary);
    const v = (await this.denoisers[e].run({
      sample: { dtype: 'float32', shape: [2 * n, ...this.latentShape], data: x2 },
      timestep: { dtype: 'float32', shape: [2 * n], data: new Float32Array(2 * n).fill(g.sigma * 1000) }, context,
      condition: { dtype: 'float32', shape: [2 * n, 20, ...this.latentShape.slice(1)], data: cond2 },
    })).prediction.data as Float32Array;
    const half = noisy.length;
    const x0 = noisy.map((x, i) => x - g.sigma * (v[i] + g.cfgScale * (v[half + i] - v[i])));
    const video = (await this.decoder.run({ latents: { dtype: 'float32', shape: [n, ...this.latentShape], data: x0 } })).video.data as Float32Array;
    return Array.from({ length: n }, (_, i) => planarToFrames(video.subarray(i * clipValues, (i + 1) * clipValues).map((u) => 2 * u - 1), this.frames, S));
  }

  close(): void { this.closeOther(); }
}

/**
 * `--x0 1`: for each noise level, the share of one-step x0 estimates (of world clips noised to it, text
 * to video) whose shape, colour and direction the analyzer reads right.
 */
export async function x0Diagnostic(o: TinyWanEvalOptions & { sigmas: number[] }, log: (line: string) => void = () => {}): Promise<Record<number, { shape: number; color: number; direction: number }>> {
  const model = await wanFamily.load(join(o.dir, TINY_WAN_FILES.high));
  const rt = new Runtime({ threads: o.threads ?? 0 });
  let sampler: TinyWanSampler | undefined;
  const out: Record<number, { shape: number; color: number; direction: number }> = {};
  try {
    sampler = await TinyWanSampler.create(rt, model, o.samples, o.frames);
    const prompts = videoEvalPrompts().filter((_, i) => i % 7 === 0).slice(0, o.prompts);
    for (const sigma of o.sigmas) {
      let s = 0, c = 0, d = 0, count = 0;
      for (const [i, p] of prompts.entries()) {
        const clips = Array.from({ length: o.samples }, (_, k) => renderClip(sampleClip(o.seed * 7919 + i * 31 + k, { shapes: [p.shape], colors: [p.color], backgrounds: [p.background], directions: [p.direction], frames: [o.frames] }), sampler!.config.sampleSize));
        for (const frames of await sampler.predictX0({ prompt: p.prompt, clips, sigma, seed: o.seed + i, cfgScale: o.cfgScale })) {
          const a = analyzeClip(frames, sampler.config.sampleSize);
          if (a.shape === p.shape) s++;
          if (a.color === p.color) c++;
          if (a.direction === p.direction) d++;
          count++;
        }
      }
      out[sigma] = { shape: s / count, color: c / count, direction: d / count };
      log(`σ ${sigma.toFixed(2)}: x0 estimates of ${count} clips: shape ${(100 * s / count).toFixed(0)}%, colour ${(100 * c / count).toFixed(0)}%, direction ${(100 * d / count).toFixed(0)}%`);
    }
    return out;
  } finally {
    sampler?.close();
    await rt.close();
    model.close();
  }
}

export interface TinyWanVideo { frames: Uint8Array[][]; latents: Float32Array }

export interface TinyWanEvalOptions {
  dir: string;
  samples: number;
  steps: number;
  cfgScale: number;
  frames: number;
  seed: number;
  /** Condition on the rendered first frame (image to video) instead of text alone. */
  i2v?: boolean;
  /** Evaluate only the first N prompts (smoke tests). */
  prompts?: number;
  threads?: number;
}

export const TINY_WAN_EVAL_DEFAULTS = { samples: 2, steps: 30, cfgScale: 5, frames: 9, seed: 1000 };

export interface TinyWanEvalResult { clips: number; shapeAccuracy: number; colorAccuracy: number; directionAccuracy: number; backgroundAccuracy: number; firstFrames: Uint8Array[] }

export async function evaluateTinyWan(o: TinyWanEvalOptions, log: (line: string) => void = () => {}): Promise<TinyWanEvalResult> {
  const model = await wanFamily.load(join(o.dir, TINY_WAN_FILES.high));
  const rt = new Runtime({ threads: o.threads ?? 0 });
  let sampler: TinyWanSampler | undefined;
  try {
    sampler = await TinyWanSampler.create(rt, model, o.samples, o.frames);
    let shapeOk = 0, colorOk = 0, dirOk = 0, bgOk = 0, count = 0;
    const firstFrames: Uint8Array[] = [];
    for (const [i, p] of videoEvalPrompts().slice(0, o.prompts).entries()) {
      const first = o.i2v ? Array.from({ length: o.samples }, (_, k) => renderClip(sampleClip(o.seed * 7919 + i * 31 + k, { shapes: [p.shape], colors: [p.color], backgrounds: [p.background], directions: [p.direction], frames: [o.frames] }), sampler!.config.sampleSize)[0]) : undefined;
      const v = await sampler.generate({ prompt: p.prompt, seed: o.seed + i, steps: o.steps, cfgScale: o.cfgScale, firstFrames: first });
      const seen: string[] = [];
      let s = 0, c = 0, d = 0;
      for (const frames of v.frames) {
        const a = analyzeClip(frames, sampler.config.sampleSize);
        seen.push(`${a.color ?? '-'} ${a.shape} ${a.direction}/${a.background}`);
        if (a.shape === p.shape) s++;
        if (a.color === p.color) c++;
        if (a.direction === p.direction) d++;
        if (a.background === p.background) bgOk++;
        firstFrames.push(frames[0]);
      }
      shapeOk += s; colorOk += c; dirOk += d; count += v.frames.length;
      log(`${p.prompt.padEnd(52)} shape ${s}/${v.frames.length} colour ${c}/${v.frames.length} direction ${d}/${v.frames.length}  [${seen.join(', ')}]`);
    }
    return { clips: count, shapeAccuracy: shapeOk / count, colorAccuracy: colorOk / count, directionAccuracy: dirOk / count, backgroundAccuracy: bgOk / count, firstFrames };
  } finally {
    sampler?.close();
    await rt.close();
    model.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1] ?? '');
  const num = (k: string, d: number) => { const v = Number(args.get(k) ?? d); if (!Number.isFinite(v)) throw new Error(`eval:tiny-wan: --${k} takes a number`); return v; };
  const o: TinyWanEvalOptions = {
    dir: resolve(args.get('dir') ?? TINY_WAN_ROOT),
    samples: num('samples', TINY_WAN_EVAL_DEFAULTS.samples), steps: num('steps', TINY_WAN_EVAL_DEFAULTS.steps),
    cfgScale: num('cfg', TINY_WAN_EVAL_DEFAULTS.cfgScale), frames: num('frames', TINY_WAN_EVAL_DEFAULTS.frames), seed: num('seed', TINY_WAN_EVAL_DEFAULTS.seed),
    i2v: args.get('i2v') === '1', prompts: args.has('prompts') ? num('prompts', 0) : undefined,
    threads: Number(process.env.LORAGRAPH_THREADS ?? 0),
  };
  if (args.get('x0') === '1') {
    await x0Diagnostic({ ...o, prompts: o.prompts ?? 12, sigmas: [0.3, 0.5, 0.7, 0.9, 1] }, (line) => console.log(line));
    process.exit(0);
  }
  const t0 = Date.now();
  console.log(`eval:tiny-wan ${o.dir}: ${o.prompts ?? videoEvalPrompts().length} prompts × ${o.samples} clips of ${o.frames} frames, ${o.i2v ? 'image' : 'text'} to video, flow Euler ${o.steps} steps, CFG ${o.cfgScale}`);
  const r = await evaluateTinyWan(o, (line) => console.log(line));
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(`clips: ${r.clips}; shape right ${pct(r.shapeAccuracy)}, colour right ${pct(r.colorAccuracy)}, direction right ${pct(r.directionAccuracy)}, background right ${pct(r.backgroundAccuracy)} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
  const pass = r.shapeAccuracy >= 0.8 && r.colorAccuracy >= 0.8 && r.directionAccuracy >= 0.8;
  console.log(pass ? 'PASS (≥ 80% shape, colour and direction)' : 'BELOW TARGET (80% shape, colour and direction)');
  process.exitCode = pass ? 0 : 1;
}
