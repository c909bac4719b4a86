// `npm run pretrain:tiny-flux` (skeleton): pretrains the tiny klein-architecture model on the procedural
// shape world with the project's own engine and writes it as the files a user would have — a BFL-named
// transformer, a Qwen3-named text encoder, an ae.safetensors (ldm names + BatchNorm statistics) and
// its own tokenizer.json — side by side, so flux2Family.load reads it like a ComfyUI models folder.
//   stage 0  tokenizer.json: byte-level BPE learned on the world's captions, chat tokens at ids 507–511
//   stage A  the FLUX.2-style VAE (8 latent channels, FLUX.2 has 32) on reconstruction + KL (SD tiny's loss graph)
//   cache    encoder means of world images (no stars: the quickstart's concept), 2×2 patchified; the
//            per-channel mean/variance of the 32 patch channels become bn.running_mean/var
//   stage B  Qwen3-tiny and the transformer from scratch, jointly, on the flow-matching loss with
//            shifted-uniform timesteps and caption dropout (the empty prompt for CFG), plus SD tiny's
//            auxiliary attribute head on the text features (kept out of the written files)
//   stage C  the stage-B transformer deepened by identity blocks (kernels/train/grow.ts) and trained on,
//            text encoder and head with it, on its own warmup and cosine
//   stage D  the grown model trained on at the same size in cosine cycles (warm restarts), one per entry
//            of polishSteps, each from a new warmup
// Progress is checkpointed under the scratch folder, so a killed run continues where it stopped.
// The committed model: exactly these defaults (8 latent channels; stage B 3 + 3 blocks, 14000 steps over
// 8192 cached images, 125 min; stage C to 6 + 6 blocks, 6000 steps, 95 min; stage D 5000 steps from lr
// 2.5e-4, 88 min — each on one thread beside another run). eval:tiny-flux: colour 100%, background 100%,
// shape 79% (a second cycle of 3000 steps from 1.25e-4: 76%, and the mean of the two cycles' weights 79%;
// stage C alone: 60%, triangles clean, circles and squares often lumpy; stage B alone 53%, flow
// loss 0.133 against 0.125 grown; 7000 steps over 2048 images: 41%; FLUX.2's 32 latent channels with
// 11000 DiT steps drew blobs of the right colours, 28%).
//   npx tsx kernels/flux/tiny/pretrain.ts [--vae-steps N] [--dit-steps N] [--out DIR] [--scratch DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { input, type HostTensor } from '../../tensor';
import { Builder } from '../../nn/builder';
import { HostWeights } from '../../nn/weights';
import { compileGraph } from '../../compile';
import { Runtime } from '../../runtime';
import { TrainStep } from '../../train/step';
import { adamw } from '../../optim/adamw';
import { Rng } from '../../random';
import { growBlocks, fluxGrowth } from '../../train/grow';
import { finishedPhase, loadTrainState, phaseMetadata, startPhase, type PretrainPhase, parsePretrainArgs, polishCycleOptions, polishCycles, pretrainLog, pretrainSigma, saveTrainState } from '../../train/pretrain-cli';
import { flowTrainingPair, batchLoss, perSampleLoss } from '../../losses';
import { vaeEncode } from '../../sd/vae';
import { vaeToLdm } from '../../sd/keys/single-file';
import { vaeLossGraph } from '../../sd/tiny/train-vae';
import { worldBatch } from '../../sd/tiny/train-data';
import { ATTRIBUTE_COUNT, attributeHeadLoss, captionAttributes } from '../../sd/tiny/train-diffusion';
import { add, mul } from '../../ops/elementwise';
import { initialValues, TrainableWeights, warmupCosine } from '../../sd/tiny/train-params';
import { worldCaptions } from '../../sd/tiny/build-assets';
import { ALL_SHAPES, WORLD_SHAPES, renderScene, sampleScene } from '../../sd/tiny/world';
import { rgbToPlanar } from '../../sd/tiny/train-data';
import { ropeTables } from '../../dit/layers';
import { buildByteLevelBpeTokenizerJson } from '../bpe-tokenizer-json';
import { Qwen3PromptTokenizer } from '../qwen3-tokenizer';
import { qwen3TextFeatures } from '../qwen3';
import { fluxTransformer, jointPositions } from '../transformer';
import { patchify2x2, FLUX2_BN_EPS } from '../vae';
import { validateFluxConfig } from '../config';
import { tinyFlux2Config, TINY_QWEN3_FIRST_ADDED_ID, type Flux2FamilyConfig } from '../family';

