// The CLIP vision transformer (the image tower of CLIP ViT-H/14, which Wan 2.1 I2V conditions on): a
// 14×14 patch convolution without bias, a class token, learned position embeddings, a LayerNorm before
// the layers (open-clip's `ln_pre`, transformers' `pre_layrnorm`), then pre-LN layers attending over every
// patch. Module paths are transformers' CLIPVisionModel names (`vision_model.encoder.layers.0.mlp.fc1`),
// as ComfyUI's clip_vision_h.safetensors stores them; kernels/vision/clip-vision-load.ts serves other namings.
//
// Wan 2.1 takes the hidden states after all layers but the last, without the final LayerNorm (Wan's
// `use_31_block=True`; ComfyUI's `penultimate_hidden_states`): 257 tokens × 1280 for ViT-H/14 at 224².
import type { Builder } from '../nn/builder';
import { constant, type Tensor } from '../tensor';
import { add, div, mul, sub } from '../ops/elementwise';
import { matmul } from '../ops/nn';
import { concat, expand, reshape, transpose } from '../ops/shape-and-reduce';
import { clipLayer } from '../sd/clip-text';

export interface ClipVisionConfig {
  name: string;
  /** Square input side the position embeddings were learned for. */
  imageSize: number;
  patchSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  hiddenAct: 'gelu' | 'quick_gelu';
  layerNormEps: number;
  /** Width of `visual_projection` (CLIP's joint embedding); part of the file, unused by Wan. */
  projectionDim: number;
}

/** OpenAI CLIP's pixel statistics, which open-clip's ViT-H/14 and Wan keep (after mapping [−1, 1] to [0, 1]). */
export const CLIP_PIXEL_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_PIXEL_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/**
 * open-clip ViT-H/14 (laion2b; Wan's `clip_xlm_roberta_vit_h_14` visual tower, ComfyUI's clip_vision_h):
 * 32 layers of width 1280, 16 heads, MLP 5120 with exact (erf) GELU — not quick_gelu, which only OpenAI's
 * own CLIP models use.
 */
export const CLIP_VIT_H_14: ClipVisionConfig = {
  name: 'clip-vit-h-14', imageSize: 224, patchSize: 14, hiddenSize: 1280, intermediateSize: 5120, numLayers: 32, numHeads: 16,
  hiddenAct: 'gelu', layerNormEps: 1e-5, projectionDim: 1024,
};

/** A miniature tower for tests: 28² input in 14² patches (5 tokens), width 8. */
export const CLIP_VISION_TINY: ClipVisionConfig = {
  name: 'clip-vision-tiny', imageSize: 28, patchSize: 14, hiddenSize: 8, intermediateSize: 16, numLayers: 3, numHeads: 2,
  hiddenAct: 'gelu', layerNormEps: 1e-5, projectionDim: 4,
};

/** The tiny Wan 2.1 I2V's image encoder: ViT-H/14's token grid (224² → 257 tokens) at width 16, two layers (one used). */
export const CLIP_VISION_TINY_WAN: ClipVisionConfig = {
  ...CLIP_VISION_TINY, name: 'clip-vision-tiny-wan', imageSize: 224, hiddenSize: 16, intermediateSize: 32, numLayers: 2,
};

/** Tokens of the tower's output: the class token and one per patch. */
export const clipVisionTokens = (c: ClipVisionConfig) => (c.imageSize / c.patchSize) ** 2 + 1;

/**
 * Rows of a bicubic resize from `from` to `to` samples as PyTorch's `interpolate(mode='bicubic',
 * align_corners=False)` computes it (no antialiasing; Keys' cubic with a = −0.75; taps past the edge
 * read the edge): out = M · in with M [to, from].
 */
export function bicubicResizeMatrix(from: number, to: number): Float32Array {
  const a = -0.75;
  const near = (t: number) => ((a + 2) * t - (a + 3)) * t * t + 1; // |t| ≤ 1
  const far = (t: number) => ((a * t - 5 * a) * t + 8 * a) * t - 4 * a; // 1 < |t| < 2
  const m = new Float32Array(to * from);
  const scale = from / to;
  for (let i = 0; i < to; i++) {
    const src = (i + 0.5) * scale - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [far(t + 1), near(t), near(1 - t), far(2 - t)];
    for (let k = 0; k < 4; k++) m[i * from + Math.min(from - 1, Math.max(0, i0 - 1 + k))] += w[k];
  }
  return m;
}

