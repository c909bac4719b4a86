// `npm run pretrain:tiny-wan`: pretrains the tiny Wan 2.2 I2V-architecture model (kernels/wan/tiny/model.ts)
// on the moving-shapes world with the project's own engine, and writes the files a user would have —
// two Wan-format expert transformers (high/low noise), a umT5 encoder with transformers' names, a Wan
// 2.1-named causal VAE and its own tokenizer.json — side by side in assets/tiny-wan/.
//   stage 0  tokenizer.json: a T5-layout SentencePiece Unigram over the world's captions
//   stage A  the causal VAE on squared error + KL, on crops of short clips (it is convolutional); the
//            posterior starts narrow (vaeInitLogVar) so the decoder learns from the latents, not noise;
//            it ends by logging its round trip of world clips as the clip analyzer reads it (the ceiling
//            of eval:tiny-wan), before stage B spends its time
//   cache    encoder means of world clips (no stars: the quickstart's concept) and of their I2V condition
//            (the first frame followed by zero frames, as Wan's I2V pipeline encodes it); the per-channel
//            mean/std of the latents become the VAE's latent statistics (file metadata)
//   stage B  umT5-tiny and the transformer from scratch, jointly, on Wan's flow-matching loss with
//            noise levels uniform and shifted towards high noise (ditShift), plus an auxiliary head (not
//            saved) that names shape, colour, background and direction from the umT5 features; half the
//            clips get the first-frame condition (I2V), the others a zero condition (text only), and
//            captions drop out for CFG. One model serves both experts: the two expert files start the
//            same, as an I2V LoRA's two experts then diverge.
//   stage C  the stage-B transformer deepened by identity blocks (kernels/train/grow.ts) and trained on,
//            umT5 and head with it, on its own warmup and cosine
//   stage D  the grown model trained on at the same size in cosine cycles (warm restarts), one per entry
//            of polishSteps, each from a new warmup
// Progress is checkpointed under the scratch folder, so a killed run continues where it stopped; the
// files are named after the options and the architecture they depend on, so a changed recipe starts afresh.
// The committed model: these defaults (×4-space VAE, 4000 VAE steps; stage B 4 blocks, 10000 steps over
// 8192 cached clips, 68 min; stage C to 8 blocks, 6000 steps, 84 min; stage D 2000 steps from lr 2.5e-4,
// 33 min — each on one thread beside another run), its stage A the earlier run's VAE as shipped (the same
// recipe's weights, read back from the F16 file). Stage A's round trip reads shape 88%, colour 95%,
// direction 100%; eval:tiny-wan reads shape 31%, colour 83%, direction 71% (with --i2v 1: 56%, 94%, 94%).
// Stage C alone read 30%, 79%, 63% (--i2v 1: 52%, 94%, 93%), flow loss 0.110. Stage B alone read 30%, 71%,
// 47% (--i2v 1: 45%, 91%, 82%), flow loss 0.134; 6000 steps over 2048 clips 29%, 53%, 30%; the ×8 VAE
// before that 27%, 37%, 14%. Text-to-video first frames are still fragments of the asked colour, and
// shape sits at chance there. What did not move shape: a second stage-D cycle (2000 steps from 1.25e-4:
// 30%, 85%, 72%; --i2v 1: 49%, 97%, 97%); stage D with the width split into 3 heads of 32 instead of 6 of
// 16, so RoPE has 5 frequencies per spatial axis instead of one that turns (35%, 68%, 40%; --i2v 1: 53%,
// 80%, 91%); CFG 2 or 8 and 60 steps at sampling. From a first frame, larger shapes of a kind read no
// better than smaller ones, and misread shapes read mostly as triangles: the later frames' lumps.
//   npx tsx kernels/wan/tiny/pretrain.ts [--vae-steps N] [--dit-steps N] [--out DIR] [--scratch DIR] [--threads N]
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { input, type HostTensor } from '../../tensor';
import { abs, add, exp, maximum, minimum, mul, square, sub } from '../../ops/elementwise';
import { reduceMean } from '../../ops/shape-and-reduce';
import { Builder } from '../../nn/builder';
import { HostWeights } from '../../nn/weights';
import { compileGraph } from '../../compile';
import { Runtime } from '../../runtime';
import { TrainStep } from '../../train/step';
import { adamw } from '../../optim/adamw';
import { Rng } from '../../random';
import { growBlocks, wanGrowth } from '../../train/grow';
import type { WanTransformerConfig } from '../config';
import { finishedPhase, loadTrainState, phaseMetadata, startPhase, type PretrainPhase, parsePretrainArgs, polishCycleOptions, polishCycles, pretrainLog, pretrainSigma, saveTrainState } from '../../train/pretrain-cli';
import { flowTrainingPair, batchLoss, perSampleLoss } from '../../losses';
import { initialValue, TrainableWeights, warmupCosine } from '../../sd/tiny/train-params';
import { attributeHeadLoss } from '../../sd/tiny/train-diffusion';
import { ALL_SHAPES, COLOR_NAMES, WORLD_SHAPES } from '../../sd/tiny/world';
import { buildUnigramTokenizerJson } from '../../text/unigram-tokenizer-json';
import { T5PromptTokenizer } from '../../text/t5-tokenizer';
import { wanPromptTokens, wanTextFeatures } from '../umt5';
import { tokenGrid, wanRope, wanTransformer } from '../transformer';
import { checkClipFrames, vaeSpatialFactor, wanVaeDecode, wanVaeEncode, type WanVaeConfig } from '../vae';
import { vaeRoundTrip } from './vae-eval';
import { DIRECTIONS, clipCaption, framesToPlanar, parseClipCaption, renderClip, sampleClip } from './world';
import { TINY_UMT5, TINY_WAN_DIT, TINY_WAN_FILES, TINY_WAN_SIZE, TINY_WAN_TEXT_LEN, TINY_WAN_VAE_BASE, firstFrameMask } from './model';

