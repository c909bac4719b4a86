// Neural-network ops: matmul, softmax, layer norm, conv2d, and the compositions built from them
// (group norm, nearest upsampling, scaled dot-product attention, linear).
import { apply, broadcastShapes, constant, normAxis, BYTES_PER_ELEMENT, type Tensor } from '../tensor';
import { availableParallelism } from 'node:os';
import { defineOp, attr } from './table';
import { foldedAtLoad } from './folding';
import { add, sub, mul, rsqrt, unbroadcast, where, cast } from './elementwise';
import { reshape, transpose, transposeLast2, reduceSum, reduceMean, expand, slice, concat, pad, gather, after } from './shape-and-reduce';

defineOp('matmul', {
  infer: ([a, b]) => {
    if (a.rank < 2 || b.rank < 2) throw new Error('matmul needs rank >= 2 operands');
    if (a.dtype !== b.dtype) throw new Error(`dtype mismatch ${a.dtype} vs ${b.dtype}`);
    const k1 = a.shape[a.rank - 1], k2 = b.shape[b.rank - 2];
    if (k1 !== k2) throw new Error(`inner dims ${k1} and ${k2} differ`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return { shape: [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]], dtype: a.dtype };
  },
  lower: (l, ins, out) => { l.node('MatMul', ins, {}, out); },
  vjp: (g, [a, b]) => [
    unbroadcast(matmul(g, transposeLast2(b)), a.shape),
    unbroadcast(matmul(transposeLast2(a), g), b.shape),
  ],
});

// x Wᵀ with W stored [out, in]. A primitive so it lowers to Gemm(transB) reading W as stored: a
// MatMul with Transpose(W) makes ORT fold a transposed copy of every frozen weight (twice the memory).
defineOp('linear', {
  infer: ([x, w]) => {
    if (w.rank !== 2 || x.rank < 1) throw new Error('linear takes x [..., in] and weight [out, in]');
    if (x.dtype !== w.dtype) throw new Error(`dtype mismatch ${x.dtype} vs ${w.dtype}`);
    if (x.shape[x.rank - 1] !== w.shape[1]) throw new Error(`input has ${x.shape[x.rank - 1]} features, weight expects ${w.shape[1]}`);
    return { shape: [...x.shape.slice(0, -1), w.shape[0]], dtype: x.dtype };
  },
  lower: (l, [x, w], out, _, [xt, wt], res) => {
    if (xt.rank === 2) { l.node('Gemm', [x, w], { transB: attr.int(1) }, out); return; }
    const rows = xt.size / xt.shape[xt.rank - 1];
    const flat = l.node('Reshape', [x, l.ints([rows, wt.shape[1]])]);
    const y = l.node('Gemm', [flat, w], { transB: attr.int(1) });
    l.node('Reshape', [y, l.ints([...res.shape])], {}, out);
  },
  vjp: (g, [x, w]) => {
    const rows = x.size / x.shape[x.rank - 1];
    const g2 = reshape(g, [rows, w.shape[0]]);
    return [matmul(g, w), matmul(transposeLast2(g2), reshape(x, [rows, w.shape[1]]))];
  },
});

defineOp<{ axis: number }>('softmax', {
  infer: ([a]) => ({ shape: a.shape, dtype: a.dtype }),
  lower: (l, ins, out, { axis }) => { l.node('Softmax', ins, { axis: attr.int(axis) }, out); },
  vjp: (g, _, out, { axis }) => [mul(out, sub(g, reduceSum(mul(g, out), axis, true)))],
});

// Layer norm over the trailing axes from `axis`; weight/bias have the normalised shape.
defineOp<{ axis: number; eps: number }>('layerNorm', {
  infer: ([x, w, b]) => {
    if (w.dtype !== x.dtype || b.dtype !== x.dtype) throw new Error('weight/bias dtype must match input');
    return { shape: x.shape, dtype: x.dtype };
  },
  lower: (l, ins, out, { axis, eps }) => {
    l.node('LayerNormalization', ins, { axis: attr.int(axis), epsilon: attr.float(eps) }, out);
  },
  vjp: (g, [x, w], _, { axis, eps }) => {
    const axes = [...Array(x.rank - axis).keys()].map((i) => axis + i);
    const lead = [...Array(axis).keys()];
    const { xhat, rstd } = normalize(x, axes, eps);
    const gx = mul(g, w);
    const dx = mul(rstd, sub(sub(gx, reduceMean(gx, axes, true)), mul(xhat, reduceMean(mul(gx, xhat), axes, true))));
    return [dx, reduceSum(mul(g, xhat), lead), reduceSum(g, lead)];
  },
});

