// Elementwise ops with numpy broadcasting: arithmetic, comparisons, select, and unary math.
import { apply, broadcastShapes, constant, lift, scalar, type DType, type Tensor, type TensorLike } from '../tensor';
import { defineOp, attr } from './table';
import { reduceSum, reshape } from './shape-and-reduce';

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length ? reduceSum(g, axes, true) : g;
  return reshape(summed, shape);
}

function pair(a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error('at least one operand must be a tensor');
  const ta = typeof a === 'number' ? lift(a, b as Tensor) : a;
  const tb = typeof b === 'number' ? lift(b, ta) : b;
  return [ta, tb];
}

function binaryInfer(resultDtype?: DType) {
  return ([a, b]: Tensor[]) => {
    if (a.dtype !== b.dtype) throw new Error(`dtype mismatch ${a.dtype} vs ${b.dtype}`);
    return { shape: broadcastShapes(a.shape, b.shape), dtype: resultDtype ?? a.dtype };
  };
}
const unaryInfer = ([a]: Tensor[]) => ({ shape: a.shape, dtype: a.dtype });
const onnx = (opType: string) => (l: any, ins: string[], out: string) => { l.node(opType, ins, {}, out); };

// --- binary arithmetic -------------------------------------------------------------------------
defineOp('add', { infer: binaryInfer(), lower: onnx('Add'),
  vjp: (g, [a, b]) => [unbroadcast(g, a.shape), unbroadcast(g, b.shape)] });
defineOp('sub', { infer: binaryInfer(), lower: onnx('Sub'),
  vjp: (g, [a, b]) => [unbroadcast(g, a.shape), unbroadcast(neg(g), b.shape)] });
defineOp('mul', { infer: binaryInfer(), lower: onnx('Mul'),
  vjp: (g, [a, b]) => [unbroadcast(mul(g, b), a.shape), unbroadcast(mul(g, a), b.shape)] });
defineOp('div', { infer: binaryInfer(), lower: onnx('Div'),
  vjp: (g, [a, b], out) => [unbroadcast(div(g, b), a.shape), unbroadcast(neg(div(mul(g, out), b)), b.shape)] });
defineOp('pow', { infer: binaryInfer(), lower: onnx('Pow'),
  vjp: (g, [a, b], out) => [
    unbroadcast(mul(g, mul(b, pow(a, sub(b, 1)))), a.shape),
    unbroadcast(mul(g, mul(out, log(a))), b.shape),
  ] });
// Ties send the gradient to the first operand, as torch does for max/min of two tensors.
defineOp('maximum', { infer: binaryInfer(), lower: onnx('Max'),
  vjp: (g, [a, b]) => {
    const m = greaterOrEqual(a, b);
    return [unbroadcast(where(m, g, 0), a.shape), unbroadcast(where(m, 0, g), b.shape)];
  } });
defineOp('minimum', { infer: binaryInfer(), lower: onnx('Min'),
  vjp: (g, [a, b]) => {
    const m = lessOrEqual(a, b);
    return [unbroadcast(where(m, g, 0), a.shape), unbroadcast(where(m, 0, g), b.shape)];
  } });

// --- comparisons and select (no gradient through the condition) --------------------------------
defineOp('less', { infer: binaryInfer('bool'), lower: onnx('Less') });
defineOp('greater', { infer: binaryInfer('bool'), lower: onnx('Greater') });
defineOp('lessOrEqual', { infer: binaryInfer('bool'), lower: onnx('LessOrEqual') });
defineOp('greaterOrEqual', { infer: binaryInfer('bool'), lower: onnx('GreaterOrEqual') });
defineOp('equal', { infer: binaryInfer('bool'), lower: onnx('Equal') });
defineOp('and', { infer: binaryInfer('bool'), lower: onnx('And') });
defineOp('not', { infer: unaryInfer, lower: onnx('Not') });
defineOp('where', {
  infer: ([c, a, b]) => {
    if (c.dtype !== 'bool') throw new Error('condition must be bool');
    if (a.dtype !== b.dtype) throw new Error(`dtype mismatch ${a.dtype} vs ${b.dtype}`);
    return { shape: broadcastShapes(c.shape, broadcastShapes(a.shape, b.shape)), dtype: a.dtype };
  },
  lower: onnx('Where'),
  vjp: (g, [c, a, b]) => [null, unbroadcast(where(c, g, 0), a.shape), unbroadcast(where(c, 0, g), b.shape)],
});

