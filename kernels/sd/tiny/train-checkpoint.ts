// The tiny model as one SD 1.x single-file checkpoint (ldm key layout: `model.diffusion_model.*`,
// `first_stage_model.*`, `cond_stage_model.transformer.*`), written from and read back into diffusers
// names per component. Reading is kept here so the pretraining and eval scripts do not depend on the
// family's general loader; both use the family's key map, so the layouts cannot drift apart.
import type { HostTensor } from '../../tensor';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../io/safetensors';
import type { SdConfig } from '../config';
import { SingleFileKeyMap, isVaeAttentionProjection, toSingleFileShape } from '../keys/single-file';
import type { Component } from '../keys/expected';

export type ComponentWeights = Record<Component, Record<string, HostTensor>>;

/** The architecture the tiny checkpoint names: not an SD 1.x id, so no tool takes it for SD 1.5. */
export const TINY_ARCHITECTURE = 'loragraph-tiny-sd1';

/**
 * What the tiny checkpoint says it is (ModelSpec keys). It has SD 1.x's key layout but is no SD 1.x
 * model: besides its small sizes its GroupNorms use `normGroups` groups where every SD 1.x implementation
 * hard-codes 32, so a tool that loads it without error computes something else.
 */
export function tinyCheckpointMetadata(cfg: SdConfig): Record<string, string> {
  return {
    'modelspec.sai_model_spec': '1.0.1',
    'modelspec.architecture': TINY_ARCHITECTURE,
    'modelspec.implementation': 'loragraph',
    'modelspec.title': `loragraph tiny model (${cfg.name}), not Stable Diffusion 1.5`,
    'modelspec.resolution': `${cfg.sampleSize}x${cfg.sampleSize}`,
    'modelspec.prediction_type': cfg.scheduler.predictionType === 'v_prediction' ? 'v' : 'epsilon',
    'modelspec.description': `A ${cfg.sampleSize}×${cfg.sampleSize} toy model in the SD 1.x single-file layout for loragraph's quickstart. `
      + `Not SD 1.x: its GroupNorms use ${cfg.unet.normGroups} groups (UNet) and ${cfg.vae.normGroups} (VAE) where SD 1.x implementations hard-code 32, `
      + 'and its widths differ. Other tools may load it without error and compute something else; load it in loragraph, '
      + 'which reads its sizes and group counts from loragraph.sd_config.',
  };
}

/** Writes all three components as fp16 (or fp32) under their single-file keys, atomically. */
export async function writeTinyCheckpoint(path: string, cfg: SdConfig, weights: ComponentWeights, metadata: Record<string, string>, dtype: 'F16' | 'F32' = 'F16'): Promise<void> {
  const map = new SingleFileKeyMap(cfg);
  const tensors: [string, TensorToWrite][] = [];
  for (const component of Object.keys(weights) as Component[]) {
    for (const [name, t] of Object.entries(weights[component])) {
      const key = map.toSingleFile(component, name);
      if (!key) throw new Error(`${path}: ${component} tensor '${name}' is not part of the ${cfg.name} config`);
      tensors.push([key, { dtype, shape: toSingleFileShape(component, name, t.shape), data: t.data as Float32Array }]);
    }
  }
  const expected = map.singleFileKeys().length;
  if (tensors.length !== expected) throw new Error(`${path}: ${tensors.length} tensors given, the ${cfg.name} config has ${expected}`);
  await writeSafetensors(path, tensors, metadata);
}

/** Reads a tiny single-file checkpoint back into float32 diffusers-named tensors per component. */
export async function readTinyCheckpoint(path: string, cfg: SdConfig): Promise<{ weights: ComponentWeights; metadata: Record<string, string> }> {
  const map = new SingleFileKeyMap(cfg);
  const reader = await openSafetensors(path);
  const weights: ComponentWeights = { unet: {}, text_encoder: {}, vae: {} };
  try {
    const missing = new Set(map.singleFileKeys());
    for (const key of reader.names()) {
      const target = map.toDiffusers(key);
      if (!target) {
        if (/position_ids$/.test(key)) continue;
        throw new Error(`${path}: unexpected tensor '${key}'`);
      }
      missing.delete(key);
      const data = await reader.read(key);
      const shape = [...reader.entry(key).shape];
      // The VAE attention projections are 1×1 convs in the file and linears in the model code.
      const modelShape = isVaeAttentionProjection(target.component, target.name) ? shape.slice(0, 2) : shape;
      weights[target.component][target.name] = { dtype: 'float32', shape: modelShape, data };
    }
    if (missing.size) throw new Error(`${path}: missing ${missing.size} tensors, e.g. '${[...missing][0]}'`);
    return { weights, metadata: reader.metadata };
  } finally {
    await reader.close();
  }
}
