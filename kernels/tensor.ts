// Symbolic tensors: a shape, a dtype and where the value comes from (a graph input, a constant, or an
// op applied to other tensors). Nothing is computed here; graphs are lowered to ONNX and run by ORT.
import { getOp } from './ops/table';

// bfloat16 lives only inside graphs (stored frozen weights, cast to float32 where ORT's CPU EP lacks
// kernels); its host form is raw bits in a Uint16Array, like float16.
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'bool' | 'uint8';
export type Shape = readonly number[];

/** Host-side data for a dtype. float16 and bfloat16 are carried as raw bits. */
export type HostArray = Float32Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

/** A concrete tensor on the host: what crosses the boundary to ORT and back. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: HostArray;
}

/** Where a constant's bytes live when they are not in memory: a byte range of a file on disk. */
export interface ExternalBytes { path: string; offset: number; length: number }

export type Source =
  | { kind: 'input'; name: string }
  | { kind: 'const'; data?: HostArray; external?: ExternalBytes; name?: string }
  | { kind: 'op'; op: string; inputs: Tensor[]; attrs: Record<string, unknown> };

let nextId = 0;
/** The id the next tensor will get: ids grow with creation, so they order any graph topologically. */
export function nextTensorId() { return nextId; }

export class Tensor {
  readonly id = nextId++;
  constructor(readonly shape: Shape, readonly dtype: DType, readonly source: Source) {}

  get rank() { return this.shape.length; }
  get size() { return this.shape.reduce((a, b) => a * b, 1); }
  get isFloat() { return this.dtype === 'float32' || this.dtype === 'float16' || this.dtype === 'bfloat16'; }
  toString() { return `Tensor#${this.id}(${this.source.kind === 'op' ? this.source.op : this.source.kind} ${this.dtype}[${this.shape.join(',')}])`; }
}

export type TensorLike = Tensor | number;

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int8: 1, bool: 1, uint8: 1,
};

export function arrayFor(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float16': case 'bfloat16': return new Uint16Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int8': return new Int8Array(n);
    case 'bool': case 'uint8': return new Uint8Array(n);
  }
}

/** A graph input that is fed at run time (a batch, a trainable parameter, optimizer state). */
export function input(name: string, shape: Shape, dtype: DType = 'float32'): Tensor {
  return new Tensor([...shape], dtype, { kind: 'input', name });
}

/** A constant baked into the graph (frozen weights become named initializers). */
export function constant(data: HostArray | number[], shape: Shape, dtype: DType = 'float32', name?: string): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const arr = Array.isArray(data) ? fromNumbers(data, dtype) : data;
  if (arr.length !== n) throw new Error(`constant${name ? ` '${name}'` : ''}: ${arr.length} values for shape [${shape.join(',')}]`);
  return new Tensor([...shape], dtype, { kind: 'const', data: arr, name });
}

/** A constant whose bytes stay in a file and are read by ORT directly (external data). */
export function externalConstant(ext: ExternalBytes, shape: Shape, dtype: DType, name: string): Tensor {
  const expected = shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype];
  if (ext.length !== expected) throw new Error(`external constant '${name}': ${ext.length} bytes for ${dtype}[${shape.join(',')}] (expected ${expected})`);
  return new Tensor([...shape], dtype, { kind: 'const', external: ext, name });
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return constant(fromNumbers([value], dtype), [], dtype);
}

function fromNumbers(values: number[], dtype: DType): HostArray {
  if (dtype === 'int64') return BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v))));
  if (dtype === 'float16' || dtype === 'bfloat16') throw new Error(`${dtype} constants must be given as raw bits (Uint16Array)`);
  const arr = arrayFor(dtype, values.length);
  (arr as Float32Array).set(values);
  return arr;
}

/** Turns a number into a scalar of the other operand's dtype. */
export function lift(x: TensorLike, like: Tensor): Tensor {
  if (typeof x !== 'number') return x;
  // Half-precision scalars are made as float32 and cast inside the graph (ORT folds the cast away).
  if (like.dtype === 'float16' || like.dtype === 'bfloat16') return apply('cast', [scalar(x, 'float32')], { to: like.dtype });
  return scalar(x, like.dtype);
}

/** Applies a table op: infers the result's shape and dtype, records the producer. */
export function apply(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}): Tensor {
  const def = getOp(op);
  let out;
  try {
    out = def.infer(inputs, attrs);
  } catch (e) {
    throw new Error(`${op}(${inputs.map((t) => `${t.dtype}[${t.shape.join(',')}]`).join(', ')}): ${(e as Error).message}`);
  }
  return new Tensor(out.shape, out.dtype, { kind: 'op', op, inputs, attrs });
}

/** Numpy broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function sameShape(a: Shape, b: Shape) {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
