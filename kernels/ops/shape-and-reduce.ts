// Ops that move or reduce data without arithmetic on it: reshape, transpose, slice, concat, gather,
// expand, pad, and the reductions sum/max (mean is sum scaled).
import { apply, normAxis, type Shape, type Tensor } from '../tensor';
import { defineOp, attr } from './table';
import { equal, mul, div, cast } from './elementwise';

const prod = (s: Shape) => s.reduce((a, b) => a * b, 1);

export function resolveShape(shape: readonly number[], size: number): number[] {
  const known = shape.filter((d) => d !== -1);
  const k = prod(known);
  const minus = shape.length - known.length;
  if (minus > 1) throw new Error('at most one -1 in a shape');
  const out = shape.map((d) => (d === -1 ? size / k : d));
  if (prod(out) !== size || out.some((d) => !Number.isInteger(d))) throw new Error(`cannot reshape ${size} elements to [${shape.join(',')}]`);
  return out;
}

defineOp<{ shape: number[] }>('reshape', {
  infer: ([a], { shape }) => ({ shape: resolveShape(shape, a.size), dtype: a.dtype }),
  lower: (l, [a], out, _, __, res) => { l.node('Reshape', [a, l.ints([...res.shape])], {}, out); },
  vjp: (g, [a]) => [reshape(g, a.shape)],
});

defineOp<{ perm: number[] }>('transpose', {
  infer: ([a], { perm }) => {
    if (perm.length !== a.rank || [...perm].sort().some((p, i) => p !== i)) throw new Error(`bad permutation [${perm}]`);
    return { shape: perm.map((p) => a.shape[p]), dtype: a.dtype };
  },
  lower: (l, ins, out, { perm }) => { l.node('Transpose', ins, { perm: attr.ints(perm) }, out); },
  vjp: (g, _, __, { perm }) => {
    const inv: number[] = [];
    perm.forEach((p, i) => { inv[p] = i; });
    return [transpose(g, inv)];
  },
});

interface SliceAttrs { starts: number[]; ends: number[]; axes: number[]; steps: number[] }
defineOp<SliceAttrs>('slice', {
  infer: ([a], { starts, ends, axes, steps }) => {
    const shape = [...a.shape];
    axes.forEach((ax, i) => {
      const n = Math.ceil((ends[i] - starts[i]) / steps[i]);
      if (n <= 0) throw new Error(`empty slice on axis ${ax}`);
      shape[ax] = n;
    });
    return { shape, dtype: a.dtype };
  },
  lower: (l, [a], out, { starts, ends, axes, steps }) => {
    l.node('Slice', [a, l.ints(starts), l.ints(ends), l.ints(axes), l.ints(steps)], {}, out);
  },
  vjp: (g, [a], _, { starts, axes, steps }) => {
    if (steps.some((s) => s !== 1)) throw new Error('gradient of a strided slice is not supported');
    const before = new Array(a.rank).fill(0);
    const after = new Array(a.rank).fill(0);
    axes.forEach((ax, i) => {
      before[ax] = starts[i];
      after[ax] = a.shape[ax] - starts[i] - g.shape[ax];
    });
    return [pad(g, before, after)];
  },
});

defineOp<{ axis: number }>('concat', {
  infer: (xs, { axis }) => {
    const shape = [...xs[0].shape];
    shape[axis] = 0;
    for (const x of xs) {
      if (x.rank !== shape.length || x.dtype !== xs[0].dtype) throw new Error('concat of mismatched tensors');
      x.shape.forEach((d, i) => { if (i !== axis && d !== shape[i]) throw new Error(`concat: dim ${i} differs`); });
      shape[axis] += x.shape[axis];
    }
    return { shape, dtype: xs[0].dtype };
  },
  lower: (l, ins, out, { axis }) => { l.node('Concat', ins, { axis: attr.int(axis) }, out); },
  vjp: (g, xs, _, { axis }) => {
    let at = 0;
    return xs.map((x) => {
      const piece = slice(g, [at], [at + x.shape[axis]], [axis]);
      at += x.shape[axis];
      return piece;
    });
  },
});

