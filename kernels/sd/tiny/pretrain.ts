// `npm run pretrain:tiny`: pretrains the embedded tiny SD 1.x model from its seed on the procedural
// shape world with the project's own engine, and writes assets/tiny/sd-tiny.safetensors (one
// single-file checkpoint) and assets/tiny/model.json. Stage A trains the VAE on all four shapes;
// stage B caches latents of circles, squares and triangles (never stars: the quickstart's new
// concept) and trains UNet + text encoder together on the diffusion loss.
//   npx tsx kernels/sd/tiny/pretrain.ts [--vae-steps N] [--unet-steps N] [--out FILE] [--scratch DIR]
// Progress is checkpointed under the scratch folder, so a killed run continues where it stopped.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HostTensor } from '../../tensor';
import { Runtime } from '../../runtime';
import { TrainStep } from '../../train/step';
import { adamw } from '../../optim/adamw';
import { Rng } from '../../random';
import { ddpmSchedule } from '../../schedules/ddpm';
import { tinyConfig, vaeScale, type SdConfig } from '../config';
import { ClipTokenizer } from '../tokenizer';
import { ALL_SHAPES, WORLD_SHAPES, renderScene, sampleScene } from './world';
import { rgbToPlanar, worldBatch } from './train-data';
import { initialValues, warmupCosine } from './train-params';
import { decoderLossGraph, normalizeLatents, vaeEncodeSession, vaeLossGraph, type VaeLossGraph } from './train-vae';
import { ATTRIBUTE_COUNT, captionAttributes, diffusionLossGraph, TEXT_ENCODER_PREFIX, UNET_PREFIX } from './train-diffusion';
import { tinyCheckpointMetadata, writeTinyCheckpoint } from './train-checkpoint';
import { CONFIG_METADATA_KEY } from '../load';
import { loadTrainState, parsePretrainArgs, pretrainLog, saveTrainState } from '../../train/pretrain-cli';

export const TINY_ROOT = resolve(import.meta.dirname ?? '.', '../../../assets/tiny');
export const TINY_CHECKPOINT = join(TINY_ROOT, 'sd-tiny.safetensors');
export const TINY_TOKENIZER = join(TINY_ROOT, 'tokenizer');

export interface PretrainOptions {
  seed: number;
  /** Stage A: VAE steps, batch, crop side (the VAE is convolutional: crops teach it the same edges 4× cheaper). */
  vaeSteps: number;
  vaeBatch: number;
  vaeCrop: number;
  vaeLr: number;
  vaeKlWeight: number;
  /** Stage A2: decoder-only fine-tuning steps (encoder frozen) and peak LR; batch and crop as stage A. */
  decoderSteps: number;
  decoderLr: number;
  /** Stage B: number of world images whose latents are cached, steps, batch, peak LR, warmup. */
  cacheSize: number;
  unetSteps: number;
  unetBatch: number;
  unetLr: number;
  unetWarmup: number;
  /**
   * After `unetSteps`, continue stage B to each of these step counts in turn, each on a new
   * warmup-cosine schedule over the longer run. The committed model: 1200 steps, then to 4000, then 8000.
   */
  unetExtendTo: number[];
  /** Share of captions replaced by the empty prompt, so classifier-free guidance has an unconditional model. */
  captionDropout: number;
  /** Steps between progress checkpoints in the scratch folder. */
  saveEvery: number;
  threads: number;
}

export const PRETRAIN_DEFAULTS: PretrainOptions = {
  seed: 20240607,
  vaeSteps: 300, vaeBatch: 8, vaeCrop: 32, vaeLr: 2e-3, vaeKlWeight: 1e-5,
  decoderSteps: 400, decoderLr: 1e-3,
  cacheSize: 3072,
  unetSteps: 1200, unetBatch: 16, unetLr: 1e-3, unetWarmup: 60, unetExtendTo: [4000, 8000],
  captionDropout: 0.1,
  saveEvery: 100,
  threads: Number(process.env.LORAGRAPH_THREADS ?? 2),
};

type Log = (line: string) => void;