export const TINY_FLUX_ROOT = resolve(import.meta.dirname ?? '.', '../../../assets/tiny-flux');
export const TINY_FLUX_FILES = { transformer: 'flux2-tiny.safetensors', textEncoder: 'qwen3-tiny.safetensors', vae: 'ae.safetensors', tokenizer: 'tokenizer.json' } as const;

export interface TinyFluxPretrainOptions {
  seed: number;
  vaeSteps: number;
  vaeBatch: number;
  /** The VAE is convolutional: crops teach it the same edges cheaper. */
  vaeCrop: number;
  vaeLr: number;
  vaeKlWeight: number;
  /** World images whose latents are cached for stage B. */
  cacheSize: number;
  ditSteps: number;
  ditBatch: number;
  ditLr: number;
  ditWarmup: number;
  captionDropout: number;
  /**
   * Weight of the auxiliary head that names each caption's shape, colour and background from the text
   * features after the caption (SD tiny's remedy, kernels/sd/tiny/train-diffusion.ts). Without it the
   * from-scratch Qwen3 carried colour but not shape: samples had the right colour 69% of the time and
   * the right shape 30%, chance among three shapes.
   */
  attributeWeight: number;
  /**
   * Training noise levels: 0 draws the logit-normal (0, 1) (ai-toolkit's `sigmoid`), which rarely
   * reaches t > 0.9; a value > 0 draws uniform t shifted by it (t' = s·t / (1 + (s − 1)·t)), which keeps
   * the high-noise steps where FLUX.2's sampling schedule spends most of its steps (the tiny model
   * pretrained on the logit-normal predicts x0 well at t ≤ 0.6 yet draws blobs from pure noise).
   */
  ditShift: number;
  /**
   * Latent channels of the tiny VAE (the transformer reads 4× as many per 2×2 patch). FLUX.2's own 32
   * leave a 64-pixel image barely compressed (32 × 16 × 16 numbers for 3 × 64 × 64), and the tiny
   * transformer then has to draw every one of them from noise: with 32 it drew blobs (shape 28%), with
   * 8 (recon 0.057) clean triangles and shape 41% after the same 7000 steps.
   */
  latentChannels: number;
  /**
   * The transformer's width, heads and blocks (FLUX2_TINY's 128 / 4 / 3 + 3 by default). The files carry
   * them in their shapes: flux2Family.load reads any size back.
   */
  ditHidden: number;
  ditHeads: number;
  ditDoubleBlocks: number;
  ditSingleBlocks: number;
  /**
   * Stage C (0 steps: none): the stage-B transformer deepened by this many double and single blocks
   * that start as identities (kernels/train/grow.ts), trained on for growSteps with its own warmup and
   * cosine. Width and length had stopped paying: 14000 steps of the 3 + 3 model drew triangles but
   * lumpy circles and squares (shape 53%), and training a larger model from noise costs its whole run.
   */
  growDoubleBlocks: number;
  growSingleBlocks: number;
  growSteps: number;
  growLr: number;
  growWarmup: number;
  /**
   * Stage D (no steps: none): the finished transformer (stage C's, else stage B's) trained on at the same
   * size in cosine cycles (warm restarts, polishCycles), one per entry of polishSteps, each from a new
   * warmup; cycle k starts at polishLr × polishDecay^(k − 1). Stage C's cosine had left a lot undone: a
   * 5000-step cycle took shape from 60% to 79% (smoothed flow loss at the end 0.128 → 0.126: the loss
   * hardly shows it).
   */
  polishSteps: number[];
  polishLr: number;
  polishDecay: number;
  polishWarmup: number;
  /** BPE merges learned for the tokenizer (at most 251: 256 bytes + merges + 5 chat tokens = 512). */
  merges: number;
  saveEvery: number;
  threads: number;
}