export const TINY_WAN_ROOT = resolve(import.meta.dirname ?? '.', '../../../assets/tiny-wan');

export interface TinyWanPretrainOptions {
  seed: number;
  vaeSteps: number;
  vaeBatch: number;
  /** Frames of the VAE's training clips (1 + 4n) and their crop side: the VAE is convolutional. */
  vaeFrames: number;
  vaeCrop: number;
  vaeLr: number;
  vaeKlWeight: number;
  /**
   * AdamW's decoupled weight decay on the VAE. Its residual branches start from RMS norms, so nothing
   * bounds the convs on the skip path: Adam's steps grow them, the stream reaches rms in the thousands
   * by the decoder's last level (measured), the residual branches' O(1) outputs no longer count and
   * the head's norm reads a near-constant direction — flat frames. Decay holds the weights' scale.
   */
  vaeWeightDecay: number;
  /** Weight of the L1 term beside the squared error in the VAE's reconstruction loss. */
  vaeL1Weight: number;
  /** Starting log-variance of the encoder's posterior (the moments conv's bias for its second half). */
  vaeInitLogVar: number;
  /**
   * 1: the VAE's time convs start as identities (pass frames through); 0: random like the others.
   * Off by default: measured over 360 steps it sat longer at a flat colour (squared error 0.44 against 0.26).
   */
  vaeTimeConvIdentity: number;
  /** World clips round-tripped through the finished VAE for the log (shape/colour/direction still read). */
  vaeCheckClips: number;
  /** Frames of the clips the transformer learns on (1 + 4n; 9 = the family's tiny preview length, 3 latent frames). */
  frames: number;
  /** World clips whose latents are cached for stage B. */
  cacheSize: number;
  ditSteps: number;
  ditBatch: number;
  ditLr: number;
  ditWarmup: number;
  captionDropout: number;
  /** Weight of the auxiliary attribute head's cross-entropy (0: no head). */
  attributeWeight: number;
  /** Noise levels drawn uniform and shifted by this (σ' = sσ/(1 + (s − 1)σ)) towards high noise, where the sampler's shifted schedule spends its steps; 0: logit-normal. */
  ditShift: number;
  /** Share of clips trained without the first-frame condition (text to video). */
  conditionDropout: number;
  /**
   * Stage C (0 steps: none): the stage-B transformer deepened by growBlocks blocks that start as
   * identities (kernels/train/grow.ts), trained on for growSteps with its own warmup and cosine. More
   * steps of the 4-block model had stopped moving shape (30% text to video at 6000 and at 10000 steps).
   */
  growBlocks: number;
  growSteps: number;
  growLr: number;
  growWarmup: number;
  /**
   * Stage D (no steps: none): the finished transformer (stage C's, else stage B's) trained on at the same
   * size in cosine cycles (warm restarts, polishCycles), one per entry of polishSteps, each from a new
   * warmup; cycle k starts at polishLr × polishDecay^(k − 1) — what the tiny klein's stage D did for its shape.
   */
  polishSteps: number[];
  polishLr: number;
  polishDecay: number;
  polishWarmup: number;
  saveEvery: number;
  threads: number;
}

export const TINY_WAN_DEFAULTS: TinyWanPretrainOptions = {
  seed: 20251202, vaeSteps: 4000, vaeBatch: 4, vaeFrames: 9, vaeCrop: 32, vaeLr: 5e-3, vaeKlWeight: 1e-6, vaeWeightDecay: 0, vaeL1Weight: 0, vaeInitLogVar: -10, vaeTimeConvIdentity: 0, vaeCheckClips: 64,
  frames: 9, cacheSize: 8192, ditSteps: 10000, ditBatch: 16, ditLr: 1e-3, ditWarmup: 100,
  captionDropout: 0.1, attributeWeight: 0.1, ditShift: 3, conditionDropout: 0.5,
  growBlocks: 4, growSteps: 6000, growLr: 5e-4, growWarmup: 200,
  polishSteps: [2000], polishLr: 2.5e-4, polishDecay: 0.5, polishWarmup: 100, saveEvery: 200, threads: 0,
};