/** Mean/variance normalisation over `axes` built from primitives (used by backward rules and group norm). */
function normalize(x: Tensor, axes: number[], eps: number) {
  const mean = reduceMean(x, axes, true);
  const centered = sub(x, mean);
  const rstd = rsqrt(add(reduceMean(mul(centered, centered), axes, true), eps));
  return { xhat: mul(centered, rstd), rstd };
}

// Group norm as one primitive: forward is InstanceNormalization over the [N, G, rest] view (one fused
// kernel instead of a dozen elementwise ops), backward the closed form below. SD's UNet and VAE have a
// group norm before nearly every convolution, so this is a large share of a training step's nodes.
defineOp<{ groups: number; eps: number }>('groupNorm', {
  infer: ([x, w, b]) => {
    if (x.rank < 2 || w.rank !== 1 || b.rank !== 1 || w.shape[0] !== x.shape[1] || b.shape[0] !== x.shape[1]) {
      throw new Error('group norm takes x [N, C, ...] with weight and bias [C]');
    }
    if (w.dtype !== x.dtype || b.dtype !== x.dtype) throw new Error('weight/bias dtype must match input');
    return { shape: x.shape, dtype: x.dtype };
  },
  lower: (l, [x, w, b], out, { groups, eps }, [xt]) => {
    const grouped = l.node('Reshape', [x, l.ints([xt.shape[0], groups, -1])]);
    const ones = l.node('Expand', [l.scalar(1, xt.dtype), l.ints([groups])]);
    const zeros = l.node('Expand', [l.scalar(0, xt.dtype), l.ints([groups])]);
    const normed = l.node('InstanceNormalization', [grouped, ones, zeros], { epsilon: attr.float(eps) });
    const back = l.node('Reshape', [normed, l.ints([...xt.shape])]);
    const affine = [xt.shape[1], ...xt.shape.slice(2).map(() => 1)];
    const scaled = l.node('Mul', [back, l.node('Reshape', [w, l.ints(affine)])]);
    l.node('Add', [scaled, l.node('Reshape', [b, l.ints(affine)])], {}, out);
  },
  vjp: (g, [x, w], _, { groups, eps }) => {
    const [n, c] = x.shape;
    const affine = [c, ...x.shape.slice(2).map(() => 1)];
    const { xhat, rstd } = normalize(reshape(x, [n, groups, -1]), [2], eps);
    const gx = reshape(mul(g, reshape(w, affine)), [n, groups, -1]);
    const dx = mul(rstd, sub(sub(gx, reduceMean(gx, 2, true)), mul(xhat, reduceMean(mul(gx, xhat), 2, true))));
    const spatial = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
    return [reshape(dx, x.shape), reduceSum(mul(g, reshape(xhat, x.shape)), spatial), reduceSum(g, spatial)];
  },
});

interface ConvAttrs { stride: [number, number]; padding: [number, number, number, number]; dilation: [number, number]; groups: number }
defineOp<ConvAttrs>('conv2d', {
  infer: ([x, w], { stride, padding, dilation, groups }) => {
    if (x.rank !== 4 || w.rank !== 4) throw new Error('conv2d takes NCHW input and OIHW weight');
    if (x.shape[1] !== w.shape[1] * groups) throw new Error(`input has ${x.shape[1]} channels, weight expects ${w.shape[1] * groups}`);
    const [pt, pl, pb, pr] = padding;
    const oh = Math.floor((x.shape[2] + pt + pb - dilation[0] * (w.shape[2] - 1) - 1) / stride[0]) + 1;
    const ow = Math.floor((x.shape[3] + pl + pr - dilation[1] * (w.shape[3] - 1) - 1) / stride[1]) + 1;
    if (oh <= 0 || ow <= 0) throw new Error('conv2d output would be empty');
    return { shape: [x.shape[0], w.shape[0], oh, ow], dtype: x.dtype };
  },
  lower: (l, ins, out, { stride, padding, dilation, groups }) => {
    l.node('Conv', ins, {
      strides: attr.ints(stride), pads: attr.ints(padding), dilations: attr.ints(dilation), group: attr.int(groups),
    }, out);
  },
  workspace: ([x, w], a) => convWorkspace(x, w, a),
  vjp: (g, [x, w], _, a) => [conv2dInputGrad(g, w, x.shape, a), conv2dWeightGrad(g, x, w.shape, a)],
});