export const TINY_FLUX_DEFAULTS: TinyFluxPretrainOptions = {
  seed: 20251202, vaeSteps: 1500, vaeBatch: 8, vaeCrop: 32, vaeLr: 2e-3, vaeKlWeight: 1e-6,
  cacheSize: 8192, ditSteps: 14000, ditBatch: 16, ditLr: 1e-3, ditWarmup: 100, captionDropout: 0.1, attributeWeight: 0.1, ditShift: 3, latentChannels: 8,
  ditHidden: 128, ditHeads: 4, ditDoubleBlocks: 3, ditSingleBlocks: 3,
  growDoubleBlocks: 3, growSingleBlocks: 3, growSteps: 6000, growLr: 5e-4, growWarmup: 200,
  polishSteps: [5000], polishLr: 2.5e-4, polishDecay: 0.5, polishWarmup: 100,
  merges: 200, saveEvery: 200, threads: 0,
};

type Log = (line: string) => void;
type State = Record<string, HostTensor>;

type ConfigOptions = 'latentChannels' | 'ditHidden' | 'ditHeads' | 'ditDoubleBlocks' | 'ditSingleBlocks' | 'growDoubleBlocks' | 'growSingleBlocks' | 'growSteps';

/**
 * The tiny klein of a recipe: FLUX2_TINY's text encoder and VAE with the recipe's latent width, the
 * transformer at the recipe's width and depth — the grown depth when stage C runs (`stage: 'final'`,
 * what the files hold), the stage-B depth otherwise.
 */
export function tinyFluxPretrainConfig(o: Pick<TinyFluxPretrainOptions, ConfigOptions>, stage: 'base' | 'final' = 'final'): Flux2FamilyConfig {
  const c = tinyFlux2Config();
  const headDim = o.ditHidden / o.ditHeads, axes = c.transformer.axesDim.length;
  const grown = stage === 'final' && o.growSteps > 0;
  const transformer = {
    ...c.transformer, inChannels: 4 * o.latentChannels, hiddenSize: o.ditHidden, numHeads: o.ditHeads,
    depthDouble: o.ditDoubleBlocks + (grown ? o.growDoubleBlocks : 0), depthSingle: o.ditSingleBlocks + (grown ? o.growSingleBlocks : 0),
    axesDim: new Array(axes).fill(headDim / axes),
  };
  validateFluxConfig(transformer);
  return { ...c, vae: { ...c.vae, latentChannels: o.latentChannels }, transformer };
}

/** Stage 0: the tokenizer, learned from every caption of the world (stars included) and the trigger placeholder. */
export function tinyFluxTokenizerJson(merges: number): object {
  return buildByteLevelBpeTokenizerJson([...worldCaptions(), 'photo of [trigger]'], merges, { firstAddedId: TINY_QWEN3_FIRST_ADDED_ID });
}