/** The transformer the files hold: TINY_WAN_DIT, deepened by stage C when it runs. */
export const tinyWanDitConfig = (o: Pick<TinyWanPretrainOptions, 'growBlocks' | 'growSteps'>): WanTransformerConfig =>
  (o.growSteps > 0 ? { ...TINY_WAN_DIT, numLayers: TINY_WAN_DIT.numLayers + o.growBlocks } : TINY_WAN_DIT);

type Log = (line: string) => void;

/** Wall and CPU seconds per step since the last call (CPU time tells speed apart from other processes' load). */
function stepTimer() {
  let wall = Date.now(), cpu = process.cpuUsage();
  return (steps: number) => {
    const c = process.cpuUsage(cpu), w = Date.now() - wall;
    wall = Date.now(); cpu = process.cpuUsage();
    return `${(w / 1000 / steps).toFixed(3)} s/step (cpu ${((c.user + c.system) / 1e6 / steps).toFixed(3)})`;
  };
}
type State = Record<string, HostTensor>;

const VAE_OPTIONS = ['seed', 'vaeSteps', 'vaeBatch', 'vaeFrames', 'vaeCrop', 'vaeLr', 'vaeKlWeight', 'vaeWeightDecay', 'vaeL1Weight', 'vaeInitLogVar', 'vaeTimeConvIdentity'] as const;
const DIT_OPTIONS = ['frames', 'cacheSize', 'ditSteps', 'ditBatch', 'ditLr', 'ditWarmup', 'captionDropout', 'attributeWeight', 'ditShift', 'conditionDropout'] as const;
const GROW_OPTIONS = ['growBlocks', 'growSteps', 'growLr', 'growWarmup'] as const;
const POLISH_OPTIONS = ['polishSteps', 'polishLr', 'polishWarmup', 'polishDecay'] as const;
type StageOptions = Omit<TinyWanPretrainOptions, 'polishDecay'> & { polishDecay?: number };

/**
 * A short name for the options a stage's files depend on: a scratch folder can hold the files of an
 * earlier recipe (the default one does), and a run must not pick up a VAE, latent cache or DiT progress
 * that another recipe made.
 */
export function stageKey(o: TinyWanPretrainOptions, stage: 'vae' | 'dit' | 'grow' | 'polish', cycle = 1): string {
  if (stage === 'polish') return optionsKey(polishCycleOptions(o, cycle), [...VAE_OPTIONS, ...DIT_OPTIONS, ...GROW_OPTIONS, ...POLISH_OPTIONS], true);
  return optionsKey(o, stage === 'vae' ? VAE_OPTIONS : stage === 'dit' ? [...VAE_OPTIONS, ...DIT_OPTIONS] : [...VAE_OPTIONS, ...DIT_OPTIONS, ...GROW_OPTIONS], stage !== 'vae');
}

function optionsKey(o: StageOptions, keys: readonly (keyof StageOptions)[], withDit: boolean): string {
  // The architectures count too: a VAE of another layout must not be picked up from the scratch folder.
  const arch = withDit ? [TINY_WAN_VAE_BASE, TINY_WAN_DIT] : [TINY_WAN_VAE_BASE];
  // An option a stage does not use is absent (polishCycleOptions leaves cycle 1's decay out).
  const values = keys.filter((k) => o[k] !== undefined).map((k) => o[k]);
  return createHash('sha256').update(JSON.stringify([...values, ...arch])).digest('hex').slice(0, 10);
}

/** torch-style initial values, except Wan's RMS_norm gammas (shaped [C, 1, 1, 1]) which start at one. */
function initialValues(params: Record<string, { shape: readonly number[] }>, seed: number): State {
  return Object.fromEntries(Object.entries(params).map(([k, t]) => {
    if (k.endsWith('.gamma')) return [k, { dtype: 'float32', shape: [...t.shape], data: new Float32Array(t.shape.reduce((a, b) => a * b, 1)).fill(1) }];
    return [k, initialValue(k, t.shape, seed)];
  }));
}

/** Every caption of the world (stars included) and the words the video quickstart adds. */
export function tinyWanCorpus(): string[] {
  const out: string[] = [];
  for (const shape of ALL_SHAPES) for (const color of COLOR_NAMES) for (const background of COLOR_NAMES) {
    if (background === color) continue;
    for (const direction of DIRECTIONS) out.push(clipCaption({ shape, color, background, direction }));
  }
  out.push('a [trigger] spinning bouncing growing', 'sks');
  return out;
}

/** Stage 0: the tokenizer (fits TINY_UMT5's vocabulary). */
export function tinyWanTokenizerJson(): object {
  const json = buildUnigramTokenizerJson(tinyWanCorpus());
  const size = new T5PromptTokenizer(json).vocabSize;
  if (size > TINY_UMT5.vocabSize) throw new Error(`tiny Wan tokenizer: ${size} pieces exceed umT5-tiny's vocabulary of ${TINY_UMT5.vocabSize}`);
  return json;
}

/** What the auxiliary head names: [offset, count] per group — shape, colour, background, direction. */
export const CLIP_ATTRIBUTE_GROUPS: [number, number][] = [WORLD_SHAPES.length, COLOR_NAMES.length, COLOR_NAMES.length, DIRECTIONS.length]
  .map((n, i, all): [number, number] => [all.slice(0, i).reduce((a, b) => a + b, 0), n]);