/**
 * Pixels [B, 3, H, W] in [−1, 1] → the tower's input: resized to imageSize² with bicubic interpolation
 * (the whole frame, stretched, as Wan's `CLIPModel.visual` does; ComfyUI's CLIP Vision Encode crops the
 * centre instead), mapped to [0, 1], normalised by CLIP's mean and std. The resize is two constant
 * matrices, so it runs as matmuls.
 */
export function clipVisionPreprocess(c: ClipVisionConfig, pixels: Tensor): Tensor {
  const [, ch, h, w] = pixels.shape;
  if (pixels.rank !== 4 || ch !== 3) throw new Error(`CLIP vision: expected pixels [B, 3, H, W], got [${pixels.shape}]`);
  const s = c.imageSize;
  let x = pixels;
  if (h !== s) x = matmul(constant(bicubicResizeMatrix(h, s), [s, h]), x);
  if (w !== s) x = matmul(x, transpose(constant(bicubicResizeMatrix(w, s), [s, w]), [1, 0]));
  const stat = (v: readonly number[]) => constant(Float32Array.from(v), [1, 3, 1, 1]);
  return div(sub(add(mul(x, 0.5), 0.5), stat(CLIP_PIXEL_MEAN)), stat(CLIP_PIXEL_STD));
}

/**
 * The tower's hidden states [B, tokens, hiddenSize] after the first `layers` layers (default all), from
 * normalised pixels [B, 3, imageSize, imageSize]. No final LayerNorm: that one only pools the class token.
 */
export function clipVisionHidden(b: Builder, c: ClipVisionConfig, x: Tensor, layers = c.numLayers): Tensor {
  const [bsz, , h, w] = x.shape;
  if (h !== c.imageSize || w !== c.imageSize) throw new Error(`CLIP vision: input is ${w}×${h}, the position embeddings are for ${c.imageSize}×${c.imageSize}`);
  if (!Number.isInteger(layers) || layers < 0 || layers > c.numLayers) throw new Error(`CLIP vision: ${layers} layers asked of ${c.numLayers}`);
  const d = c.hiddenSize;
  const tokens = clipVisionTokens(c);
  const vm = b.scope('vision_model');
  const emb = vm.scope('embeddings');
  const grid = emb.conv('patch_embedding', x, 3, d, c.patchSize, { stride: c.patchSize, bias: false });
  const patches = transpose(reshape(grid, [bsz, d, tokens - 1]), [0, 2, 1]);
  const cls = expand(reshape(emb.param('class_embedding', [d]), [1, 1, d]), [bsz, 1, d]);
  let hs = add(concat([cls, patches], 1), emb.param('position_embedding.weight', [tokens, d]));
  hs = vm.layerNorm('pre_layrnorm', hs, d, c.layerNormEps);
  for (let i = 0; i < layers; i++) hs = clipLayer(vm.scope(`encoder.layers.${i}`), c, hs, false);
  return hs;
}

/** What Wan 2.1 I2V conditions on: pixels [B, 3, H, W] in [−1, 1] → the penultimate layer's hidden states. */
export function clipVisionPenultimate(b: Builder, c: ClipVisionConfig, pixels: Tensor): Tensor {
  return clipVisionHidden(b, c, clipVisionPreprocess(c, pixels), c.numLayers - 1);
}

/**
 * Every tensor of the tower's file, for shape checks and parameter counts without weights: all layers,
 * the final LayerNorm and the projection (which Wan never runs).
 */
export function traceClipVision(b: Builder, c: ClipVisionConfig, x: Tensor): void {
  const pooled = b.layerNorm('vision_model.post_layernorm', clipVisionHidden(b, c, x), c.hiddenSize, c.layerNormEps);
  b.linear('visual_projection', pooled, c.hiddenSize, c.projectionDim, false);
}