// MLAS's im2col buffer for a Conv (MlasConvPrepare's working buffer, taken from ORT's arena while the
// op runs), in elements: none for pointwise convs (the GEMM reads the input directly), the whole
// expansion when the filters outnumber the output pixels, else a 16 Ki-float segment per thread unless
// the batch or groups exceed one, when each thread expands a whole image. A weight ORT holds at load
// is left out: on x86 its Conv is rewritten to the NCHWc kernels, which expand nothing.
const MLAS_SEGMENT = 16384;
function convWorkspace(x: Tensor, w: Tensor, { stride, padding, dilation, groups }: ConvAttrs): number {
  if (foldedAtLoad(w)) return 0;
  const [cout, cinPerGroup, kh, kw] = w.shape;
  const k = cinPerGroup * kh * kw, filters = cout / groups;
  const side = (i: number) => Math.floor((x.shape[2 + i] + padding[i] + padding[i + 2] - dilation[i] * (w.shape[2 + i] - 1) - 1) / stride[i]) + 1;
  const outputSize = side(0) * side(1);
  const bytes = BYTES_PER_ELEMENT[x.dtype];
  if (stride.every((s) => s === 1) && padding.every((p) => p === 0) && k === cinPerGroup) return 0;
  if (filters > outputSize) return outputSize * k * bytes;
  const threads = Math.min(availableParallelism(), 16);
  const images = x.shape[0] * groups;
  if (images > 1) return Math.min(threads, images) * Math.max(outputSize * k, filters * outputSize, MLAS_SEGMENT) * bytes;
  return threads * MLAS_SEGMENT * bytes;
}

// dX: the transposed convolution of the output gradient with the same weight.
defineOp<ConvAttrs & { inputShape: number[] }>('conv2dInputGrad', {
  infer: ([g], { inputShape }) => ({ shape: inputShape, dtype: g.dtype }),
  lower: (l, [g, w], out, { stride, padding, dilation, groups, inputShape }, [gt, wt]) => {
    const [pt, pl, pb, pr] = padding;
    const full = (i: number, p0: number, p1: number, s: number, d: number) =>
      (gt.shape[2 + i] - 1) * s - p0 - p1 + d * (wt.shape[2 + i] - 1) + 1;
    const op = [inputShape[2] - full(0, pt, pb, stride[0], dilation[0]), inputShape[3] - full(1, pl, pr, stride[1], dilation[1])];
    l.node('ConvTranspose', [g, w], {
      strides: attr.ints(stride), pads: attr.ints(padding), dilations: attr.ints(dilation), group: attr.int(groups),
      output_padding: attr.ints(op),
    }, out);
  },
  // ORT's ConvTranspose multiplies into a column buffer of (input channels · taps) × (gradient pixels)
  // before folding it back (col2im): at SD 1.5's 512² a 960-channel 3×3 conv's is 141 MiB, taken from the
  // arena while the op runs (conv_transpose.cc).
  workspace: ([g, w]) => w.shape[1] * w.shape[2] * w.shape[3] * g.shape[2] * g.shape[3] * BYTES_PER_ELEMENT[g.dtype],
  vjp: (gg, [, w], _, a) => [conv2d(gg, w, undefined, a), null],
});