export const CLIP_ATTRIBUTE_COUNT = WORLD_SHAPES.length + 2 * COLOR_NAMES.length + DIRECTIONS.length;

/** One-hot targets of a world caption ("a red circle moving left on a blue background"); undefined for the empty prompt. */
export function clipCaptionAttributes(caption: string): Float32Array | undefined {
  if (caption === '') return undefined;
  const c = parseClipCaption(caption);
  const shape = c?.shape ? WORLD_SHAPES.indexOf(c.shape) : -1;
  // Bouncing is the video quickstart's new motion, never a pretraining caption.
  if (!c || shape < 0 || c.motion) throw new Error(`pretrain:tiny-wan: '${caption}' is not a caption of the moving-shapes world`);
  const out = new Float32Array(CLIP_ATTRIBUTE_COUNT);
  const index = [shape, COLOR_NAMES.indexOf(c.color), COLOR_NAMES.indexOf(c.background), DIRECTIONS.indexOf(c.direction)];
  CLIP_ATTRIBUTE_GROUPS.forEach(([at], g) => { out[at + index[g]] = 1; });
  return out;
}

/** `count` random world clips as [count, 3, F, size, size] in [−1, 1] (optionally cropped to `crop`), with captions. */
export function clipBatch(rng: Rng, count: number, frames: number, opts: { crop?: number; shapes?: typeof WORLD_SHAPES } = {}): { video: Float32Array; captions: string[] } {
  const size = TINY_WAN_SIZE, side = opts.crop ?? size;
  const video = new Float32Array(count * 3 * frames * side * side);
  const full = new Float32Array(3 * frames * size * size);
  const captions: string[] = [];
  for (let i = 0; i < count; i++) {
    const clip = sampleClip(rng, { shapes: opts.shapes ?? WORLD_SHAPES, frames: [frames] });
    captions.push(clipCaption(clip));
    framesToPlanar(renderClip(clip, size), size, full);
    const x0 = rng.int(0, size - side + 1), y0 = rng.int(0, size - side + 1);
    for (let c = 0; c < 3 * frames; c++) for (let y = 0; y < side; y++) {
      const src = c * size * size + (y0 + y) * size + x0;
      video.set(full.subarray(src, src + side), ((i * 3 * frames + c) * side + y) * side);
    }
  }
  return { video, captions };
}

/**
 * A time conv [O, C, 3, 1, 1] that starts by passing frames through (the initialisations in Wan's
 * Resample, `init_weight`/`init_weight2`): the encoder's stride-2 conv keeps the middle frame of each
 * window, the decoder's frame-doubling conv copies the current frame into both new frames.
 */
function identityTimeConv(t: HostTensor): void {
  const [out, c] = t.shape, w = t.data as Float32Array;
  w.fill(0);
  const tap = out === c ? 1 : 2;
  for (let o = 0; o < out; o++) w[(o * c + (o % c)) * 3 + tap] = 1;
}