/** The tiny config for the committed tokenizer's vocabulary. */
export function tinyModelConfig(tokenizer = ClipTokenizer.fromFolder(TINY_TOKENIZER)): SdConfig {
  return tinyConfig(tokenizer.vocabSize);
}

/** One VAE training batch: random crops of rendered scenes of all four shapes. */
function vaeBatch(rng: Rng, o: PretrainOptions, size: number): Float32Array {
  const side = o.vaeCrop;
  if (side > size) throw new Error(`pretrain: VAE crop ${side} is larger than the ${size}-pixel images`);
  const out = new Float32Array(o.vaeBatch * 3 * side * side);
  const full = new Float32Array(3 * size * size);
  for (let i = 0; i < o.vaeBatch; i++) {
    rgbToPlanar(renderScene(sampleScene(rng, { shapes: ALL_SHAPES }), size), size, full);
    const x0 = rng.int(0, size - side + 1);
    const y0 = rng.int(0, size - side + 1);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < side; y++) {
        const src = c * size * size + (y0 + y) * size + x0;
        out.set(full.subarray(src, src + side), ((i * 3 + c) * side + y) * side);
      }
    }
  }
  return out;
}

/** Stage A: the VAE weights (diffusers names), before latent normalisation. */
export async function pretrainVae(rt: Runtime, cfg: SdConfig, o: PretrainOptions, scratch: string, log: Log): Promise<Record<string, HostTensor>> {
  const g = vaeLossGraph(cfg.vae, o.vaeBatch, o.vaeCrop, o.vaeKlWeight);
  return trainVaeStage(rt, cfg, o, scratch, log, { name: 'vae', label: 'stage A', graph: g, steps: o.vaeSteps, lr: o.vaeLr, init: initialValues(g.params, o.seed) });
}

/** Stage A2: the decoder fine-tuned on the frozen encoder's latents; returns the whole VAE. */
export async function finetuneDecoder(rt: Runtime, cfg: SdConfig, vae: Record<string, HostTensor>, o: PretrainOptions, scratch: string, log: Log): Promise<Record<string, HostTensor>> {
  if (o.decoderSteps === 0) return vae;
  const g = decoderLossGraph(cfg.vae, vae, o.vaeBatch, o.vaeCrop);
  const init = Object.fromEntries(Object.keys(g.params).map((k) => [k, vae[k]]));
  const decoder = await trainVaeStage(rt, cfg, o, scratch, log, { name: 'decoder', label: 'stage A2', graph: g, steps: o.decoderSteps, lr: o.decoderLr, init });
  return { ...vae, ...decoder };
}

interface VaeStage { name: string; label: string; graph: VaeLossGraph; steps: number; lr: number; init: Record<string, HostTensor> }

async function trainVaeStage(rt: Runtime, cfg: SdConfig, o: PretrainOptions, scratch: string, log: Log, s: VaeStage): Promise<Record<string, HostTensor>> {
  const done = join(scratch, `${s.name}.safetensors`);
  const cached = await loadTrainState(done);
  if (cached) { log(`${s.label}: weights from ${done}`); return cached.tensors; }
  const g = s.graph;
  const ts = await TrainStep.create(rt, { inputs: [g.images, g.noise], params: g.params, loss: g.loss, optimizer: adamw({ weightDecay: 0 }), maxGradNorm: 1, extraOutputs: { reconstruction: g.reconstruction } });
  const progress = join(scratch, `${s.name}-progress.safetensors`);
  const resumed = await loadTrainState(progress);
  let start = 1;
  if (resumed) { await ts.load(resumed.tensors); start = Number(resumed.metadata.step) + 1; log(`${s.label}: resuming at step ${start}`); }
  else await ts.init(s.init);
  const latent = o.vaeCrop / vaeScale(cfg.vae);
  const t0 = Date.now();
  let smooth = 0;
  for (let step = start; step <= s.steps; step++) {
    const rng = new Rng(o.seed).fork(`${s.name}-step-${step}`);
    const images = vaeBatch(rng, o, cfg.sampleSize);
    const noise = rng.fillNormal(new Float32Array(o.vaeBatch * cfg.vae.latentChannels * latent * latent));
    const lr = warmupCosine(step, s.steps, s.lr, 30);
    const r = await ts.step([{
      images: { dtype: 'float32', shape: [o.vaeBatch, 3, o.vaeCrop, o.vaeCrop], data: images },
      noise: { dtype: 'float32', shape: [o.vaeBatch, cfg.vae.latentChannels, latent, latent], data: noise },
    }], lr, step);
    const rec = r.extra.reconstruction.data[0] as number;
    smooth = step === start ? rec : 0.95 * smooth + 0.05 * rec;
    if (step % 20 === 0 || step === s.steps) log(`${s.label} step ${step}/${s.steps} recon ${smooth.toFixed(4)} lr ${lr.toExponential(2)} ${((Date.now() - t0) / 1000).toFixed(0)}s`);
    if (step % o.saveEvery === 0 && step < s.steps) await saveTrainState(progress, await ts.read(true), { step: String(step) });
  }
  const weights = await ts.read(false);
  await ts.dispose();
  await saveTrainState(done, weights);
  return weights;
}

