// The CLIP vision tower (kernels/vision): ViT-H/14's names, shapes and parameter count without weights;
// the three file layouts as a bijection onto transformers' names; and a tiny tower written as safetensors
// in each layout, loaded and run through ORT against a plain-JS float64 forward (bicubic resize, CLIP
// normalisation, patch conv, class token, positions, pre-LN, exact-GELU layers, penultimate output).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Builder, ShapeRecorder, compileGraph, input, Runtime } from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import {
  CLIP_VISION_TINY, CLIP_VIT_H_14, clipVisionPenultimate, clipVisionTokens, traceClipVision, type ClipVisionConfig,
} from '../../../kernels/vision/clip-vision';
import { clipVisionKeyIn, clipVisionKeys, detectClipVisionNaming, type ClipVisionNaming } from '../../../kernels/vision/clip-vision-keys';
import { openClipVision } from '../../../kernels/vision/clip-vision-load';
import * as R from '../sd/reference';

const rt = new Runtime({ threads: 1 });
const dir = mkdtempSync(join(tmpdir(), 'clip-vision-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every tensor the tower's file holds, by transformers name, with its shape (no weights made). */
function recordShapes(c: ClipVisionConfig): Map<string, number[]> {
  const rec = new ShapeRecorder();
  traceClipVision(new Builder(rec), c, input('x', [1, 3, c.imageSize, c.imageSize]));
  return rec.shapes;
}

describe('CLIP ViT-H/14 vision tower without weights', () => {
  it('has transformers\' names and shapes and 632.08 M parameters (630.77 M without the projection)', () => {
    const shapes = recordShapes(CLIP_VIT_H_14);
    expect(shapes.get('vision_model.embeddings.patch_embedding.weight')).toEqual([1280, 3, 14, 14]);
    expect(shapes.get('vision_model.embeddings.class_embedding')).toEqual([1280]);
    expect(shapes.get('vision_model.embeddings.position_embedding.weight')).toEqual([257, 1280]);
    expect(shapes.get('vision_model.encoder.layers.31.mlp.fc1.weight')).toEqual([5120, 1280]);
    expect(shapes.get('vision_model.encoder.layers.31.self_attn.q_proj.bias')).toEqual([1280]);
    expect(shapes.get('visual_projection.weight')).toEqual([1024, 1280]);
    expect(shapes.has('vision_model.embeddings.patch_embedding.bias')).toBe(false);
    expect(shapes.has('vision_model.encoder.layers.32.layer_norm1.weight')).toBe(false);
    const count = (skip: string) => [...shapes].filter(([k]) => k !== skip).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
    expect(count('')).toBe(632_076_800);
    expect(count('visual_projection.weight')).toBe(630_766_080);
    expect(new Set(shapes.keys())).toEqual(new Set(clipVisionKeys('transformers', 32)));
  });

  it('Wan\'s features of a 480×832 frame: 257 tokens × 1280 from the first 31 layers', () => {
    const rec = new ShapeRecorder();
    const out = clipVisionPenultimate(new Builder(rec), CLIP_VIT_H_14, input('px', [2, 3, 480, 832]));
    expect(out.shape).toEqual([2, 257, 1280]);
    expect(rec.shapes.has('vision_model.encoder.layers.30.mlp.fc2.weight')).toBe(true);
    expect(rec.shapes.has('vision_model.encoder.layers.31.layer_norm1.weight')).toBe(false);
    expect(rec.shapes.has('vision_model.post_layernorm.weight')).toBe(false);
    expect(clipVisionTokens(CLIP_VIT_H_14)).toBe(257);
  });
});

/** Wan's own names for one layer (written out by hand from wan/modules/clip.py, not from the table). */
const wanLayerKeys = (i: number) => ['norm1', 'norm2'].flatMap((n) => [`transformer.${i}.${n}.weight`, `transformer.${i}.${n}.bias`])
  .concat(['attn.to_qkv', 'attn.proj', 'mlp.0', 'mlp.2'].flatMap((n) => [`transformer.${i}.${n}.weight`, `transformer.${i}.${n}.bias`]));

describe('CLIP vision layouts', () => {
  it('every layout is a bijection onto transformers\' names (fused q/k/v: three names onto one tensor, one third each)', () => {
    const names = clipVisionKeys('transformers', 3);
    for (const naming of ['wan', 'open_clip'] as ClipVisionNaming[]) {
      const images = new Map<string, Set<number | undefined>>();
      for (const n of names) {
        const k = clipVisionKeyIn(naming, n)!;
        expect(k, n).toBeDefined();
        const parts = images.get(k.key) ?? new Set();
        expect(parts.has(k.qkvPart), `${naming}: two names onto ${k.key}`).toBe(false);
        parts.add(k.qkvPart);
        images.set(k.key, parts);
      }
      expect(new Set(images.keys())).toEqual(new Set(clipVisionKeys(naming, 3)));
      for (const [key, parts] of images) expect(parts.size, key).toBe(/to_qkv|in_proj/.test(key) ? 3 : 1);
    }
    const wan = new Set(clipVisionKeys('wan', 2));
    for (const k of [...wanLayerKeys(0), ...wanLayerKeys(1), 'patch_embedding.weight', 'cls_embedding', 'pos_embedding', 'pre_norm.weight', 'post_norm.bias', 'head']) expect(wan.has(k), k).toBe(true);
    expect(wan.size).toBe(2 * 12 + 8);
    expect(clipVisionKeyIn('wan', 'vision_model.encoder.layers.4.self_attn.k_proj.weight')).toEqual({ key: 'transformer.4.attn.to_qkv.weight', qkvPart: 1 });
    expect(clipVisionKeyIn('open_clip', 'visual_projection.weight')).toEqual({ key: 'proj', transposed: true });
  });

  it('detects the layout and prefix from the keys', () => {
    expect(detectClipVisionNaming(clipVisionKeys('transformers', 2))).toEqual({ naming: 'transformers', prefix: '' });
    expect(detectClipVisionNaming(clipVisionKeys('wan', 2).map((k) => `visual.${k}`).concat('textual.head.0.weight', 'log_scale'))).toEqual({ naming: 'wan', prefix: 'visual.' });
    expect(detectClipVisionNaming(clipVisionKeys('open_clip', 2).map((k) => `visual.${k}`))).toEqual({ naming: 'open_clip', prefix: 'visual.' });
    expect(detectClipVisionNaming(['text_model.encoder.layers.0.layer_norm1.weight'])).toBeUndefined();
  });
});

// ---- numerics --------------------------------------------------------------------------------------

const c = CLIP_VISION_TINY;
const weights = new Map<string, Float32Array>();
for (const [k, s] of recordShapes(c)) {
  const n = s.reduce((a, b) => a * b, 1);
  const seed = [...k].reduce((a, ch) => (a * 31 + ch.charCodeAt(0)) % 9973, 7);
  const norm = /norm.*\.weight$|layrnorm\.weight$/.test(k);
  weights.set(k, Float32Array.from({ length: n }, (_, i) => (norm ? 1 : 0) + 0.35 * Math.sin(i * 2.39 + seed)));
}
const W = (k: string) => weights.get(k)!;

/** The tiny tower's tensors in `naming` under `prefix`, assembled by hand (q, k, v rows stacked for the fused layouts). */
function fileTensors(naming: ClipVisionNaming, prefix: string): Map<string, TensorToWrite> {
  const d = c.hiddenSize, T = clipVisionTokens(c);
  const f32 = (shape: number[], data: Float32Array): TensorToWrite => ({ dtype: 'F32', shape, data });
  const out = new Map<string, TensorToWrite>();
  if (naming === 'transformers') {
    for (const [k, v] of weights) out.set(prefix + k, f32(recordShapes(c).get(k)!, v));
    return out;
  }
  const wan = naming === 'wan';
  const L = (i: number, s: string) => W(`vision_model.encoder.layers.${i}.${s}`);
  const cat = (...a: Float32Array[]) => { const r = new Float32Array(a.reduce((n, x) => n + x.length, 0)); let o = 0; for (const x of a) { r.set(x, o); o += x.length; } return r; };
  const proj = W('visual_projection.weight');
  const projT = Float32Array.from({ length: proj.length }, (_, i) => proj[(i % c.projectionDim) * d + Math.floor(i / c.projectionDim)]);
  const set = (k: string, shape: number[], v: Float32Array) => out.set(prefix + k, f32(shape, v));
  set(wan ? 'patch_embedding.weight' : 'conv1.weight', [d, 3, c.patchSize, c.patchSize], W('vision_model.embeddings.patch_embedding.weight'));
  set(wan ? 'cls_embedding' : 'class_embedding', wan ? [1, 1, d] : [d], W('vision_model.embeddings.class_embedding'));
  set(wan ? 'pos_embedding' : 'positional_embedding', wan ? [1, T, d] : [T, d], W('vision_model.embeddings.position_embedding.weight'));
  for (const [t, w, o] of [['pre_layrnorm', 'pre_norm', 'ln_pre'], ['post_layernorm', 'post_norm', 'ln_post']]) {
    for (const p of ['weight', 'bias']) set(`${wan ? w : o}.${p}`, [d], W(`vision_model.${t}.${p}`));
  }
  set(wan ? 'head' : 'proj', [d, c.projectionDim], projT);
  for (let i = 0; i < c.numLayers; i++) {
    const at = wan ? `transformer.${i}.` : `transformer.resblocks.${i}.`;
    for (const [t, w, o] of [['layer_norm1', 'norm1', 'ln_1'], ['layer_norm2', 'norm2', 'ln_2']]) for (const p of ['weight', 'bias']) set(`${at}${wan ? w : o}.${p}`, [d], L(i, `${t}.${p}`));
    const qkv = (p: string) => cat(L(i, `self_attn.q_proj.${p}`), L(i, `self_attn.k_proj.${p}`), L(i, `self_attn.v_proj.${p}`));
    set(wan ? `${at}attn.to_qkv.weight` : `${at}attn.in_proj_weight`, [3 * d, d], qkv('weight'));
    set(wan ? `${at}attn.to_qkv.bias` : `${at}attn.in_proj_bias`, [3 * d], qkv('bias'));
    for (const [t, w, o, shape] of [['self_attn.out_proj', 'attn.proj', 'attn.out_proj', [d, d]], ['mlp.fc1', 'mlp.0', 'mlp.c_fc', [c.intermediateSize, d]], ['mlp.fc2', 'mlp.2', 'mlp.c_proj', [d, c.intermediateSize]]] as const) {
      set(`${at}${wan ? w : o}.weight`, [...shape], L(i, `${t}.weight`));
      set(`${at}${wan ? w : o}.bias`, [shape[0]], L(i, `${t}.bias`));
    }
  }
  // Wan's file is the whole XLM-RoBERTa CLIP: the text tower and logit scale sit beside the visual one.
  if (wan) { out.set('textual.head.0.weight', f32([2, 2], new Float32Array(4))); out.set('log_scale', f32([1], new Float32Array(1))); }
  return out;
}

const erf = (x: number) => {
  // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7).
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  return s * (1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496735) * t + 0.254829592) * t * Math.exp(-a * a));
};