defineOp<{ axis: number }>('gather', {
  infer: ([a, idx], { axis }) => {
    if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw new Error('indices must be int64 or int32');
    return { shape: [...a.shape.slice(0, axis), ...idx.shape, ...a.shape.slice(axis + 1)], dtype: a.dtype };
  },
  lower: (l, ins, out, { axis }) => { l.node('Gather', ins, { axis: attr.int(axis) }, out); },
  vjp: (g, [a, idx], _, { axis }) => [scatterAdd(a.shape, idx, g, axis), null],
});

// Gradient of gather: rows of `updates` added into zeros at `indices` along `axis` (ScatterND 'add').
defineOp<{ shape: number[]; axis: number }>('scatterAdd', {
  infer: ([idx, upd], { shape }) => ({ shape, dtype: upd.dtype }),
  lower: (l, [idx, upd], out, { shape, axis }, [idxT, updT]) => {
    const rank = shape.length;
    // Move `axis` to the front so ScatterND writes whole rows.
    const perm = [axis, ...[...Array(rank).keys()].filter((i) => i !== axis)];
    const front = perm.map((p) => shape[p]);
    const zeros = l.node('Expand', [l.scalar(0, updT.dtype), l.ints(front)]);
    const flatIdx = l.node('Reshape', [idx, l.ints([idxT.size, 1])]);
    const idx64 = idxT.dtype === 'int64' ? flatIdx : l.node('Cast', [flatIdx], { to: attr.int(7) });
    // updates come shaped [..pre, ...idx, ...post]; bring the index dims to the front, then flatten them.
    const pre = axis, nIdx = idxT.rank;
    const updPerm = [...Array(nIdx).keys()].map((i) => pre + i)
      .concat([...Array(pre).keys()], [...Array(rank - 1 - pre).keys()].map((i) => pre + nIdx + i));
    const updFront = l.node('Transpose', [upd], { perm: attr.ints(updPerm) });
    const updFlat = l.node('Reshape', [updFront, l.ints([idxT.size, ...front.slice(1)])]);
    const scattered = l.node('ScatterND', [zeros, idx64, updFlat], { reduction: attr.string('add') });
    const inv: number[] = [];
    perm.forEach((p, i) => { inv[p] = i; });
    l.node('Transpose', [scattered], { perm: attr.ints(inv) }, out);
  },
  vjp: (g, [idx], _, { axis }) => [null, gather(g, idx, axis)],
});

defineOp<{ shape: number[] }>('expand', {
  infer: ([a], { shape }) => {
    if (shape.length < a.rank) throw new Error('expand cannot drop dims');
    const lead = shape.length - a.rank;
    a.shape.forEach((d, i) => { if (d !== 1 && d !== shape[lead + i]) throw new Error(`cannot expand [${a.shape}] to [${shape}]`); });
    return { shape, dtype: a.dtype };
  },
  lower: (l, [a], out, { shape }) => { l.node('Expand', [a, l.ints(shape)], {}, out); },
  vjp: (g, [a]) => [unbroadcastTo(g, a.shape)],
});

defineOp<{ before: number[]; after: number[]; value: number }>('pad', {
  infer: ([a], { before, after }) => ({ shape: a.shape.map((d, i) => d + before[i] + after[i]), dtype: a.dtype }),
  lower: (l, [a], out, { before, after, value }, [at]) => {
    l.node('Pad', [a, l.ints([...before, ...after]), l.scalar(value, at.dtype)], { mode: attr.string('constant') }, out);
  },
  vjp: (g, [a], _, { before }) => [slice(g, before, before.map((b, i) => b + a.shape[i]), [...before.keys()])],
});

