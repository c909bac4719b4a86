// The FLUX transformer (FLUX.2 and FLUX.1) as symbolic tensors, with BFL's module paths
// (`double_blocks.0.img_attn.qkv`, `single_blocks.3.linear1`, …): the names of BFL's and ComfyUI's
// single files and of ai-toolkit's and kohya's LoRA files. Text tokens come first in the joint
// sequence; image tokens are patchified latents [B, L, inChannels].
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { add, gelu, mul, silu } from '../ops/elementwise';
import { concat, slice, split } from '../ops/shape-and-reduce';
import { applyRope, ditAttention, gatedResidual, layerNormPlain, mergeHeads, modulate, rmsNorm, splitHeads, swiglu, timestepEmbedding, type RopeTables } from '../dit/layers';
import { headDim, mlpHidden, mlpIn, validateFluxConfig, type FluxTransformerConfig } from './config';

const NORM_EPS = 1e-6;

/** One adaLN parameter set: x ↦ norm(x)(1 + scale) + shift, then residual + gate·f(·). */
interface ModulationSet { shift: Tensor; scale: Tensor; gate: Tensor }

/** `lin` (after SiLU) of the conditioning vector, chunked into `sets` shift/scale/gate triples. */
function modulation(b: Builder, name: string, vec: Tensor, hidden: number, sets: number, bias: boolean): ModulationSet[] {
  const chunks = split(b.linear(`${name}.lin`, silu(vec), hidden, 3 * sets * hidden, bias), 3 * sets, -1);
  return Array.from({ length: sets }, (_, i) => ({ shift: chunks[3 * i], scale: chunks[3 * i + 1], gate: chunks[3 * i + 2] }));
}

/** `in_layer` → SiLU → `out_layer` (BFL's MLPEmbedder). */
function mlpEmbedder(b: Builder, x: Tensor, inDim: number, hidden: number, bias: boolean): Tensor {
  return b.linear('out_layer', silu(b.linear('in_layer', x, inDim, hidden, bias)), hidden, hidden, bias);
}

/** Per-head RMS norm of q and k (`norm.query_norm.scale`, `norm.key_norm.scale`), on [B, H, L, D]. */
function qkNorm(b: Builder, q: Tensor, k: Tensor, d: number): [Tensor, Tensor] {
  return [rmsNorm(q, b.param('norm.query_norm.scale', [d]), NORM_EPS), rmsNorm(k, b.param('norm.key_norm.scale', [d]), NORM_EPS)];
}

/** A fused qkv projection output [B, L, 3H] → normed, per-head q, k, v [B, heads, L, D]. */
function headsOf(b: Builder, qkv: Tensor, cfg: FluxTransformerConfig): [Tensor, Tensor, Tensor] {
  const [q, k, v] = split(qkv, 3, -1).map((t) => splitHeads(t, cfg.numHeads));
  const [qn, kn] = qkNorm(b, q, k, headDim(cfg));
  return [qn, kn, v];
}

function attend(b: Builder, q: Tensor, k: Tensor, v: Tensor, rope: RopeTables): Tensor {
  return mergeHeads(ditAttention(applyRope(q, rope, 'interleaved'), applyRope(k, rope, 'interleaved'), v, b.attentionChunk));
}

function mlpActivation(cfg: FluxTransformerConfig, x: Tensor): Tensor {
  return cfg.mlpActivation === 'swiglu' ? swiglu(x) : gelu(x, 'tanh');
}

function mlp(b: Builder, x: Tensor, cfg: FluxTransformerConfig): Tensor {
  const h = cfg.hiddenSize;
  return b.linear('2', mlpActivation(cfg, b.linear('0', x, h, mlpIn(cfg), cfg.bias)), mlpHidden(cfg), h, cfg.bias);
}

export interface DoubleBlockModulation { img: ModulationSet[]; txt: ModulationSet[] }