/** Stage A: the VAE (diffusers names), trained on crops of all four shapes (it stays frozen for the star). */
async function pretrainVae(rt: Runtime, o: TinyFluxPretrainOptions, scratch: string, log: Log): Promise<State> {
  const cfg = tinyFluxPretrainConfig(o);
  const done = join(scratch, 'vae.safetensors');
  const cached = await loadTrainState(done);
  if (cached) { log(`stage A: weights from ${done}`); return cached.tensors; }
  const g = vaeLossGraph(cfg.vae, o.vaeBatch, o.vaeCrop, o.vaeKlWeight);
  const ts = await TrainStep.create(rt, { inputs: [g.images, g.noise], params: g.params, loss: g.loss, optimizer: adamw({ weightDecay: 0 }), maxGradNorm: 1, extraOutputs: { reconstruction: g.reconstruction } });
  const progress = join(scratch, 'vae-progress.safetensors');
  const resumed = await loadTrainState(progress);
  let start = 1;
  if (resumed) { await ts.load(resumed.tensors); start = Number(resumed.metadata.step) + 1; log(`stage A: resuming at step ${start}`); }
  else await ts.init(initialValues(g.params, o.seed));
  const size = cfg.sampleSize, side = o.vaeCrop, latent = side / 2 ** (cfg.vae.blockOutChannels.length - 1);
  for (let step = start; step <= o.vaeSteps; step++) {
    const rng = new Rng(o.seed).fork(`vae-step-${step}`);
    const images = new Float32Array(o.vaeBatch * 3 * side * side);
    const full = new Float32Array(3 * size * size);
    for (let i = 0; i < o.vaeBatch; i++) {
      rgbToPlanar(renderScene(sampleScene(rng, { shapes: ALL_SHAPES }), size), size, full);
      const x0 = rng.int(0, size - side + 1), y0 = rng.int(0, size - side + 1);
      for (let c = 0; c < 3; c++) for (let y = 0; y < side; y++) {
        const src = c * size * size + (y0 + y) * size + x0;
        images.set(full.subarray(src, src + side), ((i * 3 + c) * side + y) * side);
      }
    }
    const noise = rng.fillNormal(new Float32Array(o.vaeBatch * cfg.vae.latentChannels * latent * latent));
    const lr = warmupCosine(step, o.vaeSteps, o.vaeLr, 30);
    const r = await ts.step([{
      images: { dtype: 'float32', shape: [o.vaeBatch, 3, side, side], data: images },
      noise: { dtype: 'float32', shape: [o.vaeBatch, cfg.vae.latentChannels, latent, latent], data: noise },
    }], lr, step);
    if (step % 20 === 0 || step === o.vaeSteps) log(`stage A step ${step}/${o.vaeSteps} recon ${(r.extra.reconstruction.data[0] as number).toFixed(4)}`);
    if (step % o.saveEvery === 0 && step < o.vaeSteps) await saveTrainState(progress, await ts.read(true), { step: String(step) });
  }
  const weights = await ts.read(false);
  await ts.dispose();
  await saveTrainState(done, weights);
  return weights;
}

interface TokenCache { tokens: Float32Array; captions: string[]; mean: Float32Array; variance: Float32Array }

/** Encoder means of world images (no stars) → 2×2 patches; their channel statistics; normalised tokens [N, 16, 128]. */
async function cacheTokens(rt: Runtime, vae: State, o: TinyFluxPretrainOptions, log: Log): Promise<TokenCache> {
  const cfg = tinyFluxPretrainConfig(o);
  const batch = 32, size = cfg.sampleSize;
  const images = input('images', [batch, 3, size, size]);
  const patches = patchify2x2(vaeEncode(new Builder(new HostWeights(new Map(Object.entries(vae)), 'vae')), cfg.vae, images).mean);
  const session = await rt.load(compileGraph([images], { patches }));
  const [, C, h, w] = patches.shape;
  const L = h * w, per = C * L;
  const raw = new Float32Array(o.cacheSize * per);
  const captions: string[] = [];
  const rng = new Rng(o.seed).fork('latent-cache');
  for (let at = 0; at < o.cacheSize; at += batch) {
    const b = worldBatch(rng, batch, WORLD_SHAPES, size);
    const out = await session.run({ images: { dtype: 'float32', shape: [batch, 3, size, size], data: b.images } });
    const n = Math.min(batch, o.cacheSize - at);
    raw.set((out.patches.data as Float32Array).subarray(0, n * per), at * per);
    captions.push(...b.captions.slice(0, n));
  }
  // BatchNorm's running statistics (population variance), then tokens: [N, L, C] with (x − μ)/√(σ² + ε).
  const mean = new Float32Array(C), variance = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0, s2 = 0;
    for (let i = 0; i < o.cacheSize; i++) for (let p = 0; p < L; p++) { const v = raw[i * per + c * L + p]; s += v; s2 += v * v; }
    const n = o.cacheSize * L;
    mean[c] = s / n;
    variance[c] = Math.max(0, s2 / n - mean[c] * mean[c]);
  }
  const tokens = new Float32Array(o.cacheSize * per);
  for (let i = 0; i < o.cacheSize; i++) for (let c = 0; c < C; c++) for (let p = 0; p < L; p++) {
    tokens[i * per + p * C + c] = (raw[i * per + c * L + p] - mean[c]) / Math.sqrt(variance[c] + FLUX2_BN_EPS);
  }
  log(`latent cache: ${o.cacheSize} images → ${L} tokens × ${C} channels`);
  return { tokens, captions, mean, variance };
}

