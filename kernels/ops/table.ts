// The op table: every primitive op is defined once, with its shape rule, its ONNX lowering and its
// vector-Jacobian product side by side. Layers, losses and optimizers are compositions of these.
import type { DType, Shape, Tensor } from '../tensor';
import type { AttrValue } from '../onnx/proto';

/** What an op's lowering may do: emit ONNX nodes and ask for int64/float constants. */
export interface Lowering {
  /** Emits one ONNX node; returns its (first) output name. `out` names it, else a fresh name is made. */
  node(opType: string, inputs: string[], attrs?: Record<string, AttrValue>, out?: string, domain?: string): string;
  /** Name of an int64 constant initializer holding `values` (shared between uses). */
  ints(values: number[]): string;
  /** Name of a scalar constant of a dtype (shared between uses). */
  scalar(value: number, dtype: DType): string;
  /** Empty name: an omitted optional ONNX input. */
  readonly none: '';
}

export interface OpDef<A = any> {
  infer(inputs: Tensor[], attrs: A): { shape: Shape; dtype: DType };
  /** Emits the ONNX nodes computing `out` from `ins` (input names in order). */
  lower(l: Lowering, ins: string[], out: string, attrs: A, inputs: Tensor[], result: Tensor): void;
  /** Gradients w.r.t. each input given the output gradient `g`; null where there is none. */
  vjp?(g: Tensor, inputs: Tensor[], out: Tensor, attrs: A): (Tensor | null)[];
  /**
   * Inputs no gradient ever flows through (by position). Autodiff does not count a path through them
   * as reaching a parameter, so nothing upstream of them is differentiated.
   */
  constantInputs?: number[];
  /**
   * Bytes of temporaries the op's lowering makes and frees inside itself (beyond its output), for the
   * memory pre-flight (kernels/train/memory.ts): e.g. one chunk's scores in chunked attention.
   */
  workspace?(inputs: Tensor[], attrs: A): number;
}

const table = new Map<string, OpDef>();

export function defineOp<A>(name: string, def: OpDef<A>) {
  if (table.has(name)) throw new Error(`op '${name}' defined twice`);
  table.set(name, def);
}

export function getOp(name: string): OpDef {
  const def = table.get(name);
  if (!def) throw new Error(`unknown op '${name}'`);
  return def;
}

export function opNames() { return [...table.keys()]; }

/** ONNX attribute helpers. */
export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
};
