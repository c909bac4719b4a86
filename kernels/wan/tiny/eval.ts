// `npm run eval:tiny-wan`: how well the tiny Wan draws the clip it is asked for — every world shape ×
// colour × direction, each on a background that differs from it, sampled as Wan previews are (umT5
// features, flow Euler on the shifted schedule with CFG against the empty prompt, each step routed to
// the expert owning its noise level, causal VAE decode) and read back by the clip analyzer.
// Text-to-video by default (a zero first-frame condition); `--i2v 1` conditions on the rendered first
// frame instead, which tests the motion alone. Target: ≥ 80% shape, colour and direction.
//   npx tsx kernels/wan/tiny/eval.ts [--dir DIR] [--samples N] [--steps N] [--cfg X] [--frames N] [--i2v 1]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { input, type HostTensor } from '../../tensor';
import { add, clip, mul } from '../../ops/elementwise';
import { Builder } from '../../nn/builder';
import { HostWeights } from '../../nn/weights';
import { compileGraph } from '../../compile';
import { Runtime, type Session } from '../../runtime';
import { loadSafetensors, toFloat32 } from '../../io/safetensors';
import { sampleFlowEuler } from '../../flux/sampling';
import { T5PromptTokenizer } from '../../text/t5-tokenizer';
import { COLOR_NAMES, WORLD_SHAPES, type ColorName, type ShapeName } from '../../sd/tiny/world';
import { wanPromptTokens, wanTextFeatures } from '../umt5';
import { tokenGrid, wanRope, wanTransformer } from '../transformer';
import { checkClipFrames, vaeSpatialFactor, wanVaeDecode, wanVaeEncode, type WanVaeConfig } from '../vae';
import { defaultSampleShift, wanExpertModel, wanSigmas } from '../sampling';
import { WAN_EXPERTS, defaultExpertBoundary } from '../experts';
import type { WanExpert } from '../detect';
import { analyzeClip } from './analyze';
import { DIRECTIONS, clipCaption, framesToPlanar, planarToFrames, renderClip, sampleClip, type Direction } from './world';
import { TINY_UMT5, TINY_WAN_DIT, TINY_WAN_FILES, TINY_WAN_SIZE, TINY_WAN_TEXT_LEN, firstFrameMask } from './model';
import { TINY_WAN_ROOT, tinyWanVaeConfig } from './pretrain';

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

type State = Map<string, HostTensor>;
async function readWeights(path: string): Promise<{ tensors: State; metadata: Record<string, string> }> {
  const { tensors, metadata } = await loadSafetensors(path);
  return { tensors: new Map([...tensors].map(([k, t]) => [k, { dtype: 'float32', shape: t.shape, data: toFloat32(t) }])), metadata };
}

/** The pretrained files of a folder: both experts, umT5, the VAE (with its latent statistics) and the tokenizer. */
export async function loadTinyWan(dir: string) {
  const files = Object.fromEntries(await Promise.all((['high', 'low', 'textEncoder', 'vae'] as const).map(async (k) => [k, await readWeights(join(dir, TINY_WAN_FILES[k]))])));
  const tokenizer = new T5PromptTokenizer(JSON.parse(readFileSync(join(dir, TINY_WAN_FILES.tokenizer), 'utf8')));
  return {
    experts: { high_noise: files.high.tensors, low_noise: files.low.tensors } as Record<WanExpert, State>,
    text: files.textEncoder.tensors, vae: files.vae.tensors, vaeConfig: tinyWanVaeConfig(files.vae.metadata), tokenizer,
  };
}

export interface TinyWanVideo { frames: Uint8Array[][]; latents: Float32Array }

/** Inference graphs for `batch` clips of `frames` frames: text, one denoiser per expert, VAE encode (I2V condition) and decode. */
export class TinyWanSampler {
  private constructor(
    readonly model: Awaited<ReturnType<typeof loadTinyWan>>, readonly batch: number, readonly frames: number,
    private readonly text: Session, private readonly denoisers: Record<WanExpert, Session>, private readonly encoder: Session, private readonly decoder: Session,
    readonly latentShape: number[],
  ) {}