/** Qwen3-tiny (`text_encoder/…`) and the transformer (`transformer/…`) on the flow loss, for one phase. */
async function trainDiT(rt: Runtime, tok: Qwen3PromptTokenizer, cache: TokenCache, o: TinyFluxPretrainOptions, phase: PretrainPhase<Flux2FamilyConfig>, log: Log): Promise<State> {
  const finished = await finishedPhase(phase, log);
  if (finished) return finished;
  const cfg = phase.cfg, recipe = phaseMetadata(phase);
  // Image tokens: the VAE's latent grid (sampleSize / 2^(blocks − 1)) in 2×2 patches.
  const side = cfg.sampleSize / 2 ** cfg.vae.blockOutChannels.length;
  const B = o.ditBatch, T = cfg.text.maxLength, L = side * side, C = 4 * cfg.vae.latentChannels;
  if (cache.tokens.length !== cache.captions.length * L * C) throw new Error(`latent cache: expected ${L} tokens × ${C} channels per image`);
  const textW = new TrainableWeights('text_encoder/'), ditW = new TrainableWeights('transformer/'), auxW = new TrainableWeights('aux/');
  const ids = input('ids', [B, T], 'int64'), mask = input('mask', [B, T]);
  const attributeMask = input('attribute_mask', [B, T, 1]), attributes = input('attributes', [B, 1, ATTRIBUTE_COUNT]);
  const x0 = input('latents', [B, L, C]), noise = input('noise', [B, L, C]), sigmas = input('sigmas', [B]);
  const { noisy, target } = flowTrainingPair(x0, noise, sigmas);
  const txt = qwen3TextFeatures(new Builder(textW), cfg.text, ids, mask);
  const pred = fluxTransformer(new Builder(ditW), cfg.transformer, {
    img: noisy, txt, timesteps: sigmas,
    rope: ropeTables(jointPositions(cfg.transformer, T, side, side), cfg.transformer.axesDim, cfg.transformer.theta),
  });
  const flowLoss = batchLoss(perSampleLoss(pred, target));
  const attributeLoss = attributeHeadLoss(auxW, txt, attributes, attributeMask);
  const loss = add(flowLoss, mul(attributeLoss, o.attributeWeight));
  const params = { ...textW.record(), ...ditW.record(), ...auxW.record() };
  const ts = await TrainStep.create(rt, {
    inputs: [ids, mask, x0, noise, sigmas, attributeMask, attributes], params, loss, optimizer: adamw({ weightDecay: 0.01 }), maxGradNorm: 1,
    extraOutputs: { flow_loss: flowLoss, attribute_loss: attributeLoss },
  });
  const start = await startPhase(ts, phase, () => initialValues(params, o.seed), log);
  const encoded = new Map<string, ReturnType<Qwen3PromptTokenizer['encode']>>();
  const encode = (caption: string) => { let e = encoded.get(caption); if (!e) { e = tok.encode([caption]); encoded.set(caption, e); } return e; };
  // The head reads the positions from <|im_end|> on: a causal encoder has seen the whole caption there.
  const imEnd = tok.tokenizer.token_to_id('<|im_end|>')!;
  let smooth = 0, smoothAttr = 0;
  for (let step = start; step <= phase.steps; step++) {
    const rng = new Rng(o.seed).fork(`${phase.stream}-${step}`);
    const idData = new BigInt64Array(B * T), maskData = new Float32Array(B * T), lat = new Float32Array(B * L * C), sig = new Float32Array(B);
    const attrMask = new Float32Array(B * T), attr = new Float32Array(B * ATTRIBUTE_COUNT);
    for (let i = 0; i < B; i++) {
      const k = rng.int(0, cache.captions.length);
      lat.set(cache.tokens.subarray(k * L * C, (k + 1) * L * C), i * L * C);
      const caption = rng.uniform() < o.captionDropout ? '' : cache.captions[k];
      const e = encode(caption);
      idData.set(e.ids.data as BigInt64Array, i * T);
      maskData.set(e.mask.data as Float32Array, i * T);
      const wanted = captionAttributes(caption);
      if (wanted) {
        attr.set(wanted, i * ATTRIBUTE_COUNT);
        const tokens = e.ids.data as BigInt64Array;
        for (let j = tokens.indexOf(BigInt(imEnd)); j >= 0 && j < e.lengths[0]; j++) attrMask[i * T + j] = 1;
      }
      sig[i] = pretrainSigma(rng, o.ditShift);
    }
    const lr = warmupCosine(step, phase.steps, phase.lr, phase.warmup);
    const r = await ts.step([{
      ids: { dtype: 'int64', shape: [B, T], data: idData }, mask: { dtype: 'float32', shape: [B, T], data: maskData },
      latents: { dtype: 'float32', shape: [B, L, C], data: lat },
      noise: { dtype: 'float32', shape: [B, L, C], data: rng.fillNormal(new Float32Array(B * L * C)) },
      sigmas: { dtype: 'float32', shape: [B], data: sig },
      attribute_mask: { dtype: 'float32', shape: [B, T, 1], data: attrMask },
      attributes: { dtype: 'float32', shape: [B, 1, ATTRIBUTE_COUNT], data: attr },
    }], lr, step);
    const flow = r.extra.flow_loss.data[0] as number, named = r.extra.attribute_loss.data[0] as number;
    smooth = step === start ? flow : 0.98 * smooth + 0.02 * flow;
    smoothAttr = step === start ? named : 0.98 * smoothAttr + 0.02 * named;
    if (step % 20 === 0 || step === phase.steps) log(`${phase.label} step ${step}/${phase.steps} flow loss ${smooth.toFixed(4)} attribute loss ${smoothAttr.toFixed(3)} lr ${lr.toExponential(2)}`);
    if (step % o.saveEvery === 0 && step < phase.steps) await saveTrainState(phase.progress, await ts.read(true), { step: String(step), ...recipe });
  }
  const weights = await ts.read(false);
  await ts.dispose();
  await saveTrainState(phase.done, weights, recipe);
  return weights;
}