/** A double-stream block: image and text streams with their own weights, attending jointly (text first). */
export function doubleBlock(b: Builder, cfg: FluxTransformerConfig, img: Tensor, txt: Tensor, mod: DoubleBlockModulation | Tensor, rope: RopeTables): { img: Tensor; txt: Tensor } {
  const h = cfg.hiddenSize;
  // FLUX.1 computes each block's modulation from the vector; FLUX.2 passes the shared one in.
  const m = 'img' in mod ? mod : { img: modulation(b, 'img_mod', mod, h, 2, cfg.bias), txt: modulation(b, 'txt_mod', mod, h, 2, cfg.bias) };
  const stream = (name: 'img' | 'txt', x: Tensor) => {
    const attn = b.scope(`${name}_attn`);
    const qkv = attn.linear('qkv', modulate(layerNormPlain(x, NORM_EPS), m[name][0].shift, m[name][0].scale), h, 3 * h, cfg.bias);
    return headsOf(attn, qkv, cfg);
  };
  const [iq, ik, iv] = stream('img', img);
  const [tq, tk, tv] = stream('txt', txt);
  const nTxt = txt.shape[1];
  const joint = attend(b, concat([tq, iq], 2), concat([tk, ik], 2), concat([tv, iv], 2), rope);
  const txtAttn = slice(joint, [0], [nTxt], [1]);
  const imgAttn = slice(joint, [nTxt], [joint.shape[1]], [1]);
  const finish = (name: 'img' | 'txt', x: Tensor, a: Tensor) => {
    const [m1, m2] = m[name];
    const y = gatedResidual(x, m1.gate, b.scope(`${name}_attn`).linear('proj', a, h, h, cfg.bias));
    return gatedResidual(y, m2.gate, mlp(b.scope(`${name}_mlp`), modulate(layerNormPlain(y, NORM_EPS), m2.shift, m2.scale), cfg));
  };
  return { img: finish('img', img, imgAttn), txt: finish('txt', txt, txtAttn) };
}

/**
 * A single-stream block over the joint sequence: `linear1` makes q, k, v and the MLP input at once,
 * attention and MLP run in parallel, `linear2` projects their concatenation back.
 */
export function singleBlock(b: Builder, cfg: FluxTransformerConfig, x: Tensor, mod: ModulationSet | Tensor, rope: RopeTables): Tensor {
  const h = cfg.hiddenSize;
  const m = 'shift' in mod ? mod : modulation(b, 'modulation', mod, h, 1, cfg.bias)[0];
  const fused = b.linear('linear1', modulate(layerNormPlain(x, NORM_EPS), m.shift, m.scale), h, 3 * h + mlpIn(cfg), cfg.bias);
  const [qkv, mlpIn_] = split(fused, [3 * h, mlpIn(cfg)], -1);
  const [q, k, v] = headsOf(b, qkv, cfg);
  const out = b.linear('linear2', concat([attend(b, q, k, v, rope), mlpActivation(cfg, mlpIn_)], -1), h + mlpHidden(cfg), h, cfg.bias);
  return gatedResidual(x, m.gate, out);
}

export interface FluxInputs {
  /** Patchified latents [B, Limg, inChannels]. */
  img: Tensor;
  /** Text features [B, Ltxt, contextDim]. */
  txt: Tensor;
  /** Noise level t in [0, 1] per sample [B] (embedded as t·1000). */
  timesteps: Tensor;
  /** Guidance scale per sample [B] (guidance-distilled models only). */
  guidance?: Tensor;
  /** FLUX.1: pooled CLIP-L [B, 768]. */
  pooled?: Tensor;
  /** RoPE tables for the joint sequence: text positions, then image positions. */
  rope: RopeTables;
}

/** The conditioning vector: time (+ guidance) (+ pooled text) embeddings, [B, hidden]. */
export function conditioningVector(b: Builder, cfg: FluxTransformerConfig, x: FluxInputs): Tensor {
  const h = cfg.hiddenSize;
  const embed = (name: string, t: Tensor) => mlpEmbedder(b.scope(name), timestepEmbedding(mul(t, 1000), cfg.timestepChannels), cfg.timestepChannels, h, cfg.bias);
  let vec = embed('time_in', x.timesteps);
  if (cfg.guidanceEmbed) {
    if (!x.guidance) throw new Error(`${cfg.name} is guidance-distilled: it needs a guidance input`);
    vec = add(vec, embed('guidance_in', x.guidance));
  }
  if (cfg.pooledDim) {
    if (!x.pooled) throw new Error(`${cfg.name} needs the pooled CLIP vector`);
    vec = add(vec, mlpEmbedder(b.scope('vector_in'), x.pooled, cfg.pooledDim, h, cfg.bias));
  }
  return vec;
}

