// Pretraining batches drawn from the procedural shape world: rendered scenes as NCHW float images in
// [-1, 1] (what the VAE sees) and their captions, deterministic from an Rng.
import type { Rng } from '../../random';
import { captionOf, renderScene, sampleScene, type Scene, type ShapeName } from './world';

export interface WorldBatch {
  /** [n, 3, size, size] in [-1, 1]. */
  images: Float32Array;
  captions: string[];
  scenes: Scene[];
}

/** RGB bytes (rows, 3 per pixel) → planar channels scaled to [-1, 1], written at `offset`. */
export function rgbToPlanar(rgb: Uint8Array, size: number, out: Float32Array, offset = 0): void {
  const plane = size * size;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[offset + c * plane + p] = rgb[p * 3 + c] / 127.5 - 1;
  }
}

/** Planar [-1, 1] channels → RGB bytes (clamped), for analysis or saving. */
export function planarToRgb(planar: Float32Array, size: number, offset = 0): Uint8Array {
  const plane = size * size;
  const rgb = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round((planar[offset + c * plane + p] + 1) * 127.5);
      rgb[p * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return rgb;
}

export function worldBatch(rng: Rng, n: number, shapes: readonly ShapeName[], size = 64): WorldBatch {
  const images = new Float32Array(n * 3 * size * size);
  const captions: string[] = [];
  const scenes: Scene[] = [];
  for (let i = 0; i < n; i++) {
    const scene = sampleScene(rng, { shapes });
    rgbToPlanar(renderScene(scene, size), size, images, i * 3 * size * size);
    scenes.push(scene);
    captions.push(captionOf(scene));
  }
  return { images, captions, scenes };
}
