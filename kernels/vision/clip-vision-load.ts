// Opens a CLIP vision file (ComfyUI's clip_vision_h.safetensors, Wan's or open-clip's visual tower) and
// serves its tensors under transformers' names, whatever layout it is in (kernels/vision/clip-vision-keys.ts).
// Sizes are read from the tensors, so a tiny test tower loads through the same code; only the head count
// cannot be, and comes from the known releases or the file's `loragraph_num_heads` metadata.
import type { Tensor } from '../tensor';
import type { WeightSource, WeightUse } from '../nn/weights';
import { reshape, slice, transpose } from '../ops/shape-and-reduce';
import { CheckpointWeights, type CheckpointWeightsOptions, type TensorLocation } from '../sd/checkpoint-weights';
import { CheckpointError } from '../sd/load';
import { indexSafetensors } from '../flux/load';
import { CLIP_VIT_H_14, type ClipVisionConfig } from './clip-vision';
import { clipVisionKeyIn, detectClipVisionNaming, type ClipVisionNaming } from './clip-vision-keys';

/** Head counts of the released towers by width (ViT-L/14 1024, ViT-H/14 1280, ViT-bigG/14 1664: all 16 heads). */
const KNOWN_HEADS: Record<number, number> = { 1024: 16, 1280: 16, 1664: 16 };

/** Serves transformers names from a file in any layout: fused q/k/v sliced, unit axes dropped, the projection transposed. */
class RenamedClipVisionWeights implements WeightSource {
  constructor(readonly inner: CheckpointWeights, readonly naming: ClipVisionNaming, readonly prefix: string, readonly label: string) {}
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    const inner: WeightSource = this.inner;
    const k = clipVisionKeyIn(this.naming, path);
    if (!k) throw new Error(`${this.label}: '${path}' is not a CLIP vision tensor`);
    const key = this.prefix + k.key;
    if (k.qkvPart !== undefined) {
      const d = shape[0];
      return slice(inner.get(key, [3 * d, ...shape.slice(1)]), [k.qkvPart * d], [(k.qkvPart + 1) * d], [0]);
    }
    if (k.transposed) return transpose(inner.get(key, [shape[1], shape[0]]), [1, 0]);
    if (k.reshaped) {
      const stored = this.inner.tensors.get(key)?.entry.shape ?? shape;
      return reshape(inner.get(key, stored), shape);
    }
    return inner.get(key, shape, use);
  }
}

/** Shapes by transformers name, read through a layout's renaming (undefined when absent). */
function transformersShapes(tensors: Map<string, TensorLocation>, naming: ClipVisionNaming, prefix: string) {
  return (name: string): number[] | undefined => {
    const k = clipVisionKeyIn(naming, name);
    const s = k && tensors.get(prefix + k.key)?.entry.shape;
    if (!k || !s) return undefined;
    if (k.qkvPart !== undefined) return [s[0] / 3, ...s.slice(1)];
    if (k.transposed) return [s[1], s[0]];
    if (k.reshaped) return s.filter((d, i) => d !== 1 || i === s.length - 1);
    return [...s];
  };
}

/** A tower's sizes from its tensors (transformers names); undefined when they are not a CLIP vision tower. */
export function clipVisionConfigFromShapes(shapeOf: (name: string) => readonly number[] | undefined, metadata: Record<string, string> = {}): ClipVisionConfig | undefined {
  const patch = shapeOf('vision_model.embeddings.patch_embedding.weight');
  const positions = shapeOf('vision_model.embeddings.position_embedding.weight');
  const fc1 = shapeOf('vision_model.encoder.layers.0.mlp.fc1.weight');
  if (!patch || patch.length !== 4 || patch[1] !== 3 || !positions || !fc1) return undefined;
  const [d, , p] = patch;
  const grid = Math.sqrt(positions[0] - 1);
  if (!Number.isInteger(grid)) return undefined;
  let numLayers = 0;
  while (shapeOf(`vision_model.encoder.layers.${numLayers}.layer_norm1.weight`)) numLayers++;
  const heads = Number(metadata.loragraph_num_heads) || KNOWN_HEADS[d] || Math.max(1, d / 64);
  const act = metadata.loragraph_hidden_act === 'quick_gelu' ? 'quick_gelu' : 'gelu';
  const sizes = { imageSize: grid * p, patchSize: p, hiddenSize: d, intermediateSize: fc1[0], numLayers, numHeads: heads, projectionDim: shapeOf('visual_projection.weight')?.[0] ?? 0 };
  const known = Object.entries(sizes).every(([k, v]) => k === 'projectionDim' || CLIP_VIT_H_14[k as keyof ClipVisionConfig] === v);
  return { ...CLIP_VIT_H_14, ...sizes, hiddenAct: act, name: known ? CLIP_VIT_H_14.name : `clip-vision-${d}x${numLayers}` };
}

export interface OpenedClipVision {
  config: ClipVisionConfig;
  /** Transformers names (`vision_model.…`), whatever the file's layout. */
  weights: WeightSource;
  naming: ClipVisionNaming;
  params: number;
  dtypes: Set<string>;
  close(): void;
}

/** Opens a CLIP vision file (headers only; tensors are read when a graph asks for them). */
export async function openClipVision(file: string, opts: CheckpointWeightsOptions = {}): Promise<OpenedClipVision> {
  const t = await indexSafetensors(file);
  const found = detectClipVisionNaming(t.tensors.keys());
  if (!found) throw new CheckpointError(file, 'not a CLIP vision model: no vision_model.encoder.layers.0 (transformers/ComfyUI names), visual.transformer.0.attn.to_qkv (Wan) or visual.transformer.resblocks.0 (open-clip) tensors');
  const fp8 = [...t.dtypes].find((d) => d.startsWith('F8'));
  if (fp8) throw new CheckpointError(file, `this CLIP vision file holds ${fp8} (fp8) weights, which loragraph does not read yet: use the fp16 file (clip_vision_h.safetensors)`);
  const config = clipVisionConfigFromShapes(transformersShapes(t.tensors, found.naming, found.prefix), t.metadata);
  if (!config) throw new CheckpointError(file, 'the CLIP vision tensors do not fit together (patch convolution [d, 3, p, p], a position table of 1 + n² rows, and an MLP in layer 0)');
  const inner = new CheckpointWeights(t.tensors, file, opts);
  let params = 0;
  for (const [k, v] of t.tensors) {
    const name = k.slice(found.prefix.length);
    if (k.startsWith(found.prefix) && !name.startsWith('textual.') && name !== 'log_scale') params += v.entry.shape.reduce((a, b) => a * b, 1);
  }
  return {
    config, naming: found.naming, params, dtypes: t.dtypes,
    weights: found.naming === 'transformers' && !found.prefix ? inner : new RenamedClipVisionWeights(inner, found.naming, found.prefix, file),
    close: () => inner.close(),
  };
}