function conv2dInputGrad(g: Tensor, w: Tensor, inputShape: readonly number[], a: ConvAttrs): Tensor {
  const [, , kh, kw] = w.shape;
  const [pt, pl, pb, pr] = a.padding;
  const full = [(g.shape[2] - 1) + a.dilation[0] * (kh - 1) + 1, (g.shape[3] - 1) + a.dilation[1] * (kw - 1) + 1];
  // Stride 1 (the common case): dX is a plain convolution of g with the spatially flipped, in/out-swapped
  // weight — MLAS runs Conv about twice as fast as ConvTranspose on these shapes. Only for weights ORT
  // flips once at load: a weight made at run time (dequantised, cast from bf16) would be copied three
  // times per step (transpose, two gathers), and those big short-lived buffers of every size fragment
  // ORT's arena (bench:sd15 int8 at 256²: +0.7 GiB peak; the ConvTranspose is also faster than the copies).
  if (a.stride[0] === 1 && a.stride[1] === 1 && a.groups === 1 && full[0] - pt - pb === inputShape[2] && full[1] - pl - pr === inputShape[3] && foldedAtLoad(w)) {
    const flipped = flip(transpose(w, [1, 0, 2, 3]), [2, 3]);
    const q = [a.dilation[0] * (kh - 1), a.dilation[1] * (kw - 1)];
    return conv2d(g, flipped, undefined, { padding: [q[0] - pt, q[1] - pl, q[0] - pb, q[1] - pr], dilation: a.dilation });
  }
  return apply('conv2dInputGrad', [g, w], { ...a, inputShape: [...inputShape] });
}

// dW: unfold the input into patches and contract with the output gradient in one batched matmul.
// The unfold is a grouped convolution with one-hot kernels (one output channel per input channel and
// kernel tap). A convolution whose kernel is the whole output gradient computes dW too, but MLAS's
// im2col makes that ~4× slower than this on typical shapes.
function conv2dWeightGrad(g: Tensor, x: Tensor, wShape: readonly number[], a: ConvAttrs): Tensor {
  const [cout, cinPerGroup, kh, kw] = wShape;
  const [n, , ho, wo] = g.shape;
  const cin = x.shape[1];
  const taps = kh * kw;
  const oneHot = new Float32Array(cin * taps * taps);
  for (let c = 0; c < cin; c++) for (let t = 0; t < taps; t++) oneHot[(c * taps + t) * taps + t] = 1;
  const unfoldKernel = cast(constant(oneHot, [cin * taps, 1, kh, kw]), x.dtype);
  const cols = conv2d(x, unfoldKernel, undefined, { stride: a.stride, padding: a.padding, dilation: a.dilation, groups: cin }); // [N, Cin·taps, Ho, Wo]
  const perGroupOut = cout / a.groups;
  const parts: Tensor[] = [];
  for (let gi = 0; gi < a.groups; gi++) {
    const cg = a.groups === 1 ? cols : slice(cols, [gi * cinPerGroup * taps], [(gi + 1) * cinPerGroup * taps], [1]);
    const gg = a.groups === 1 ? g : slice(g, [gi * perGroupOut], [(gi + 1) * perGroupOut], [1]);
    const dw = matmul(reshape(gg, [n, perGroupOut, ho * wo]), transposeLast2(reshape(cg, [n, cinPerGroup * taps, ho * wo])));
    parts.push(reshape(reduceSum(dw, 0), [perGroupOut, cinPerGroup, kh, kw]));
  }
  return concat(parts, 0);
}

/** Reverses the given axes (a Gather with descending indices, folded away for constants). */
export function flip(x: Tensor, axes: number[]): Tensor {
  let y = x;
  for (const ax of axes) {
    const n = x.shape[ax];
    y = gather(y, constant(BigInt64Array.from({ length: n }, (_, i) => BigInt(n - 1 - i)), [n], 'int64'), ax);
  }
  return y;
}

// --- functional API ------------------------------------------------------------------------------
export function matmul(a: Tensor, b: Tensor): Tensor { return apply('matmul', [a, b]); }

export function softmax(a: Tensor, axis = -1): Tensor {
  return apply('softmax', [a], { axis: normAxis(axis, a.rank) });
}

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  return apply('layerNorm', [x, weight, bias], { axis: x.rank - weight.rank, eps });
}

/** Group norm over NC... input: statistics per (sample, group of channels). */
export function groupNorm(x: Tensor, groups: number, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  if (x.shape[1] % groups) throw new Error(`group norm: ${x.shape[1]} channels do not split into ${groups} groups`);
  return apply('groupNorm', [x, weight, bias], { groups, eps });
}

export interface Conv2dOptions { stride?: number | [number, number]; padding?: number | [number, number] | [number, number, number, number]; dilation?: number | [number, number]; groups?: number }
const pair2 = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