/** Stage A: the causal VAE (wan_2.1_vae names), on crops of short clips of all four shapes (it stays frozen for the star). */
export async function pretrainVae(rt: Runtime, o: TinyWanPretrainOptions, scratch: string, log: Log): Promise<State> {
  const cfg = TINY_WAN_VAE_BASE;
  const done = join(scratch, `vae-${stageKey(o, 'vae')}.safetensors`);
  const cached = await loadTrainState(done);
  if (cached) { log(`stage A: weights from ${done}`); return cached.tensors; }
  const B = o.vaeBatch, F = o.vaeFrames, side = o.vaeCrop, s = vaeSpatialFactor(cfg);
  const T = checkClipFrames(cfg, F), l = side / s;
  const weights = new TrainableWeights();
  const b = new Builder(weights);
  const video = input('video', [B, 3, F, side, side]);
  const noise = input('noise', [B, cfg.zDim, T, l, l]);
  const enc = wanVaeEncode(b, cfg, video, { chunked: false });
  const lv = minimum(maximum(enc.logVar, -30), 20);
  const recon = wanVaeDecode(b, cfg, add(enc.mean, mul(exp(mul(lv, 0.5)), noise)));
  const diff = sub(recon, video);
  // Squared error alone: with the L1 term beside it the tiny VAE sat for hundreds of steps at a constant
  // mean colour (measured on one fixed batch: squared error 0.06 after 100 steps alone, several times
  // that with L1 + squared error).
  const mse = reduceMean(square(diff));
  const reconstruction = o.vaeL1Weight > 0 ? add(mse, mul(reduceMean(abs(diff)), o.vaeL1Weight)) : mse;
  const kl = mul(reduceMean(sub(add(square(enc.mean), exp(lv)), add(lv, 1))), 0.5);
  const params = weights.record();
  const ts = await TrainStep.create(rt, { inputs: [video, noise], params, loss: add(reconstruction, mul(kl, o.vaeKlWeight)), optimizer: adamw({ weightDecay: o.vaeWeightDecay }), maxGradNorm: 1, extraOutputs: { reconstruction } });
  const progress = join(scratch, `vae-progress-${stageKey(o, 'vae')}.safetensors`);
  const resumed = await loadTrainState(progress);
  let start = 1;
  if (resumed) { await ts.load(resumed.tensors); start = Number(resumed.metadata.step) + 1; log(`stage A: resuming at step ${start}`); }
  else {
    // A posterior that starts at unit variance buries the latent means (rms ~1 early on) in sampling
    // noise; the tiny KL weight barely moves it in a short run (measured: the committed VAE's log-variance
    // ended at −0.24 with means of rms 3.5), so the decoder learned to decode noise-blurred latents and
    // drew flat frames and blobs. Start it small instead: the KL term can still widen it.
    const init = initialValues(params, o.seed), bias = init['conv1.bias'].data as Float32Array;
    bias.fill(o.vaeInitLogVar, cfg.zDim);
    if (o.vaeTimeConvIdentity) for (const [k, t] of Object.entries(init)) if (k.endsWith('time_conv.weight')) identityTimeConv(t);
    await ts.init(init);
  }
  let smooth = 0;
  const timer = stepTimer();
  for (let step = start; step <= o.vaeSteps; step++) {
    const rng = new Rng(o.seed).fork(`vae-step-${step}`);
    const batch = clipBatch(rng, B, F, { crop: side, shapes: ALL_SHAPES });
    const lr = warmupCosine(step, o.vaeSteps, o.vaeLr, 30);
    const r = await ts.step([{
      video: { dtype: 'float32', shape: [B, 3, F, side, side], data: batch.video },
      noise: { dtype: 'float32', shape: [B, cfg.zDim, T, l, l], data: rng.fillNormal(new Float32Array(B * cfg.zDim * T * l * l)) },
    }], lr, step);
    const rec = r.extra.reconstruction.data[0] as number;
    smooth = step === start ? rec : 0.95 * smooth + 0.05 * rec;
    if (step % 20 === 0 || step === o.vaeSteps) log(`stage A step ${step}/${o.vaeSteps} recon ${smooth.toFixed(4)} grad norm ${r.gradNorm.toPrecision(3)} ${timer(step % 20 || 20)}`);
    if (step % o.saveEvery === 0 && step < o.vaeSteps) await saveTrainState(progress, await ts.read(true), { step: String(step) });
  }
  const out = await ts.read(false);
  await ts.dispose();
  await saveTrainState(done, out);
  // The round trip bounds what eval:tiny-wan can reach: logged now, so a weak VAE shows before stage B.
  if (o.vaeCheckClips > 0) {
    const r = await vaeRoundTrip(rt, out, cfg, { clips: o.vaeCheckClips, frames: o.frames, seed: 7 });
    const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
    log(`stage A round trip of ${r.clips} world clips: MSE ${r.mse.toFixed(4)} (first frame ${r.frameMse[0].toFixed(4)}); read as shape ${pct(r.shape)}, colour ${pct(r.color)}, background ${pct(r.background)}, direction ${pct(r.direction)}`);
  }
  return out;
}

export interface LatentCache {
  /** Normalised latents [N, 16, T, h, w]. */
  latents: Float32Array;
  /** Normalised latents of (first frame, zero frames…) [N, 16, T, h, w]: the I2V image latent. */
  firstFrame: Float32Array;
  captions: string[];
  mean: number[];
  std: number[];
}

