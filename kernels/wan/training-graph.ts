// One Wan LoRA training step's forward graph: x_t = (1 − t)·x0 + t·ε over video latents
// [B, C, F, H, W], the adapted transformer's velocity at noise level t, and the loss against ε − x0
// (Wan's flow-matching objective), optionally weighted per sample. I2V feeds the first-frame mask +
// image latent as `condition`; 2.2 TI2V feeds `first_frame` (kernels/wan/ti2v.ts: given clean at
// timestep 0, left out of the loss; zeros = text to video); the noise levels are drawn on the host (kernels/schedules, narrowed to
// the trained expert's band for Wan 2.2 A14B) and fed as `sigmas`.
import { input, type Tensor } from '../tensor';
import { Builder } from '../nn/builder';
import { nativeHalfDtypes } from '../nn/precision';
import type { ExecutionProvider } from '../runtime';
import type { WeightSource } from '../nn/weights';
import type { AdapterSet } from '../adapters/adapter-set';
import { batchLoss, flowTrainingPair, perSampleLoss, type LossOptions } from '../losses';
import { WAN_CLIP_TOKENS, type WanTransformerConfig } from './config';
import { tokenGrid, wanRope, wanTransformer } from './transformer';
import { firstFrameInput, firstFrameLossMask, withFirstFrame } from './ti2v';

export interface WanTrainGraphOptions {
  config: WanTransformerConfig;
  weights: WeightSource;
  adapters: AdapterSet;
  batch: number;
  /** Latent frames, rows, cols. */
  latentSize: [number, number, number];
  /** Text tokens per caption (512 for umT5 features). */
  textTokens: number;
  loss?: LossOptions;
  /** Feed `loss_weight` [B]. */
  sampleWeights?: boolean;
  /** Recompute each block in the backward pass instead of keeping its activations. */
  gradientCheckpointing?: boolean;
  /** The EP the step runs on: GPU EPs multiply half-stored frozen weights natively (Builder.halfKernels). Default cpu. */
  ep?: ExecutionProvider;
}

export interface WanTrainGraph {
  /** `latents`, `noise` [B, C, F, H, W], `sigmas` [B], `text` [B, T, textDim], (`condition` [B, 20, F, H, W]), (`clip` [B, 257, 1280]), (TI2V clips: `first_frame` [B, 1 + C, 1, H, W]), (`loss_weight` [B]), dropout masks. */
  inputs: Tensor[];
  loss: Tensor;
  params: Record<string, Tensor>;
  prediction: Tensor;
}

export function buildWanTrainGraph(o: WanTrainGraphOptions): WanTrainGraph {
  const cfg = o.config;
  const shape = [o.batch, cfg.outChannels, ...o.latentSize];
  const x0 = input('latents', shape);
  const noise = input('noise', shape);
  const sigmas = input('sigmas', [o.batch]);
  const text = input('text', [o.batch, o.textTokens, cfg.textDim]);
  const inputs = [x0, noise, sigmas, text];
  const extra = cfg.inChannels - cfg.outChannels;
  const condition = extra > 0 ? input('condition', [o.batch, extra, ...o.latentSize]) : undefined;
  if (condition) inputs.push(condition);
  const clipImage = cfg.clipImageDim ? input('clip', [o.batch, WAN_CLIP_TOKENS, cfg.clipImageDim]) : undefined;
  if (clipImage) inputs.push(clipImage);
  const firstSpec = cfg.perTokenTimesteps ? firstFrameInput(cfg.outChannels, shape.slice(1), [0, 0]) : undefined;
  const firstFrame = firstSpec ? input(firstSpec.name, [o.batch, ...firstSpec.shape]) : undefined;
  if (firstFrame) inputs.push(firstFrame);
  const { noisy, target } = flowTrainingPair(x0, noise, sigmas);
  const given = firstFrame ? withFirstFrame(noisy, sigmas, firstFrame) : { latents: noisy, timesteps: sigmas };
  const b = new Builder(o.weights, o.adapters.hook({ training: true }));
  b.gradientCheckpointing = !!o.gradientCheckpointing;
  b.halfKernels = nativeHalfDtypes(o.ep ?? 'cpu');
  const prediction = wanTransformer(b, cfg, {
    latents: given.latents, condition, context: text, timesteps: given.timesteps, clipImage, rope: wanRope(cfg, tokenGrid(cfg, shape)),
  });
  let weights: Tensor | undefined;
  if (o.sampleWeights) {
    weights = input('loss_weight', [o.batch]);
    inputs.push(weights);
  }
  const loss = batchLoss(perSampleLoss(prediction, target, o.loss, firstFrame && firstFrameLossMask(firstFrame, o.latentSize[0])), weights);
  inputs.push(...o.adapters.dropoutInputs);
  return { inputs, loss, params: o.adapters.params, prediction };
}