const STAGE_B_OPTIONS = ['seed', 'vaeSteps', 'vaeBatch', 'vaeCrop', 'vaeLr', 'vaeKlWeight', 'cacheSize', 'ditSteps', 'ditBatch', 'ditLr', 'ditWarmup', 'captionDropout', 'attributeWeight', 'ditShift', 'latentChannels', 'ditHidden', 'ditHeads', 'ditDoubleBlocks', 'ditSingleBlocks', 'merges'] as const;
const STAGE_C_OPTIONS = [...STAGE_B_OPTIONS, 'growDoubleBlocks', 'growSingleBlocks', 'growSteps', 'growLr', 'growWarmup'] as const;
// polishDecay is left out of cycle 1's recipe by polishCycleOptions (recipeOf drops an absent option).
const STAGE_D_OPTIONS = [...STAGE_C_OPTIONS, 'polishSteps', 'polishLr', 'polishWarmup', 'polishDecay'] as const;
const recipeOf = <O extends object>(o: O, keys: readonly (keyof O)[]) => JSON.stringify(Object.fromEntries(keys.map((k) => [k, o[k]])));

/** Stage B, then (growSteps > 0) stage C, then stage D's cycles: the weights the files are written from. */
async function pretrainDiT(rt: Runtime, tok: Qwen3PromptTokenizer, cache: TokenCache, o: TinyFluxPretrainOptions, scratch: string, log: Log): Promise<State> {
  const base = await trainDiT(rt, tok, cache, o, {
    label: 'stage B', stream: 'dit-step', cfg: tinyFluxPretrainConfig(o, 'base'), steps: o.ditSteps, lr: o.ditLr, warmup: o.ditWarmup,
    progress: join(scratch, 'dit-progress.safetensors'), done: join(scratch, 'dit.safetensors'), recipe: recipeOf(o, STAGE_B_OPTIONS),
  }, log);
  const grown = o.growSteps <= 0 ? base : await growDiT(rt, tok, cache, o, scratch, base, log);
  let weights = grown;
  for (const { cycle, steps, lr } of polishCycles(o.polishSteps, o.polishLr, o.polishDecay)) {
    // Cycle 1 keeps the names it had before stage D had cycles.
    const n = cycle === 1 ? '' : String(cycle), from = weights;
    weights = await trainDiT(rt, tok, cache, o, {
      label: cycle === 1 ? 'stage D' : `stage D cycle ${cycle}`, stream: `stage-D${n}-step`, cfg: tinyFluxPretrainConfig(o, 'final'), steps, lr, warmup: o.polishWarmup,
      progress: join(scratch, `polish${n}-progress.safetensors`), done: join(scratch, `polished${n}.safetensors`),
      recipe: recipeOf(polishCycleOptions(o, cycle), STAGE_D_OPTIONS), init: () => from,
    }, log);
  }
  return weights;
}