defineOp<{ axes: number[]; keepdims: boolean }>('reduceSum', {
  infer: ([a], { axes, keepdims }) => ({ shape: reducedShape(a.shape, axes, keepdims), dtype: a.dtype }),
  lower: (l, [a], out, { axes, keepdims }) => {
    l.node('ReduceSum', [a, l.ints(axes)], { keepdims: attr.int(keepdims ? 1 : 0) }, out);
  },
  vjp: (g, [a], _, { axes }) => [expand(reshape(g, reducedShape(a.shape, axes, true)), a.shape)],
});

defineOp<{ axes: number[]; keepdims: boolean }>('reduceMax', {
  infer: ([a], { axes, keepdims }) => ({ shape: reducedShape(a.shape, axes, keepdims), dtype: a.dtype }),
  lower: (l, [a], out, { axes, keepdims }) => {
    l.node('ReduceMax', [a, l.ints(axes)], { keepdims: attr.int(keepdims ? 1 : 0) }, out);
  },
  // The gradient is shared equally between tied maxima.
  vjp: (g, [a], out, { axes }) => {
    const kept = reducedShape(a.shape, axes, true);
    const mask = cast(equal(a, reshape(out, kept)), a.dtype);
    const count = reduceSum(mask, axes, true);
    return [mul(div(mask, count), reshape(g, kept))];
  },
});

// The value of x, available only once `dep` has been computed. Recomputed blocks (kernels/autodiff.ts
// `recompute`) read their inputs through it with the arriving gradient as `dep`, so ORT can neither run
// them early nor merge them with the forward pass (common-subexpression elimination needs identical
// inputs, constant folding constant ones); layers read stored bf16/fp16 or packed weights through it
// with their input as `dep`, so the float32 copy is made when the layer runs, not folded at load. It
// is a Reshape to x's own shape whose shape tensor adds 0 × (int64 of dep's first element): no copy
// (ORT's Reshape aliases its input), no arithmetic on x so any dtype passes, and a NaN in `dep` still
// yields the integer 0.
defineOp('after', {
  infer: ([x]) => ({ shape: x.shape, dtype: x.dtype }),
  lower: (l, [x, dep], out, _, [xt]) => {
    const first = l.node('Slice', [l.node('Reshape', [dep, l.ints([-1])]), l.ints([0]), l.ints([1]), l.ints([0]), l.ints([1])]);
    const zero = l.node('Mul', [l.node('Cast', [first], { to: attr.int(7) }), l.scalar(0, 'int64')]);
    l.node('Reshape', [x, l.node('Add', [l.ints([...xt.shape]), zero])], {}, out);
  },
  vjp: (g) => [g, null],
  // `dep` only orders: a frozen weight read after a layer's input is still frozen.
  constantInputs: [1],
});

function reducedShape(shape: Shape, axes: number[], keepdims: boolean): number[] {
  const set = new Set(axes);
  return keepdims ? shape.map((d, i) => (set.has(i) ? 1 : d)) : shape.filter((_, i) => !set.has(i));
}

/** Same as elementwise's unbroadcast, but local to avoid an import cycle at module load. */
function unbroadcastTo(g: Tensor, shape: Shape): Tensor {
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return reshape(axes.length ? reduceSum(g, axes, true) : g, shape);
}

// --- functional API ------------------------------------------------------------------------------
const axesOf = (a: Tensor, axes?: number | number[]) =>
  (axes === undefined ? [...a.shape.keys()] : Array.isArray(axes) ? axes : [axes]).map((x) => normAxis(x, a.rank)).sort((x, y) => x - y);