// --- unary math ----------------------------------------------------------------------------------
defineOp('neg', { infer: unaryInfer, lower: onnx('Neg'), vjp: (g) => [neg(g)] });
defineOp('exp', { infer: unaryInfer, lower: onnx('Exp'), vjp: (g, _, out) => [mul(g, out)] });
defineOp('log', { infer: unaryInfer, lower: onnx('Log'), vjp: (g, [a]) => [div(g, a)] });
defineOp('sqrt', { infer: unaryInfer, lower: onnx('Sqrt'), vjp: (g, _, out) => [div(mul(g, 0.5), out)] });
defineOp('reciprocal', { infer: unaryInfer, lower: onnx('Reciprocal'), vjp: (g, _, out) => [neg(mul(g, mul(out, out)))] });
defineOp('abs', { infer: unaryInfer, lower: onnx('Abs'), vjp: (g, [a]) => [mul(g, sign(a))] });
defineOp('sign', { infer: unaryInfer, lower: onnx('Sign') });
defineOp('tanh', { infer: unaryInfer, lower: onnx('Tanh'), vjp: (g, _, out) => [mul(g, sub(1, mul(out, out)))] });
defineOp('sigmoid', { infer: unaryInfer, lower: onnx('Sigmoid'), vjp: (g, _, out) => [mul(g, mul(out, sub(1, out)))] });
defineOp('erf', { infer: unaryInfer, lower: onnx('Erf'),
  vjp: (g, [a]) => [mul(g, mul(exp(neg(mul(a, a))), 2 / Math.sqrt(Math.PI)))] });
defineOp('sin', { infer: unaryInfer, lower: onnx('Sin'), vjp: (g, [a]) => [mul(g, cos(a))] });
defineOp('cos', { infer: unaryInfer, lower: onnx('Cos'), vjp: (g, [a]) => [neg(mul(g, sin(a)))] });
defineOp('relu', { infer: unaryInfer, lower: onnx('Relu'), vjp: (g, [a]) => [where(greater(a, 0), g, 0)] });
// GELU is a primitive so the forward pass is one fused node (ONNX Gelu, opset 20) and the backward
// pass a handful of elementwise ops rather than the autodiff of the whole formula.
defineOp<{ approximate: 'none' | 'tanh' }>('gelu', {
  infer: unaryInfer,
  lower: (l, ins, out, { approximate }) => { l.node('Gelu', ins, { approximate: attr.string(approximate) }, out); },
  vjp: (g, [x], _, { approximate }) => {
    if (approximate === 'tanh') {
      // d/dx ½x(1+tanh u), u = c(x + k x³): ½(1+t) + ½x(1−t²)·c(1+3k x²)
      const c = Math.sqrt(2 / Math.PI), k = 0.044715;
      const x2 = mul(x, x);
      const t = tanh(mul(x, add(mul(x2, c * k), c)));
      const left = add(mul(t, 0.5), 0.5);
      const right = mul(mul(x, sub(1, mul(t, t))), add(mul(x2, 1.5 * c * k), 0.5 * c));
      return [mul(g, add(left, right))];
    }
    // Φ(x) + x·φ(x)
    const cdf = add(mul(erf(mul(x, Math.SQRT1_2)), 0.5), 0.5);
    const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return [mul(g, add(cdf, mul(x, pdf)))];
  },
});
// The value passes through; no gradient flows back (targets built from the model's own prediction).
defineOp('stopGradient', { infer: unaryInfer, lower: onnx('Identity'), vjp: () => [null] });
defineOp('floor', { infer: unaryInfer, lower: onnx('Floor') });
defineOp('round', { infer: unaryInfer, lower: onnx('Round') });
defineOp('cast', {
  infer: ([a], { to }: { to: DType }) => ({ shape: a.shape, dtype: to }),
  lower: (l, ins, out, { to }) => { l.node('Cast', ins, { to: attr.int(ONNX_TYPES[to]) }, out); },
  vjp: (g, [a]) => [a.isFloat ? cast(g, a.dtype) : null],
});

