// One FLUX LoRA training step's forward graph: x_t = (1 − t)·x0 + t·ε from cached latent tokens and
// noise, the adapted transformer's velocity at noise level t, and the loss against ε − x0, optionally
// weighted per sample (ai-toolkit's `weighted` timestep loss weight, regularisation images). The noise
// levels are drawn on the host with kernels/schedules' timestep types (linear, sigmoid, weighted,
// shift, dynamic shift; content/style bias) and fed as `sigmas`.
import { input, type Tensor } from '../tensor';
import { Builder } from '../nn/builder';
import { nativeHalfDtypes } from '../nn/precision';
import type { ExecutionProvider } from '../runtime';
import type { WeightSource } from '../nn/weights';
import type { AdapterSet } from '../adapters/adapter-set';
import { batchLoss, flowTrainingPair, perSampleLoss, type LossOptions } from '../losses';
import { ropeTables } from '../dit/layers';
import { jointPositions, fluxTransformer } from './transformer';
import type { FluxTransformerConfig } from './config';

export interface FluxTrainGraphOptions {
  config: FluxTransformerConfig;
  weights: WeightSource;
  adapters: AdapterSet;
  batch: number;
  /** Latent token grid (rows × cols of 2×2 patches). */
  grid: [number, number];
  /** Text tokens per caption (512 for klein). */
  textTokens: number;
  loss?: LossOptions;
  /** Feed `loss_weight` [B]. */
  sampleWeights?: boolean;
  /** Recompute each transformer block in the backward pass instead of keeping its activations. */
  gradientCheckpointing?: boolean;
  /** The EP the step runs on: GPU EPs multiply half-stored frozen weights natively (Builder.halfKernels). Default cpu. */
  ep?: ExecutionProvider;
}

export interface FluxTrainGraph {
  /** `latents` [B, L, C], `noise` [B, L, C], `sigmas` [B], `text` [B, T, contextDim], (`guidance` [B]), (`pooled` [B, 768]), (`loss_weight` [B]), dropout masks. */
  inputs: Tensor[];
  loss: Tensor;
  params: Record<string, Tensor>;
  prediction: Tensor;
}

export function buildFluxTrainGraph(o: FluxTrainGraphOptions): FluxTrainGraph {
  const cfg = o.config;
  const [rows, cols] = o.grid;
  const L = rows * cols;
  const x0 = input('latents', [o.batch, L, cfg.inChannels]);
  const noise = input('noise', [o.batch, L, cfg.inChannels]);
  const sigmas = input('sigmas', [o.batch]);
  const text = input('text', [o.batch, o.textTokens, cfg.contextDim]);
  const inputs = [x0, noise, sigmas, text];
  const guidance = cfg.guidanceEmbed ? input('guidance', [o.batch]) : undefined;
  if (guidance) inputs.push(guidance);
  const pooled = cfg.pooledDim ? input('pooled', [o.batch, cfg.pooledDim]) : undefined;
  if (pooled) inputs.push(pooled);
  const { noisy, target } = flowTrainingPair(x0, noise, sigmas);
  const b = new Builder(o.weights, o.adapters.hook({ training: true }));
  b.gradientCheckpointing = !!o.gradientCheckpointing;
  b.halfKernels = nativeHalfDtypes(o.ep ?? 'cpu');
  const prediction = fluxTransformer(b, cfg, {
    img: noisy, txt: text, timesteps: sigmas, guidance, pooled,
    rope: ropeTables(jointPositions(cfg, o.textTokens, rows, cols), cfg.axesDim, cfg.theta),
  });
  let weights: Tensor | undefined;
  if (o.sampleWeights) {
    weights = input('loss_weight', [o.batch]);
    inputs.push(weights);
  }
  const loss = batchLoss(perSampleLoss(prediction, target, o.loss), weights);
  inputs.push(...o.adapters.dropoutInputs);
  return { inputs, loss, params: o.adapters.params, prediction };
}
