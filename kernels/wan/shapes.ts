// Full-size Wan transformer names and shapes without allocating a weight: the model is built
// symbolically over a ShapeRecorder (every weight a placeholder input) on a one-frame 2×2-patch latent
// and two text tokens, which touches every parameter exactly as a 480×832×81 run would.
import { input } from '../tensor';
import { Builder, type ModuleInfo } from '../nn/builder';
import { ShapeRecorder } from '../nn/weights';
import type { WanTransformerConfig } from './config';
import { clipImageTokens } from './config';
import { wanRope, wanTransformer } from './transformer';

export interface WanShapes {
  /** Wan-format tensor name → shape, in build order. */
  tensors: Map<string, number[]>;
  /** Linear layers, in build order (LoRA target candidates). */
  modules: ModuleInfo[];
  parameterCount: number;
}

export function wanTransformerShapes(cfg: WanTransformerConfig): WanShapes {
  const rec = new ShapeRecorder();
  const b = new Builder(rec);
  const [pt, ph, pw] = cfg.patch;
  const latent = [1, cfg.outChannels, pt, 2 * ph, 2 * pw];
  wanTransformer(b, cfg, {
    latents: input('x', latent),
    condition: cfg.inChannels > cfg.outChannels ? input('y', [1, cfg.inChannels - cfg.outChannels, ...latent.slice(2)]) : undefined,
    context: input('context', [1, 2, cfg.textDim]),
    timesteps: input('t', [1]),
    clipImage: cfg.clipImageDim ? input('clip', [1, clipImageTokens(cfg), cfg.clipImageDim]) : undefined,
    rope: wanRope(cfg, [1, 2, 2]),
  });
  let parameterCount = 0;
  for (const s of rec.shapes.values()) parameterCount += s.reduce((a, d) => a * d, 1);
  return { tensors: rec.shapes, modules: b.modules, parameterCount };
}