/** Stage C: stage B's transformer deepened by identity blocks, trained on. */
async function growDiT(rt: Runtime, tok: Qwen3PromptTokenizer, cache: TokenCache, o: TinyFluxPretrainOptions, scratch: string, base: State, log: Log): Promise<State> {
  const cfg = tinyFluxPretrainConfig(o, 'final');
  log(`stage C: ${o.ditDoubleBlocks} + ${o.ditSingleBlocks} blocks grown to ${cfg.transformer.depthDouble} + ${cfg.transformer.depthSingle}`);
  return trainDiT(rt, tok, cache, o, {
    label: 'stage C', stream: 'stage-C-step', cfg, steps: o.growSteps, lr: o.growLr, warmup: o.growWarmup,
    progress: join(scratch, 'grow-progress.safetensors'), done: join(scratch, 'grown.safetensors'), recipe: recipeOf(o, STAGE_C_OPTIONS),
    init: (fresh) => growBlocks(base, fresh, fluxGrowth('transformer/', o.ditDoubleBlocks, o.ditSingleBlocks)),
  }, log);
}

/** Runs every stage and writes the four files into `out`. */
export async function pretrainTinyFlux(o: TinyFluxPretrainOptions, out: string, scratch: string, log: Log): Promise<void> {
  mkdirSync(scratch, { recursive: true });
  mkdirSync(out, { recursive: true });
  const cfg = tinyFluxPretrainConfig(o);
  const tokenizerJson = tinyFluxTokenizerJson(o.merges);
  const tok = new Qwen3PromptTokenizer(tokenizerJson, {}, cfg.text.maxLength);
  if (tok.padId !== cfg.padId) throw new Error(`tokenizer: <|endoftext|> is ${tok.padId}, the tiny config expects ${cfg.padId}`);
  const rt = new Runtime({ threads: o.threads });
  const vae = await pretrainVae(rt, o, scratch, log);
  const cache = await cacheTokens(rt, vae, o, log);
  const dit = await pretrainDiT(rt, tok, cache, o, scratch, log);
  await rt.close();
  const pick = (prefix: string) => Object.fromEntries(Object.entries(dit).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  const meta = { loragraph_pretrain: JSON.stringify(o), loragraph_architecture: 'loragraph-tiny-flux2-klein' };
  await saveTrainState(join(out, TINY_FLUX_FILES.transformer), pick('transformer/'), meta, 'F16');
  await saveTrainState(join(out, TINY_FLUX_FILES.textEncoder), pick('text_encoder/'), { ...meta, loragraph_text_max_length: String(cfg.text.maxLength) }, 'F16');
  const ae: State = Object.fromEntries(Object.entries(vae).map(([k, v]) => [vaeToLdm(cfg.vae, k), v]));
  ae['bn.running_mean'] = { dtype: 'float32', shape: [cache.mean.length], data: cache.mean };
  ae['bn.running_var'] = { dtype: 'float32', shape: [cache.variance.length], data: cache.variance };
  await saveTrainState(join(out, TINY_FLUX_FILES.vae), ae, { ...meta, loragraph_vae_norm_groups: String(cfg.vae.normGroups) }, 'F16');
  writeFileSync(join(out, TINY_FLUX_FILES.tokenizer), `${JSON.stringify(tokenizerJson)}\n`);
  log(`wrote ${Object.values(TINY_FLUX_FILES).join(', ')} to ${out}`);
}

const parseArgs = (argv: readonly string[]) => parsePretrainArgs(argv, TINY_FLUX_DEFAULTS, TINY_FLUX_ROOT, '/tmp/loragraph-tiny-flux-pretrain');

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { o, out, scratch } = parseArgs(process.argv.slice(2));
  const log = pretrainLog();
  log(`pretraining the tiny klein: ${JSON.stringify(o)} → ${out} (scratch ${scratch})`);
  await pretrainTinyFlux(o, out, scratch, log);
}