/** Encoder means of world clips (no stars) and of their I2V conditions; per-channel statistics normalise both. */
async function cacheLatents(rt: Runtime, vae: State, o: TinyWanPretrainOptions, cachePath: string, log: Log): Promise<LatentCache> {
  const cfg = TINY_WAN_VAE_BASE, size = TINY_WAN_SIZE, F = o.frames, batch = 8;
  // A resumed run skips the encoding: the cache is kept beside the progress files.
  const saved = await loadTrainState(cachePath);
  if (saved) {
    log(`latent cache: from ${cachePath}`);
    return {
      latents: saved.tensors.latents.data as Float32Array, firstFrame: saved.tensors.firstFrame.data as Float32Array,
      captions: JSON.parse(saved.metadata.captions), mean: JSON.parse(saved.metadata.mean), std: JSON.parse(saved.metadata.std),
    };
  }
  const video = input('video', [2 * batch, 3, F, size, size]);
  const { mean } = wanVaeEncode(new Builder(new HostWeights(new Map(Object.entries(vae)), 'vae')), cfg, video, { chunked: false });
  const session = await rt.load(compileGraph([video], { mean }, { name: 'tiny_wan_cache' }));
  const per = mean.shape.slice(1).reduce((a, b) => a * b, 1);
  const raw = new Float32Array(o.cacheSize * per), rawFirst = new Float32Array(o.cacheSize * per);
  const captions: string[] = [];
  const rng = new Rng(o.seed).fork('latent-cache');
  const clipValues = 3 * F * size * size, frame = size * size;
  for (let at = 0; at < o.cacheSize; at += batch) {
    const b = clipBatch(rng, batch, F);
    const both = new Float32Array(2 * batch * clipValues);
    both.set(b.video);
    // The I2V condition: the first frame, then zero frames (Wan's pipeline encodes exactly this).
    for (let i = 0; i < batch; i++) for (let c = 0; c < 3; c++) {
      const src = i * clipValues + c * F * frame;
      both.set(b.video.subarray(src, src + frame), (batch + i) * clipValues + c * F * frame);
    }
    const out = (await session.run({ video: { dtype: 'float32', shape: [2 * batch, 3, F, size, size], data: both } })).mean.data as Float32Array;
    const n = Math.min(batch, o.cacheSize - at);
    raw.set(out.subarray(0, n * per), at * per);
    rawFirst.set(out.subarray(batch * per, (batch + n) * per), at * per);
    captions.push(...b.captions.slice(0, n));
    if ((at / batch) % 32 === 0) log(`latent cache: ${at + n}/${o.cacheSize} clips`);
  }
  const C = cfg.zDim, L = per / C;
  const stat = { mean: [] as number[], std: [] as number[] };
  for (let c = 0; c < C; c++) {
    let s = 0, s2 = 0;
    for (let i = 0; i < o.cacheSize; i++) for (let p = 0; p < L; p++) { const v = raw[i * per + c * L + p]; s += v; s2 += v * v; }
    const n = o.cacheSize * L, m = s / n;
    stat.mean.push(m);
    stat.std.push(Math.sqrt(Math.max(1e-8, s2 / n - m * m)));
  }
  for (const buf of [raw, rawFirst]) for (let i = 0; i < o.cacheSize; i++) for (let c = 0; c < C; c++) for (let p = 0; p < L; p++) {
    const k = i * per + c * L + p;
    buf[k] = (buf[k] - stat.mean[c]) / stat.std[c];
  }
  log(`latent cache: ${o.cacheSize} clips → [${mean.shape.slice(1)}] latents; channel std ${Math.min(...stat.std).toFixed(3)}…${Math.max(...stat.std).toFixed(3)}`);
  const shape = [o.cacheSize, ...mean.shape.slice(1)];
  await saveTrainState(cachePath, { latents: { dtype: 'float32', shape, data: raw }, firstFrame: { dtype: 'float32', shape, data: rawFirst } }, { captions: JSON.stringify(captions), mean: JSON.stringify(stat.mean), std: JSON.stringify(stat.std) });
  return { latents: raw, firstFrame: rawFirst, captions, ...stat };
}