export interface LatentCache { latents: Float32Array; captions: string[]; channelMean: number[]; channelStd: number[] }

/** Encodes `cacheSize` world images (circle, square, triangle) to VAE means with their captions. */
export async function cacheLatents(rt: Runtime, cfg: SdConfig, vae: Record<string, HostTensor>, o: PretrainOptions, log: Log): Promise<LatentCache> {
  const batch = 32;
  const size = cfg.sampleSize;
  const session = await vaeEncodeSession(rt, cfg.vae, vae, batch, size);
  const rng = new Rng(o.seed).fork('latent-cache');
  const plane = (size / vaeScale(cfg.vae)) ** 2;
  const per = cfg.vae.latentChannels * plane;
  const latents = new Float32Array(o.cacheSize * per);
  const captions: string[] = [];
  const t0 = Date.now();
  for (let at = 0; at < o.cacheSize; at += batch) {
    const b = worldBatch(rng, batch, WORLD_SHAPES, size);
    const out = await session.run({ images: { dtype: 'float32', shape: [batch, 3, size, size], data: b.images } });
    const n = Math.min(batch, o.cacheSize - at);
    latents.set((out.mean.data as Float32Array).subarray(0, n * per), at * per);
    captions.push(...b.captions.slice(0, n));
  }
  const c = cfg.vae.latentChannels;
  const channelMean: number[] = [];
  const channelStd: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < o.cacheSize; i++) {
      const base = i * per + ch * plane;
      for (let p = 0; p < plane; p++) { const v = latents[base + p]; s += v; s2 += v * v; n++; }
    }
    const m = s / n;
    channelMean.push(m);
    channelStd.push(Math.sqrt(Math.max(1e-12, s2 / n - m * m)));
  }
  log(`latent cache: ${o.cacheSize} images in ${((Date.now() - t0) / 1000).toFixed(0)}s, channel means ${channelMean.map((v) => v.toFixed(2))} stds ${channelStd.map((v) => v.toFixed(2))}`);
  // The same normalisation normalizeLatents folds into the VAE: 0.18215·k(z − μ) has unit variance.
  for (let i = 0; i < o.cacheSize; i++) {
    for (let ch = 0; ch < c; ch++) {
      const base = i * per + ch * plane;
      for (let p = 0; p < plane; p++) latents[base + p] = (latents[base + p] - channelMean[ch]) / channelStd[ch];
    }
  }
  return { latents, captions, channelMean, channelStd };
}