// (q − 0)·scale from int8/uint8 codes, per row (axis 0, scale [rows]) or with one scale. ORT's constant
// folding skips DequantizeLinear, so quantised frozen weights stay packed in the session (a Cast/Mul
// chain on constants would be folded into a float32 copy at load, undoing the memory saving).
defineOp<{ axis: number }>('dequantizeLinear', {
  infer: ([q, scale, zero]) => {
    if (q.dtype !== 'int8' && q.dtype !== 'uint8') throw new Error(`codes must be int8 or uint8, got ${q.dtype}`);
    if (zero.dtype !== q.dtype || zero.shape.join() !== scale.shape.join()) throw new Error('the zero point must have the codes\' dtype and the scale\'s shape');
    if (scale.dtype !== 'float32') throw new Error(`scale must be float32, got ${scale.dtype}`);
    if (scale.rank > 1 || (scale.rank === 1 && scale.shape[0] !== q.shape[0])) throw new Error(`scale must be a scalar or one value per row (${q.shape[0]}), got [${scale.shape.join(',')}]`);
    return { shape: q.shape, dtype: 'float32' };
  },
  lower: (l, ins, out, { axis }) => { l.node('DequantizeLinear', ins, { axis: attr.int(axis) }, out); },
});

export const ONNX_TYPES: Record<DType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, bfloat16: 16 };

// --- functional API ------------------------------------------------------------------------------
const bin = (op: string) => (a: TensorLike, b: TensorLike) => apply(op, pair(a, b));
export const add = bin('add');
export const sub = bin('sub');
export const mul = bin('mul');
export const div = bin('div');
export const pow = bin('pow');
export const maximum = bin('maximum');
export const minimum = bin('minimum');
export const less = bin('less');
export const greater = bin('greater');
export const lessOrEqual = bin('lessOrEqual');
export const greaterOrEqual = bin('greaterOrEqual');
export const equal = bin('equal');
export const logicalAnd = bin('and');
export const logicalNot = (a: Tensor) => apply('not', [a]);
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [ta, tb] = pair(a, b);
  return apply('where', [cond, ta, tb]);
}
const un = (op: string) => (a: Tensor) => apply(op, [a]);
export const neg = un('neg');
export const exp = un('exp');
export const log = un('log');
export const sqrt = un('sqrt');
export const reciprocal = un('reciprocal');
export const abs = un('abs');
export const sign = un('sign');
export const tanh = un('tanh');
export const sigmoid = un('sigmoid');
export const erf = un('erf');
export const sin = un('sin');
export const cos = un('cos');
export const relu = un('relu');
export const floor = un('floor');
export const stopGradient = un('stopGradient');
export const round = un('round');
export function cast(a: Tensor, to: DType): Tensor {
  return a.dtype === to ? a : apply('cast', [a], { to });
}

/** float32 codes·scale of int8/uint8 codes; `scale` is a number, a scalar or one value per row (axis 0). */
export function dequantizeLinear(codes: Tensor, scale: Tensor | number): Tensor {
  const s = typeof scale === 'number' ? scalar(scale) : scale;
  // An explicit zero point of the codes' type: ORT's QDQ rewrites assume uint8 when it is omitted.
  const zero = constant(codes.dtype === 'int8' ? new Int8Array(s.size) : new Uint8Array(s.size), s.shape, codes.dtype);
  return apply('dequantizeLinear', [codes, s, zero], { axis: 0 });
}

// --- compositions ----------------------------------------------------------------------------------
export const rsqrt = (a: Tensor) => reciprocal(sqrt(a));
export const square = (a: Tensor) => mul(a, a);
export const clip = (a: Tensor, lo: number, hi: number) => minimum(maximum(a, lo), hi);
export const silu = (a: Tensor) => mul(a, sigmoid(a));
/** GELU, exact (erf) or the tanh approximation: one ONNX Gelu node forward, a short composite backward. */
export function gelu(a: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return apply('gelu', [a], { approximate });
}
