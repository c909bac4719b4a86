// The tensors a config's models ask for, by diffusers name and shape, recorded without allocating a
// weight (ShapeRecorder): the reference a checkpoint is checked against.
import { Builder, type ModuleInfo } from '../../nn/builder';
import { ShapeRecorder } from '../../nn/weights';
import { input } from '../../tensor';
import type { SdConfig } from '../config';
import { unet } from '../unet';
import { clipTextEncoder } from '../clip-text';
import { vaeDecode, vaeEncode } from '../vae';

/** The three parts of an SD 1.x pipeline, named as diffusers' folders are. */
export type Component = 'unet' | 'text_encoder' | 'vae';
export const COMPONENTS: readonly Component[] = ['unet', 'text_encoder', 'vae'];

export interface ComponentTensors {
  /** diffusers name → shape, in the order the model asks for them. */
  shapes: Map<string, number[]>;
  /** Every linear/conv module the builder made (adapter targets). */
  modules: ModuleInfo[];
}

/** Builds `component` symbolically at a small spatial size and records what it asks for. */
export function componentTensors(cfg: SdConfig, component: Component): ComponentTensors {
  const rec = new ShapeRecorder();
  const b = new Builder(rec);
  const down = 2 ** (cfg.unet.blockOutChannels.length - 1);
  if (component === 'unet') {
    unet(b, cfg.unet, {
      sample: input('sample', [1, cfg.unet.inChannels, down, down]),
      timestep: input('timestep', [1]),
      context: input('context', [1, cfg.text.maxPositions, cfg.unet.crossAttentionDim]),
    });
  } else if (component === 'text_encoder') {
    clipTextEncoder(b, cfg.text, input('ids', [1, cfg.text.maxPositions], 'int64'));
  } else {
    const px = 2 ** (cfg.vae.blockOutChannels.length - 1);
    vaeEncode(b, cfg.vae, input('images', [1, cfg.vae.inChannels, px, px]));
    vaeDecode(b, cfg.vae, input('latents', [1, cfg.vae.latentChannels, 1, 1]));
  }
  return { shapes: rec.shapes, modules: b.modules };
}

/**
 * Keys some checkpoints carry that are buffers, not weights: recognised and skipped rather than
 * reported as unexpected.
 */
export const IGNORED_KEYS: Record<Component, RegExp> = {
  unet: /^$/,
  text_encoder: /^text_model\.embeddings\.position_ids$/,
  vae: /^$/,
};