/** PyTorch's bicubic (align_corners=False, a = −0.75, edge taps clamped) of one [H, W] plane to [S, S]. */
function bicubic(plane: Float64Array, h: number, w: number, s: number): Float64Array {
  const cubic = (x: number) => { const a = -0.75, t = Math.abs(x); return t <= 1 ? (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1 : t < 2 ? a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a : 0; };
  const taps = (i: number, from: number) => {
    const src = (i + 0.5) * (from / s) - 0.5, i0 = Math.floor(src);
    return [-1, 0, 1, 2].map((k) => ({ at: Math.min(from - 1, Math.max(0, i0 + k)), w: cubic(src - (i0 + k)) }));
  };
  const out = new Float64Array(s * s);
  for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
    let v = 0;
    for (const ty of taps(y, h)) for (const tx of taps(x, w)) v += ty.w * tx.w * plane[ty.at * w + tx.at];
    out[y * s + x] = v;
  }
  return out;
}

/** Wan's features of one image [3, H, W] in [−1, 1], in float64. */
function referencePenultimate(px: Float32Array, h: number, w: number): R.Arr {
  const mean = [0.48145466, 0.4578275, 0.40821073], std = [0.26862954, 0.26130258, 0.27577711];
  const s = c.imageSize, d = c.hiddenSize, T = clipVisionTokens(c), g = s / c.patchSize;
  const img = new Float64Array(3 * s * s);
  for (let ch = 0; ch < 3; ch++) {
    const r = bicubic(R.f64(px.subarray(ch * h * w, (ch + 1) * h * w)), h, w, s);
    for (let i = 0; i < s * s; i++) img[ch * s * s + i] = ((r[i] * 0.5 + 0.5) - mean[ch]) / std[ch];
  }
  const grid = R.conv2d(img, [1, 3, s, s], W('vision_model.embeddings.patch_embedding.weight'), new Float64Array(d), d, c.patchSize, 0, c.patchSize).y;
  let x: R.Arr = new Float64Array(T * d);
  const pos = W('vision_model.embeddings.position_embedding.weight'), cls = W('vision_model.embeddings.class_embedding');
  for (let e = 0; e < d; e++) x[e] = cls[e] + pos[e];
  for (let p = 0; p < g * g; p++) for (let e = 0; e < d; e++) x[(p + 1) * d + e] = grid[e * g * g + p] + pos[(p + 1) * d + e];
  x = R.layerNorm(x, T, d, W('vision_model.pre_layrnorm.weight'), W('vision_model.pre_layrnorm.bias'), c.layerNormEps);
  for (let i = 0; i < c.numLayers - 1; i++) {
    const L = (k: string) => W(`vision_model.encoder.layers.${i}.${k}`);
    const lin = (a: Float64Array, m: string, inF: number, outF: number) => R.linear(a, T, inF, L(`${m}.weight`), outF, L(`${m}.bias`));
    const n1 = R.layerNorm(x, T, d, L('layer_norm1.weight'), L('layer_norm1.bias'), c.layerNormEps);
    const att = R.mha(lin(n1, 'self_attn.q_proj', d, d), lin(n1, 'self_attn.k_proj', d, d), lin(n1, 'self_attn.v_proj', d, d), T, T, d, c.numHeads);
    x = R.addArr(x, lin(att, 'self_attn.out_proj', d, d));
    const n2 = R.layerNorm(x, T, d, L('layer_norm2.weight'), L('layer_norm2.bias'), c.layerNormEps);
    const hidden = lin(n2, 'mlp.fc1', d, c.intermediateSize).map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    x = R.addArr(x, lin(hidden, 'mlp.fc2', c.intermediateSize, d));
  }
  return x;
}