  static async create(rt: Runtime, model: Awaited<ReturnType<typeof loadTinyWan>>, batch: number, frames: number): Promise<TinyWanSampler> {
    const cfg = TINY_WAN_DIT, vae: WanVaeConfig = model.vaeConfig, n = batch, L = TINY_WAN_TEXT_LEN;
    const T = checkClipFrames(vae, frames), h = TINY_WAN_SIZE / vaeSpatialFactor(vae);
    const latentShape = [cfg.outChannels, T, h, h];
    const ids = input('ids', [2 * n, L], 'int64'), mask = input('mask', [2 * n, L]);
    const text = await rt.load(compileGraph([ids, mask], { context: wanTextFeatures(new Builder(new HostWeights(model.text, 'umt5')), TINY_UMT5, ids, mask) }, { name: 'tiny_wan_text' }));
    const denoisers = {} as Record<WanExpert, Session>;
    for (const e of WAN_EXPERTS) {
      const x = input('sample', [2 * n, ...latentShape]), t = input('timestep', [2 * n]);
      const context = input('context', [2 * n, L, cfg.textDim]), condition = input('condition', [2 * n, cfg.inChannels - cfg.outChannels, T, h, h]);
      const pred = wanTransformer(new Builder(new HostWeights(model.experts[e], e)), cfg, { latents: x, condition, context, timesteps: t, rope: wanRope(cfg, tokenGrid(cfg, [T, h, h])) });
      denoisers[e] = await rt.load(compileGraph([x, t, context, condition], { prediction: pred }, { name: `tiny_wan_${e}` }));
    }
    const video = input('video', [n, 3, frames, TINY_WAN_SIZE, TINY_WAN_SIZE]);
    const encoder = await rt.load(compileGraph([video], { latents: wanVaeEncode(new Builder(new HostWeights(model.vae, 'vae')), vae, video).latents }, { name: 'tiny_wan_vae_encode' }));
    const z = input('latents', [n, ...latentShape]);
    const decoded = clip(add(mul(wanVaeDecode(new Builder(new HostWeights(model.vae, 'vae')), vae, z), 0.5), 0.5), 0, 1);
    const decoder = await rt.load(compileGraph([z], { video: decoded }, { name: 'tiny_wan_vae_decode' }));
    return new TinyWanSampler(model, n, frames, text, denoisers, encoder, decoder, latentShape);
  }

  /** The I2V condition [n, 20, T, h, w] of first frames (RGB bytes, one per clip): mask + latent of (frame, zero frames…). */
  async condition(firstFrames?: readonly Uint8Array[]): Promise<Float32Array> {
    const [, T, h, w] = this.latentShape;
    const per = 20 * T * h * w, out = new Float32Array(this.batch * per);
    if (!firstFrames) return out;
    const S = TINY_WAN_SIZE, clipValues = 3 * this.frames * S * S;
    const video = new Float32Array(this.batch * clipValues);
    // Wan's I2V input: the first frame, then zero frames (mid grey in [−1, 1]).
    const plane = S * S, first = new Float32Array(3 * plane);
    firstFrames.forEach((f, i) => {
      framesToPlanar([f], S, first);
      for (let c = 0; c < 3; c++) video.set(first.subarray(c * plane, (c + 1) * plane), i * clipValues + c * this.frames * plane);
    });
    const lat = (await this.encoder.run({ video: { dtype: 'float32', shape: [this.batch, 3, this.frames, S, S], data: video } })).latents.data as Float32Array;
    const mask = firstFrameMask(T, h, w), latPer = 16 * T * h * w;
    for (let i = 0; i < this.batch; i++) { out.set(mask, i * per); out.set(lat.subarray(i * latPer, (i + 1) * latPer), i * per + mask.length); }
    return out;
  }