/** Stage B: UNet and text encoder weights, keyed `unet/…` and `text_encoder/…`. */
export async function pretrainDiffusion(rt: Runtime, cfg: SdConfig, tokenizer: ClipTokenizer, cache: LatentCache, o: PretrainOptions, scratch: string, log: Log): Promise<Record<string, HostTensor>> {
  const B = o.unetBatch;
  const g = diffusionLossGraph(cfg, B);
  const ts = await TrainStep.create(rt, { inputs: Object.values(g.inputs), params: g.params, loss: g.loss, optimizer: adamw({ weightDecay: 0.01 }), maxGradNorm: 1, extraOutputs: { diffusion_loss: g.diffusionLoss, attribute_loss: g.attributeLoss } });
  const progress = join(scratch, 'diffusion-progress.safetensors');
  const resumed = await loadTrainState(progress);
  let start = 1;
  if (resumed) { await ts.load(resumed.tensors); start = Number(resumed.metadata.step) + 1; log(`stage B: resuming at step ${start}`); }
  else await ts.init(initialValues(g.params, o.seed));
  const schedule = ddpmSchedule({ betaStart: cfg.scheduler.betaStart, betaEnd: cfg.scheduler.betaEnd, numTrainTimesteps: cfg.scheduler.numTrainTimesteps, betaSchedule: cfg.scheduler.betaSchedule });
  const L = cfg.text.maxPositions;
  const side = cfg.sampleSize / vaeScale(cfg.vae);
  const per = cfg.unet.inChannels * side * side;
  const tokenCache = new Map<string, Int32Array>();
  const idsOf = (caption: string) => {
    let ids = tokenCache.get(caption);
    if (!ids) { ids = tokenizer.tokenize(caption).ids; tokenCache.set(caption, ids); }
    return ids;
  };
  const count = cache.captions.length;
  const t0 = Date.now();
  let smooth = 0;
  let smoothAttributes = 0;
  for (let step = start; step <= o.unetSteps; step++) {
    const rng = new Rng(o.seed).fork(`diffusion-step-${step}`);
    const latents = new Float32Array(B * per);
    const ids = new BigInt64Array(B * L);
    const signal = new Float32Array(B);
    const noiseScale = new Float32Array(B);
    const timesteps = new Float32Array(B);
    const attributeMask = new Float32Array(B * L);
    const attributes = new Float32Array(B * ATTRIBUTE_COUNT);
    for (let i = 0; i < B; i++) {
      const k = rng.int(0, count);
      latents.set(cache.latents.subarray(k * per, (k + 1) * per), i * per);
      const caption = rng.uniform() < o.captionDropout ? '' : cache.captions[k];
      const tok = idsOf(caption);
      for (let j = 0; j < L; j++) ids[i * L + j] = BigInt(tok[j]);
      const target = captionAttributes(caption);
      if (target) {
        attributes.set(target, i * ATTRIBUTE_COUNT);
        // From the end-of-text token on, every position has seen the whole caption.
        for (let j = tok.indexOf(tokenizer.eosId); j < L; j++) attributeMask[i * L + j] = 1;
      }
      const t = rng.int(0, cfg.scheduler.numTrainTimesteps);
      const ab = schedule.alphasCumprod[t];
      timesteps[i] = t;
      signal[i] = Math.sqrt(ab);
      noiseScale[i] = Math.sqrt(1 - ab);
    }
    const noise = rng.fillNormal(new Float32Array(B * per));
    const lr = warmupCosine(step, o.unetSteps, o.unetLr, o.unetWarmup);
    const shape = [B, cfg.unet.inChannels, side, side];
    const r = await ts.step([{
      latents: { dtype: 'float32', shape, data: latents },
      noise: { dtype: 'float32', shape, data: noise },
      signal_scale: { dtype: 'float32', shape: [B, 1, 1, 1], data: signal },
      noise_scale: { dtype: 'float32', shape: [B, 1, 1, 1], data: noiseScale },
      timesteps: { dtype: 'float32', shape: [B], data: timesteps },
      ids: { dtype: 'int64', shape: [B, L], data: ids },
      attribute_mask: { dtype: 'float32', shape: [B, L, 1], data: attributeMask },
      attributes: { dtype: 'float32', shape: [B, 1, ATTRIBUTE_COUNT], data: attributes },
    }], lr, step);
    const diffusionLoss = r.extra.diffusion_loss.data[0] as number;
    const attributeLoss = r.extra.attribute_loss.data[0] as number;
    smooth = step === start ? diffusionLoss : 0.98 * smooth + 0.02 * diffusionLoss;
    smoothAttributes = step === start ? attributeLoss : 0.98 * smoothAttributes + 0.02 * attributeLoss;
    if (step % 20 === 0 || step === o.unetSteps) {
      const s = (Date.now() - t0) / 1000;
      log(`stage B step ${step}/${o.unetSteps} loss ${smooth.toFixed(4)} attributes ${smoothAttributes.toFixed(3)} lr ${lr.toExponential(2)} ${s.toFixed(0)}s (${(s / (step - start + 1)).toFixed(2)} s/step)`);
    }
    if (step % o.saveEvery === 0) {
      await saveTrainState(progress, await ts.read(true), { step: String(step) });
      await saveTrainState(join(scratch, 'diffusion-weights.safetensors'), await ts.read(false), { step: String(step) });
    }
  }
  const weights = await ts.read(false);
  await ts.dispose();
  return weights;
}