describe('a tiny CLIP vision tower from safetensors files', () => {
  const H = 20, Wd = 34; // a non-square frame: the resize both upsamples rows and downsamples columns
  const px = Float32Array.from({ length: 3 * H * Wd }, (_, i) => Math.max(-1, Math.min(1, Math.sin(i * 0.37) * 0.8 + Math.cos(i * 0.011))));
  const want = referencePenultimate(px, H, Wd);

  for (const [naming, prefix] of [['transformers', ''], ['wan', 'visual.'], ['open_clip', 'visual.']] as [ClipVisionNaming, string][]) {
    it(`${naming} layout: loads, reads its sizes, and gives the float64 reference's penultimate states through ORT`, async () => {
      const file = join(dir, `${naming}.safetensors`);
      await writeSafetensors(file, fileTensors(naming, prefix), { loragraph_num_heads: String(c.numHeads) });
      const m = await openClipVision(file);
      try {
        expect(m.naming).toBe(naming);
        expect(m.config).toMatchObject({ imageSize: 28, patchSize: 14, hiddenSize: 8, intermediateSize: 16, numLayers: 3, numHeads: 2, projectionDim: 4, hiddenAct: 'gelu' });
        expect(m.params).toBe([...weights.values()].reduce((n, v) => n + v.length, 0));
        const x = input('px', [1, 3, H, Wd]);
        const s = await rt.load(compileGraph([x], { out: clipVisionPenultimate(new Builder(m.weights), m.config, x) }));
        const got = (await s.run({ px: { dtype: 'float32', shape: [1, 3, H, Wd], data: px } })).out;
        expect(got.shape).toEqual([1, 5, 8]);
        expect(R.maxRelErr(got.data as Float32Array, want)).toBeLessThan(1e-4);
      } finally {
        m.close();
      }
    });
  }

  it('refuses a file that is no CLIP vision tower, naming it', async () => {
    const file = join(dir, 'not-clip.safetensors');
    await writeSafetensors(file, { 'encoder.conv1.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } });
    await expect(openClipVision(file)).rejects.toThrow(/not-clip\.safetensors: not a CLIP vision model/);
  });
});