/** umT5-tiny (`text_encoder/…`) and the transformer (`transformer/…`) on the flow loss, for one phase. */
async function trainDiT(rt: Runtime, tok: T5PromptTokenizer, cache: LatentCache, o: TinyWanPretrainOptions, phase: PretrainPhase<WanTransformerConfig>, log: Log): Promise<State> {
  const finished = await finishedPhase(phase, log);
  if (finished) return finished;
  const cfg = phase.cfg;
  const B = o.ditBatch, L = TINY_WAN_TEXT_LEN;
  const s = vaeSpatialFactor(TINY_WAN_VAE_BASE);
  const shape = [B, cfg.outChannels, checkClipFrames(TINY_WAN_VAE_BASE, o.frames), TINY_WAN_SIZE / s, TINY_WAN_SIZE / s];
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const [, , T, h, w] = shape;
  const textW = new TrainableWeights('text_encoder/'), ditW = new TrainableWeights('transformer/'), auxW = new TrainableWeights('aux/');
  const ids = input('ids', [B, L], 'int64'), mask = input('mask', [B, L]);
  const attributeMask = input('attribute_mask', [B, L, 1]), attributes = input('attributes', [B, 1, CLIP_ATTRIBUTE_COUNT]);
  const x0 = input('latents', shape), noise = input('noise', shape), sigmas = input('sigmas', [B]);
  const condition = input('condition', [B, cfg.inChannels - cfg.outChannels, T, h, w]);
  const { noisy, target } = flowTrainingPair(x0, noise, sigmas);
  const context = wanTextFeatures(new Builder(textW), TINY_UMT5, ids, mask);
  const pred = wanTransformer(new Builder(ditW), cfg, {
    latents: noisy, condition, context, timesteps: sigmas, rope: wanRope(cfg, tokenGrid(cfg, shape)),
  });
  const flowLoss = batchLoss(perSampleLoss(pred, target));
  // As for the tiny SD and FLUX: umT5 learns from scratch through cross-attention alone too slowly,
  // so a head (not saved) asks every real token to name the clip's shape, colour, background and
  // direction — umT5 is bidirectional, so every token has seen the whole caption.
  const attributeLoss = attributeHeadLoss(auxW, context, attributes, attributeMask, CLIP_ATTRIBUTE_GROUPS);
  const loss = add(flowLoss, mul(attributeLoss, o.attributeWeight));
  const params = { ...textW.record(), ...ditW.record(), ...auxW.record() };
  const ts = await TrainStep.create(rt, {
    inputs: [ids, mask, x0, noise, sigmas, condition, attributeMask, attributes], params, loss, optimizer: adamw({ weightDecay: 0.01 }), maxGradNorm: 1,
    extraOutputs: { flow_loss: flowLoss, attribute_loss: attributeLoss },
  });
  const start = await startPhase(ts, phase, () => initialValues(params, o.seed), log);
  const encoded = new Map<string, ReturnType<typeof wanPromptTokens>>();
  const encode = (caption: string) => { let e = encoded.get(caption); if (!e) { e = wanPromptTokens(tok, [caption], L); encoded.set(caption, e); } return e; };
  const maskPlane = firstFrameMask(T, h, w), condPer = (cfg.inChannels - cfg.outChannels) * T * h * w;
  let smooth = 0, smoothAttr = 0;
  const timer = stepTimer();
  for (let step = start; step <= phase.steps; step++) {
    const rng = new Rng(o.seed).fork(`${phase.stream}-${step}`);
    const idData = new BigInt64Array(B * L), maskData = new Float32Array(B * L), lat = new Float32Array(B * per), sig = new Float32Array(B);
    const cond = new Float32Array(B * condPer), attrMask = new Float32Array(B * L), attr = new Float32Array(B * CLIP_ATTRIBUTE_COUNT);
    for (let i = 0; i < B; i++) {
      const k = rng.int(0, cache.captions.length);
      lat.set(cache.latents.subarray(k * per, (k + 1) * per), i * per);
      if (rng.uniform() >= o.conditionDropout) {
        cond.set(maskPlane, i * condPer);
        cond.set(cache.firstFrame.subarray(k * per, (k + 1) * per), i * condPer + maskPlane.length);
      }
      const caption = rng.uniform() < o.captionDropout ? '' : cache.captions[k];
      const e = encode(caption);
      idData.set(e.ids.data as BigInt64Array, i * L);
      maskData.set(e.mask.data as Float32Array, i * L);
      const wanted = clipCaptionAttributes(caption);
      if (wanted) { attr.set(wanted, i * CLIP_ATTRIBUTE_COUNT); attrMask.set(e.mask.data as Float32Array, i * L); }
      sig[i] = pretrainSigma(rng, o.ditShift);
    }
    const lr = warmupCosine(step, phase.steps, phase.lr, phase.warmup);
    const r = await ts.step([{
      ids: { dtype: 'int64', shape: [B, L], data: idData }, mask: { dtype: 'float32', shape: [B, L], data: maskData },
      latents: { dtype: 'float32', shape, data: lat },
      noise: { dtype: 'float32', shape, data: rng.fillNormal(new Float32Array(B * per)) },
      sigmas: { dtype: 'float32', shape: [B], data: sig },
      condition: { dtype: 'float32', shape: [B, cfg.inChannels - cfg.outChannels, T, h, w], data: cond },
      attribute_mask: { dtype: 'float32', shape: [B, L, 1], data: attrMask },
      attributes: { dtype: 'float32', shape: [B, 1, CLIP_ATTRIBUTE_COUNT], data: attr },
    }], lr, step);
    const flow = r.extra.flow_loss.data[0] as number, named = r.extra.attribute_loss.data[0] as number;
    smooth = step === start ? flow : 0.98 * smooth + 0.02 * flow;
    smoothAttr = step === start ? named : 0.98 * smoothAttr + 0.02 * named;
    if (step % 20 === 0 || step === phase.steps) log(`${phase.label} step ${step}/${phase.steps} flow loss ${smooth.toFixed(4)} attribute loss ${smoothAttr.toFixed(3)} lr ${lr.toExponential(2)} ${timer(step % 20 || 20)}`);
    if (step % o.saveEvery === 0 && step < phase.steps) await saveTrainState(phase.progress, await ts.read(true), { step: String(step), ...phaseMetadata(phase) });
  }
  const weights = await ts.read(false);
  await ts.dispose();
  await saveTrainState(phase.done, weights, phaseMetadata(phase));
  return weights;
}

/** Stage B, then (growSteps > 0) stage C, then stage D's cycles: the weights the files are written from. */
async function pretrainDiT(rt: Runtime, tok: T5PromptTokenizer, cache: LatentCache, o: TinyWanPretrainOptions, scratch: string, log: Log): Promise<State> {
  const b = stageKey(o, 'dit');
  const base = await trainDiT(rt, tok, cache, o, {
    label: 'stage B', stream: 'dit-step', cfg: TINY_WAN_DIT, steps: o.ditSteps, lr: o.ditLr, warmup: o.ditWarmup,
    progress: join(scratch, `dit-progress-${b}.safetensors`), done: join(scratch, `dit-${b}.safetensors`),
  }, log);
  const grown = o.growSteps <= 0 ? base : await growDiT(rt, tok, cache, o, scratch, base, log);
  let weights = grown;
  for (const { cycle, steps, lr } of polishCycles(o.polishSteps, o.polishLr, o.polishDecay)) {
    const d = stageKey(o, 'polish', cycle), from = weights;
    weights = await trainDiT(rt, tok, cache, o, {
      label: cycle === 1 ? 'stage D' : `stage D cycle ${cycle}`, stream: cycle === 1 ? 'stage-D-step' : `stage-D${cycle}-step`, cfg: tinyWanDitConfig(o), steps, lr, warmup: o.polishWarmup,
      progress: join(scratch, `polish-progress-${d}.safetensors`), done: join(scratch, `polished-${d}.safetensors`),
      init: () => from,
    }, log);
  }
  return weights;
}

