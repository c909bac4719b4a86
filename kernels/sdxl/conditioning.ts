// SDXL's micro-conditioning: six integers per sample — original size (h, w) before resizing, crop
// top-left (top, left), target size (h, w) — each turned into 256 Fourier features (cos first, the
// timestep embedding's formula) and placed after the pooled bigG vector: label_emb's 2816-wide input.
// The order is kohya's and diffusers' (add_time_ids).
import type { Tensor } from '../tensor';
import { concat, reshape } from '../ops/shape-and-reduce';
import { timestepEmbedding } from '../sd/unet';
import { SIZE_CONDITIONING_COUNT } from './config';

export interface SizeConditioning {
  /** Image size before any resize, [height, width]. */
  originalSize: [number, number];
  /** Where the crop starts in the resized image, [top, left]. */
  cropTopLeft: [number, number];
  /** Size trained at (the bucket), [height, width]. */
  targetSize: [number, number];
}

/** The six numbers in the order the model was trained with. */
export function sizeConditioningValues(c: SizeConditioning): number[] {
  return [...c.originalSize, ...c.cropTopLeft, ...c.targetSize];
}

/**
 * The crop left to record for a horizontally flipped sample, as kohya's dataset does: the crop's right
 * edge measured from the target's right side (`targetWidth − cropRight`), so the conditioning describes
 * the mirrored image.
 */
export function flippedCropLeft(targetWidth: number, cropRight: number): number {
  return targetWidth - cropRight;
}

/** time ids [B, 6] (float) → Fourier features [B, 6·dim]. */
export function sizeFeatures(timeIds: Tensor, dim: number): Tensor {
  const [bsz, n] = timeIds.shape;
  if (n !== SIZE_CONDITIONING_COUNT) throw new Error(`SDXL size conditioning: expected ${SIZE_CONDITIONING_COUNT} numbers per sample, got ${n}`);
  const emb = timestepEmbedding(reshape(timeIds, [bsz * n]), dim, true, 0);
  return reshape(emb, [bsz, n * dim]);
}

/** label_emb's input: pooled text [B, P] then the size features [B, 6·dim]. */
export function addedEmbeddingInput(pooled: Tensor, timeIds: Tensor, dim: number): Tensor {
  return concat([pooled, sizeFeatures(timeIds, dim)], 1);
}