/** The transformer's velocity prediction for the image tokens, [B, Limg, inChannels]. */
export function fluxTransformer(b: Builder, cfg: FluxTransformerConfig, x: FluxInputs): Tensor {
  validateFluxConfig(cfg);
  const h = cfg.hiddenSize;
  const nTxt = x.txt.shape[1];
  if (x.rope.cos.shape[0] !== nTxt + x.img.shape[1]) throw new Error(`flux: RoPE tables cover ${x.rope.cos.shape[0]} tokens, the sequence has ${nTxt} text + ${x.img.shape[1]} image`);
  const vec = conditioningVector(b, cfg, x);
  let img = b.linear('img_in', x.img, cfg.inChannels, h, cfg.bias);
  let txt = b.linear('txt_in', x.txt, cfg.contextDim, h, cfg.bias);
  const shared = cfg.sharedModulation ? {
    double: { img: modulation(b, 'double_stream_modulation_img', vec, h, 2, false), txt: modulation(b, 'double_stream_modulation_txt', vec, h, 2, false) },
    single: modulation(b, 'single_stream_modulation', vec, h, 1, false)[0],
  } : undefined;
  // Each block is a recomputation boundary: with gradient checkpointing only the streams between blocks
  // are kept for the backward pass (what makes 4096-token klein 9B steps fit).
  for (let i = 0; i < cfg.depthDouble; i++) {
    const [pi, pt] = [img, txt];
    [img, txt] = b.block(() => { const o = doubleBlock(b.scope(`double_blocks.${i}`), cfg, pi, pt, shared?.double ?? vec, x.rope); return [o.img, o.txt]; });
  }
  let joint = concat([txt, img], 1);
  for (let i = 0; i < cfg.depthSingle; i++) {
    const prev = joint;
    joint = b.block(() => singleBlock(b.scope(`single_blocks.${i}`), cfg, prev, shared?.single ?? vec, x.rope));
  }
  img = slice(joint, [nTxt], [joint.shape[1]], [1]);
  return finalLayer(b.scope('final_layer'), cfg, img, vec);
}

/** LayerNorm, modulation by (shift, scale) — BFL's order; diffusers' norm_out stores (scale, shift) — and the output projection. */
function finalLayer(b: Builder, cfg: FluxTransformerConfig, x: Tensor, vec: Tensor): Tensor {
  const h = cfg.hiddenSize;
  const [shift, scale] = split(b.linear('adaLN_modulation.1', silu(vec), h, 2 * h, cfg.bias), 2, -1);
  return b.linear('linear', modulate(layerNormPlain(x, NORM_EPS), shift, scale), h, cfg.inChannels, cfg.bias);
}

/** FLUX.2 positions (t, h, w, l): image tokens (t, row, col, 0) row-major; text tokens (0, 0, 0, index). */
export function flux2ImagePositions(rows: number, cols: number, t = 0): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out.push([t, r, c, 0]);
  return out;
}
export function flux2TextPositions(tokens: number): number[][] {
  return Array.from({ length: tokens }, (_, l) => [0, 0, 0, l]);
}
/** FLUX.1 positions (0, h, w): image tokens by row and column, all text tokens at the origin. */
export function flux1ImagePositions(rows: number, cols: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out.push([0, r, c]);
  return out;
}
export function flux1TextPositions(tokens: number): number[][] {
  return Array.from({ length: tokens }, () => [0, 0, 0]);
}

/** Joint-sequence positions (text, then image) for a config and a latent token grid. */
export function jointPositions(cfg: FluxTransformerConfig, textTokens: number, rows: number, cols: number): number[][] {
  return cfg.generation === 2
    ? [...flux2TextPositions(textTokens), ...flux2ImagePositions(rows, cols)]
    : [...flux1TextPositions(textTokens), ...flux1ImagePositions(rows, cols)];
}