/** Stage C: stage B's transformer deepened by identity blocks, trained on. */
async function growDiT(rt: Runtime, tok: T5PromptTokenizer, cache: LatentCache, o: TinyWanPretrainOptions, scratch: string, base: State, log: Log): Promise<State> {
  const cfg = tinyWanDitConfig(o), c = stageKey(o, 'grow');
  log(`stage C: ${TINY_WAN_DIT.numLayers} blocks grown to ${cfg.numLayers}`);
  return trainDiT(rt, tok, cache, o, {
    label: 'stage C', stream: 'stage-C-step', cfg, steps: o.growSteps, lr: o.growLr, warmup: o.growWarmup,
    progress: join(scratch, `grow-progress-${c}.safetensors`), done: join(scratch, `grown-${c}.safetensors`),
    init: (fresh) => growBlocks(base, fresh, wanGrowth('transformer/', TINY_WAN_DIT.numLayers)),
  }, log);
}

/** The tiny VAE config with the latent statistics a VAE file carries in its metadata. */
export function tinyWanVaeConfig(metadata: Record<string, string>): WanVaeConfig {
  const parse = (key: string) => {
    const v = metadata[key] ? JSON.parse(metadata[key]) : undefined;
    if (!Array.isArray(v) || v.length !== TINY_WAN_VAE_BASE.zDim) throw new Error(`tiny Wan VAE: metadata ${key} is not ${TINY_WAN_VAE_BASE.zDim} numbers`);
    return v as number[];
  };
  return { ...TINY_WAN_VAE_BASE, latentMean: parse('loragraph_latent_mean'), latentStd: parse('loragraph_latent_std') };
}

/** Runs every stage and writes the five files into `out`. */
export async function pretrainTinyWan(o: TinyWanPretrainOptions, out: string, scratch: string, log: Log): Promise<void> {
  mkdirSync(scratch, { recursive: true });
  mkdirSync(out, { recursive: true });
  checkClipFrames(TINY_WAN_VAE_BASE, o.frames);
  const tokenizerJson = tinyWanTokenizerJson();
  const tok = new T5PromptTokenizer(tokenizerJson);
  const rt = new Runtime({ threads: o.threads });
  try {
    const vae = await pretrainVae(rt, o, scratch, log);
    const cache = await cacheLatents(rt, vae, o, join(scratch, `latent-cache-${stageKey(o, 'vae')}-${o.frames}f-${o.cacheSize}.safetensors`), log);
    const dit = await pretrainDiT(rt, tok, cache, o, scratch, log);
    const pick = (prefix: string) => Object.fromEntries(Object.entries(dit).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    const meta = { loragraph_pretrain: JSON.stringify(o), loragraph_architecture: 'loragraph-tiny-wan2.2-i2v' };
    const ditConfig = tinyWanDitConfig(o);
    const dm = { ...meta, loragraph_num_heads: String(ditConfig.numHeads), loragraph_config: JSON.stringify(ditConfig), loragraph_text_length: String(TINY_WAN_TEXT_LEN) };
    const transformer = pick('transformer/');
    await saveTrainState(join(out, TINY_WAN_FILES.high), transformer, { ...dm, loragraph_expert: 'high_noise' }, 'F16');
    await saveTrainState(join(out, TINY_WAN_FILES.low), transformer, { ...dm, loragraph_expert: 'low_noise' }, 'F16');
    await saveTrainState(join(out, TINY_WAN_FILES.textEncoder), pick('text_encoder/'), { ...meta, loragraph_config: JSON.stringify(TINY_UMT5), loragraph_text_length: String(TINY_WAN_TEXT_LEN) }, 'F16');
    await saveTrainState(join(out, TINY_WAN_FILES.vae), vae, {
      ...meta, loragraph_config: JSON.stringify({ ...TINY_WAN_VAE_BASE, latentMean: cache.mean, latentStd: cache.std }),
      loragraph_latent_mean: JSON.stringify(cache.mean), loragraph_latent_std: JSON.stringify(cache.std),
    }, 'F16');
    writeFileSync(join(out, `${TINY_WAN_FILES.tokenizer}.tmp`), `${JSON.stringify(tokenizerJson)}\n`);
    renameSync(join(out, `${TINY_WAN_FILES.tokenizer}.tmp`), join(out, TINY_WAN_FILES.tokenizer));
    log(`wrote ${Object.values(TINY_WAN_FILES).join(', ')} to ${out}`);
  } finally {
    await rt.close();
  }
}

export const parseArgs = (argv: readonly string[]) => parsePretrainArgs(argv, TINY_WAN_DEFAULTS, TINY_WAN_ROOT, '/tmp/loragraph-tiny-wan-pretrain');

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { o, out, scratch } = parseArgs(process.argv.slice(2));
  const log = pretrainLog();
  log(`pretraining the tiny Wan: ${JSON.stringify(o)} → ${out} (scratch ${scratch})`);
  await pretrainTinyWan(o, out, scratch, log);
}