/** Splits stage B's prefixed parameters into the checkpoint's components, with the normalised VAE. */
export function componentWeights(cfg: SdConfig, diffusion: Record<string, HostTensor>, vae: Record<string, HostTensor>, cache: Pick<LatentCache, 'channelMean' | 'channelStd'>) {
  const pick = (prefix: string) => Object.fromEntries(Object.entries(diffusion).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return { unet: pick(UNET_PREFIX), text_encoder: pick(TEXT_ENCODER_PREFIX), vae: normalizeLatents(vae, cfg.vae, cache.channelMean, cache.channelStd) };
}

export async function pretrainTiny(o: PretrainOptions, out: string, scratch: string, log: Log): Promise<void> {
  mkdirSync(scratch, { recursive: true });
  const tokenizer = ClipTokenizer.fromFolder(TINY_TOKENIZER);
  const cfg = tinyModelConfig(tokenizer);
  const rt = new Runtime({ threads: o.threads });
  const times: Record<string, number> = {};
  let t = Date.now();
  const firstVae = await pretrainVae(rt, cfg, o, scratch, log);
  times.vaeSeconds = (Date.now() - t) / 1000;
  t = Date.now();
  // The encoder is frozen from here on, so the latents below do not depend on this stage.
  const vae = await finetuneDecoder(rt, cfg, firstVae, o, scratch, log);
  times.decoderSeconds = (Date.now() - t) / 1000;
  t = Date.now();
  const cache = await cacheLatents(rt, cfg, vae, o, log);
  times.cacheSeconds = (Date.now() - t) / 1000;
  t = Date.now();
  let diffusion = await pretrainDiffusion(rt, cfg, tokenizer, cache, o, scratch, log);
  // Each extension resumes from the progress checkpoint written at the end of the one before.
  for (const steps of o.unetExtendTo.filter((n) => n > o.unetSteps)) diffusion = await pretrainDiffusion(rt, cfg, tokenizer, cache, { ...o, unetSteps: steps }, scratch, log);
  times.diffusionSeconds = (Date.now() - t) / 1000;
  await rt.close();
  const weights = componentWeights(cfg, diffusion, vae, cache);
  const params = Object.values(weights).reduce((n, c) => n + Object.values(c).reduce((m, x) => m + x.data.length, 0), 0);
  mkdirSync(dirname(out), { recursive: true });
  await writeTinyCheckpoint(out, cfg, weights, { ...tinyCheckpointMetadata(cfg), [CONFIG_METADATA_KEY]: JSON.stringify(cfg), loragraph_pretrain: JSON.stringify(o) });
  const info = { name: cfg.name, file: 'sd-tiny.safetensors', dtype: 'float16', parameters: params, config: cfg, pretrain: o, seconds: times };
  const jsonPath = join(dirname(out), 'model.json');
  writeFileSync(`${jsonPath}.tmp`, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(`${jsonPath}.tmp`, jsonPath);
  log(`wrote ${out} (${params} parameters); stage times ${JSON.stringify(times)}`);
}

const parseArgs = (argv: readonly string[]) => parsePretrainArgs(argv, PRETRAIN_DEFAULTS, TINY_CHECKPOINT, '/tmp/loragraph-tiny-pretrain');

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { o, out, scratch } = parseArgs(process.argv.slice(2));
  const log = pretrainLog();
  log(`pretraining the tiny model: ${JSON.stringify(o)} → ${out} (scratch ${scratch})`);
  await pretrainTiny(o, out, scratch, log);
}
