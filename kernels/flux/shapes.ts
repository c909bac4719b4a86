// Full-size FLUX transformer names and shapes without allocating a weight: the model is built
// symbolically over a ShapeRecorder (every weight a placeholder input), on a 2×2-token image and
// 2 text tokens, which touches every parameter exactly as a 1024² run would.
import { input } from '../tensor';
import { Builder, type ModuleInfo } from '../nn/builder';
import { ShapeRecorder } from '../nn/weights';
import { ropeTables } from '../dit/layers';
import type { FluxTransformerConfig } from './config';
import { fluxTransformer, jointPositions } from './transformer';

export interface FluxShapes {
  /** BFL tensor name → shape, in build order. */
  tensors: Map<string, number[]>;
  /** Linear layers, in build order (LoRA target candidates). */
  modules: ModuleInfo[];
  parameterCount: number;
}

export function fluxTransformerShapes(cfg: FluxTransformerConfig): FluxShapes {
  const rec = new ShapeRecorder();
  const b = new Builder(rec);
  const txtTokens = 2;
  fluxTransformer(b, cfg, {
    img: input('img', [1, 4, cfg.inChannels]),
    txt: input('txt', [1, txtTokens, cfg.contextDim]),
    timesteps: input('t', [1]),
    guidance: cfg.guidanceEmbed ? input('g', [1]) : undefined,
    pooled: cfg.pooledDim ? input('pooled', [1, cfg.pooledDim]) : undefined,
    rope: ropeTables(jointPositions(cfg, txtTokens, 2, 2), cfg.axesDim, cfg.theta),
  });
  let parameterCount = 0;
  for (const s of rec.shapes.values()) parameterCount += s.reduce((a, d) => a * d, 1);
  return { tensors: rec.shapes, modules: b.modules, parameterCount };
}