export function conv2d(x: Tensor, w: Tensor, bias?: Tensor, opts: Conv2dOptions = {}): Tensor {
  const p = opts.padding ?? 0;
  const padding: [number, number, number, number] = typeof p === 'number' ? [p, p, p, p] : p.length === 2 ? [p[0], p[1], p[0], p[1]] : p;
  const y = apply('conv2d', [x, w], { stride: pair2(opts.stride ?? 1), padding, dilation: pair2(opts.dilation ?? 1), groups: opts.groups ?? 1 });
  return bias ? add(y, reshape(bias, [1, bias.size, 1, 1])) : y;
}

/** Nearest-neighbour 2× upsampling of NCHW, as a broadcast (its gradient is the 2×2 sum). */
export function upsampleNearest2x(x: Tensor): Tensor {
  const [n, c, h, w] = x.shape;
  return reshape(expand(reshape(x, [n, c, h, 1, w, 1]), [n, c, h, 2, w, 2]), [n, c, h * 2, w * 2]);
}

/** y = x Wᵀ + b with W stored [out, in] as torch does. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const y = apply('linear', [x, weight]);
  return bias ? add(y, bias) : y;
}

/**
 * Scaled dot-product attention on [..., L, D] queries and [..., S, D] keys/values. `mask` is either a
 * boolean (true = attend) or an additive float bias broadcastable to [..., L, S]. `chunk`: compute it
 * `chunk` queries at a time (memory-efficient attention, see the `chunkedAttention` op), so the whole
 * [..., L, S] score matrix never exists, forward or backward; used when there is no mask.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: { mask?: Tensor; causal?: boolean; scale?: number; chunk?: number } = {}): Tensor {
  const scale = opts.scale ?? 1 / Math.sqrt(q.shape[q.rank - 1]);
  if (opts.chunk && !opts.mask && !opts.causal && q.shape[q.rank - 2] > opts.chunk) return chunkedAttention(q, k, v, opts.chunk, scale);
  // Scaling q (L×D) rather than the scores (L×S) is a smaller pass forward and backward.
  let scores = matmul(mul(q, scale), transposeLast2(k));
  if (opts.mask) scores = opts.mask.dtype === 'bool' ? where(opts.mask, scores, -1e9) : add(scores, opts.mask);
  if (opts.causal) scores = add(scores, causalBias(q.shape[q.rank - 2], k.shape[k.rank - 2]));
  return matmul(softmax(scores, -1), v);
}

function causalBias(l: number, s: number): Tensor {
  const data = new Float32Array(l * s);
  for (let i = 0; i < l; i++) for (let j = 0; j < s; j++) if (j > i + (s - l)) data[i * s + j] = -1e9;
  return constant(data, [l, s]);
}

// --- memory-efficient attention --------------------------------------------------------------------
// softmax(q kᵀ·scale) v computed `chunk` query rows at a time. Full attention holds [..., L, S] scores
// and probabilities (40 heads × 14,040² fp32 = 31.5 GB for a Wan clip) and autodiff keeps the
// probabilities for the backward pass. Here only one chunk's [..., c, S] exists at a time: the forward
// keeps only the output, and the backward recomputes each chunk's probabilities from q, k and the
// output (softmax of a row needs only that row's scores, so query chunks need no online rescaling).
// Chunks are chained — chunk i+1 reads q only once chunk i is done (the `after` trick) — so ORT runs
// them one after another and frees each chunk's scores before the next chunk starts.

/** [start, end) of each query chunk. */
function chunkRanges(len: number, chunk: number): [number, number][] {
  const r: [number, number][] = [];
  for (let s = 0; s < len; s += chunk) r.push([s, Math.min(len, s + chunk)]);
  return r;
}