  async generate(g: { prompt: string; negativePrompt?: string; seed: number; steps: number; cfgScale: number; shift?: number; boundary?: number; firstFrames?: readonly Uint8Array[] }): Promise<TinyWanVideo> {
    const n = this.batch, L = TINY_WAN_TEXT_LEN, cfg = TINY_WAN_DIT;
    const tok = wanPromptTokens(this.model.tokenizer, [...Array(n).fill(g.negativePrompt ?? ''), ...Array(n).fill(g.prompt)], L);
    const context = (await this.text.run({ ids: tok.ids, mask: tok.mask })).context;
    const cond1 = await this.condition(g.firstFrames);
    const cond2 = new Float32Array(2 * cond1.length);
    cond2.set(cond1); cond2.set(cond1, cond1.length);
    const per = this.latentShape.reduce((a, b) => a * b, 1);
    const condition: HostTensor = { dtype: 'float32', shape: [2 * n, cfg.inChannels - cfg.outChannels, ...this.latentShape.slice(1)], data: cond2 };
    const call = (e: WanExpert) => async (x: Float32Array, t: number, o: { cfg: boolean }) => {
      if (!o.cfg) throw new Error('tiny Wan sampler: runs with CFG');
      const out = await this.denoisers[e].run({
        sample: { dtype: 'float32', shape: [2 * n, ...this.latentShape], data: x },
        timestep: { dtype: 'float32', shape: [2 * n], data: new Float32Array(2 * n).fill(t) }, context, condition,
      });
      return out.prediction.data as Float32Array;
    };
    const boundary = g.boundary ?? defaultExpertBoundary(cfg);
    const model = wanExpertModel({ high_noise: { call: call('high_noise'), cfgScale: g.cfgScale }, low_noise: { call: call('low_noise'), cfgScale: g.cfgScale } }, boundary, g.cfgScale);
    const latents = await sampleFlowEuler(model, { sigmas: wanSigmas(g.steps, g.shift ?? defaultSampleShift(cfg)), guidance: { mode: 'cfg', scale: g.cfgScale }, seed: g.seed, perImage: per, batch: n });
    const video = (await this.decoder.run({ latents: { dtype: 'float32', shape: [n, ...this.latentShape], data: latents } })).video.data as Float32Array;
    const clipValues = 3 * this.frames * TINY_WAN_SIZE * TINY_WAN_SIZE;
    // planarToFrames reads [−1, 1]; the decoder gave [0, 1].
    const frames = Array.from({ length: n }, (_, i) => planarToFrames(video.subarray(i * clipValues, (i + 1) * clipValues).map((v) => 2 * v - 1), this.frames, TINY_WAN_SIZE));
    return { frames, latents };
  }
}

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

export const TINY_WAN_EVAL_DEFAULTS = { samples: 2, steps: 20, cfgScale: 5, frames: 17, seed: 1000 };

export interface TinyWanEvalResult { clips: number; shapeAccuracy: number; colorAccuracy: number; directionAccuracy: number; backgroundAccuracy: number; firstFrames: Uint8Array[] }

export async function evaluateTinyWan(o: TinyWanEvalOptions, log: (line: string) => void = () => {}): Promise<TinyWanEvalResult> {
  const model = await loadTinyWan(o.dir);
  const rt = new Runtime({ threads: o.threads ?? 0 });
  try {
    const sampler = await TinyWanSampler.create(rt, model, o.samples, o.frames);
    let shapeOk = 0, colorOk = 0, dirOk = 0, bgOk = 0, count = 0;
    const firstFrames: Uint8Array[] = [];
    for (const [i, p] of videoEvalPrompts().slice(0, o.prompts).entries()) {
      const first = o.i2v ? Array.from({ length: o.samples }, (_, k) => renderClip(sampleClip(o.seed * 7919 + i * 31 + k, { shapes: [p.shape], colors: [p.color], backgrounds: [p.background], directions: [p.direction], frames: [o.frames] }), TINY_WAN_SIZE)[0]) : undefined;
      const v = await sampler.generate({ prompt: p.prompt, seed: o.seed + i, steps: o.steps, cfgScale: o.cfgScale, firstFrames: first });
      const seen: string[] = [];
      let s = 0, c = 0, d = 0;
      for (const frames of v.frames) {
        const a = analyzeClip(frames, TINY_WAN_SIZE);
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
    await rt.close();
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
  const t0 = Date.now();
  console.log(`eval:tiny-wan ${o.dir}: ${o.prompts ?? videoEvalPrompts().length} prompts × ${o.samples} clips of ${o.frames} frames, ${o.i2v ? 'image' : 'text'} to video, flow Euler ${o.steps} steps, CFG ${o.cfgScale}`);
  const r = await evaluateTinyWan(o, (line) => console.log(line));
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(`clips: ${r.clips}; shape right ${pct(r.shapeAccuracy)}, colour right ${pct(r.colorAccuracy)}, direction right ${pct(r.directionAccuracy)}, background right ${pct(r.backgroundAccuracy)} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
  const pass = r.shapeAccuracy >= 0.8 && r.colorAccuracy >= 0.8 && r.directionAccuracy >= 0.8;
  console.log(pass ? 'PASS (≥ 80% shape, colour and direction)' : 'BELOW TARGET (80% shape, colour and direction)');
  process.exitCode = pass ? 0 : 1;
}