/** x, usable only once `dep` has been computed (see the op's comment). */
export function after(x: Tensor, dep: Tensor): Tensor { return apply('after', [x, dep]); }
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const resolved = resolveShape(shape, a.size);
  if (resolved.length === a.rank && resolved.every((d, i) => d === a.shape[i])) return a;
  return apply('reshape', [a], { shape: resolved });
}
export function transpose(a: Tensor, perm?: number[]): Tensor {
  let p = perm ?? [...a.shape.keys()].reverse();
  // A transpose of a transpose is one transpose (or none): backward rules produce these often.
  if (a.source.kind === 'op' && a.source.op === 'transpose') {
    const inner = (a.source.attrs as { perm: number[] }).perm;
    p = p.map((i) => inner[i]);
    a = a.source.inputs[0];
  }
  if (p.every((x, i) => x === i)) return a;
  return apply('transpose', [a], { perm: p });
}
/** Swaps the last two axes (matrix transpose of a batch). */
export function transposeLast2(a: Tensor): Tensor {
  const p = [...a.shape.keys()];
  [p[a.rank - 2], p[a.rank - 1]] = [p[a.rank - 1], p[a.rank - 2]];
  return transpose(a, p);
}
export function slice(a: Tensor, starts: number[], ends: number[], axes?: number[], steps?: number[]): Tensor {
  const ax = (axes ?? starts.map((_, i) => i)).map((x) => normAxis(x, a.rank));
  const st = steps ?? ax.map(() => 1);
  const clampIdx = (v: number, d: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
  const s = starts.map((v, i) => clampIdx(v, a.shape[ax[i]]));
  const e = ends.map((v, i) => clampIdx(v, a.shape[ax[i]]));
  if (ax.every((x, i) => s[i] === 0 && e[i] === a.shape[x] && st[i] === 1)) return a;
  return apply('slice', [a], { starts: s, ends: e, axes: ax, steps: st });
}
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 1) return xs[0];
  return apply('concat', xs, { axis: normAxis(axis, xs[0].rank) });
}
/** Splits along `axis` into pieces of the given sizes (or `n` equal pieces). */
export function split(a: Tensor, sizes: number | number[], axis: number): Tensor[] {
  const ax = normAxis(axis, a.rank);
  const parts = typeof sizes === 'number' ? new Array(sizes).fill(a.shape[ax] / sizes) : sizes;
  let at = 0;
  return parts.map((n) => { const t = slice(a, [at], [at + n], [ax]); at += n; return t; });
}
export function gather(a: Tensor, indices: Tensor, axis = 0): Tensor {
  return apply('gather', [a, indices], { axis: normAxis(axis, a.rank) });
}
export function scatterAdd(shape: Shape, indices: Tensor, updates: Tensor, axis = 0): Tensor {
  return apply('scatterAdd', [indices, updates], { shape: [...shape], axis });
}
export function expand(a: Tensor, shape: readonly number[]): Tensor {
  if (shape.length === a.rank && shape.every((d, i) => d === a.shape[i])) return a;
  return apply('expand', [a], { shape: [...shape] });
}
export function pad(a: Tensor, before: number[], after: number[], value = 0): Tensor {
  if (before.every((b) => b === 0) && after.every((x) => x === 0)) return a;
  return apply('pad', [a], { before, after, value });
}
export function reduceSum(a: Tensor, axes?: number | number[], keepdims = false): Tensor {
  return apply('reduceSum', [a], { axes: axesOf(a, axes), keepdims });
}
export function reduceMax(a: Tensor, axes?: number | number[], keepdims = false): Tensor {
  return apply('reduceMax', [a], { axes: axesOf(a, axes), keepdims });
}
export function reduceMean(a: Tensor, axes?: number | number[], keepdims = false): Tensor {
  const ax = axesOf(a, axes);
  const n = ax.reduce((p, i) => p * a.shape[i], 1);
  return mul(reduceSum(a, ax, keepdims), 1 / n);
}
export const unsqueeze = (a: Tensor, axis: number) => {
  const ax = axis < 0 ? axis + a.rank + 1 : axis;
  return reshape(a, [...a.shape.slice(0, ax), 1, ...a.shape.slice(ax)]);
};
export const flatten = (a: Tensor) => reshape(a, [a.size]);