defineOp<{ chunk: number; scale: number }>('chunkedAttention', {
  infer: ([q, k, v]) => {
    if (q.rank < 2 || k.rank !== q.rank || v.rank !== q.rank) throw new Error('chunked attention takes q [..., L, D], k [..., S, D], v [..., S, Dv] of one rank');
    if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new Error(`chunked attention: dtypes ${q.dtype}, ${k.dtype}, ${v.dtype} differ`);
    const r = q.rank;
    if (q.shape[r - 1] !== k.shape[r - 1] || k.shape[r - 2] !== v.shape[r - 2]) throw new Error(`chunked attention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not fit`);
    const batch = broadcastShapes(q.shape.slice(0, -2), broadcastShapes(k.shape.slice(0, -2), v.shape.slice(0, -2)));
    return { shape: [...batch, q.shape[r - 2], v.shape[r - 1]], dtype: q.dtype };
  },
  lower: (l, [q, k, v], out, { chunk, scale }, [qt]) => {
    const r = qt.rank, axis = r - 2;
    const perm = [...Array(r).keys()];
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    const qs = l.node('Mul', [q, l.scalar(scale, qt.dtype)]);
    const kT = l.node('Transpose', [k], { perm: attr.ints(perm) });
    const outs: string[] = [];
    let prev = '';
    for (const [s, e] of chunkRanges(qt.shape[axis], chunk)) {
      // Gate: the same Reshape-by-0×dep as the `after` op, so chunk i+1 starts after chunk i.
      let src = qs;
      if (prev) {
        const first = l.node('Slice', [l.node('Reshape', [prev, l.ints([-1])]), l.ints([0]), l.ints([1]), l.ints([0]), l.ints([1])]);
        const zero = l.node('Mul', [l.node('Cast', [first], { to: attr.int(7) }), l.scalar(0, 'int64')]);
        src = l.node('Reshape', [qs, l.node('Add', [l.ints([...qt.shape]), zero])]);
      }
      const qi = l.node('Slice', [src, l.ints([s]), l.ints([e]), l.ints([axis]), l.ints([1])]);
      const p = l.node('Softmax', [l.node('MatMul', [qi, kT])], { axis: attr.int(-1) });
      prev = l.node('MatMul', [p, v]);
      outs.push(prev);
    }
    l.node('Concat', outs, { axis: attr.int(axis) }, out);
  },
  // Scaled q, kᵀ, and one chunk's scores, live while the op runs (ORT's Softmax writes its
  // probabilities over the scores, and each chunk's scores take the previous chunk's dead buffer).
  workspace: ([q, k], { chunk }) => {
    const r = q.rank, bytes = BYTES_PER_ELEMENT[q.dtype];
    const heads = q.size / (q.shape[r - 2] * q.shape[r - 1]);
    return (q.size + k.size + heads * Math.min(chunk, q.shape[r - 2]) * k.shape[r - 2]) * bytes;
  },
  vjp: (g, [q, k, v], o, { chunk, scale }) => {
    const axis = q.rank - 2;
    const rows = (t: Tensor, s: number, e: number) => slice(t, [s], [e], [axis]);
    const kT = transposeLast2(k);
    // dq chunks, and dk, dv summed over chunks; each chunk gated on the previous one's results.
    const dqs: Tensor[] = [];
    let dk: Tensor | undefined, dv: Tensor | undefined;
    let gate: Tensor[] = [g];
    for (const [s, e] of chunkRanges(q.shape[axis], chunk)) {
      let qg = q;
      for (const d of gate) qg = after(qg, d);
      const qi = mul(rows(qg, s, e), scale);
      const p = softmax(matmul(qi, kT), -1);
      const gi = rows(g, s, e);
      const dvi = matmul(transposeLast2(p), gi);
      // dS = P ⊙ (dP − rowsum(dO ⊙ O)): the softmax VJP with rowsum(dP ⊙ P) = rowsum(dO ⊙ O).
      const ds = mul(p, sub(matmul(gi, transposeLast2(v)), reduceSum(mul(gi, rows(o, s, e)), -1, true)));
      const dqi = mul(matmul(ds, k), scale);
      const dki = matmul(transposeLast2(ds), qi);
      dk = dk ? add(dk, dki) : dki;
      dv = dv ? add(dv, dvi) : dvi;
      dqs.push(dqi);
      gate = [dqi, dk, dv];
    }
    return [unbroadcast(concat(dqs, axis), q.shape), unbroadcast(dk!, k.shape), unbroadcast(dv!, v.shape)];
  },
});

/** softmax(q kᵀ·scale) v, `chunk` query rows at a time (see above). */
export function chunkedAttention(q: Tensor, k: Tensor, v: Tensor, chunk: number, scale = 1 / Math.sqrt(q.shape[q.rank - 1])): Tensor {
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`chunked attention: chunk must be a positive integer, got ${chunk}`);
  return apply('chunkedAttention', [q, k, v], { chunk, scale });
}
