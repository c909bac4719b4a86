// Lowers a symbolic graph (inputs → named outputs) to an ONNX model. Each table op emits its own
// nodes; constants become initializers (frozen weights keep their names), shared small constants
// are emitted once.
import { createHash } from 'node:crypto';
import { Tensor, type DType, type HostArray } from './tensor';
import { getOp, type Lowering } from './ops/table';
import { encodeModel, type NodeProto, type TensorProto, type AttrValue } from './onnx/proto';
import { ONNX_TYPES } from './ops/elementwise';
import { topoOrder } from './autodiff';

// Opset 20: the standard Gelu op; reductions take axes as inputs.
export const OPSET = 20;

export interface IOSpec { name: string; shape: number[]; dtype: DType }

export interface CompiledGraph {
  /** ONNX protobuf bytes. */
  bytes: Uint8Array;
  /** sha256 of the bytes: the session cache key. */
  hash: string;
  inputs: IOSpec[];
  outputs: IOSpec[];
  /** Bytes held in initializers (frozen weights and constants). */
  initializerBytes: number;
  nodeCount: number;
}

export interface CompileOptions {
  name?: string;
  metadata?: Record<string, string>;
}

const bytesOf = (a: HostArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function compileGraph(inputs: Tensor[], outputs: Record<string, Tensor>, opts: CompileOptions = {}): CompiledGraph {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const names = new Map<number, string>();
  const shared = new Map<string, string>();
  let fresh = 0;
  let initializerBytes = 0;

  const inputSpecs: IOSpec[] = inputs.map((t) => {
    if (t.source.kind !== 'input') throw new Error(`compile: ${t} is listed as an input but is not a graph input`);
    names.set(t.id, t.source.name);
    return { name: t.source.name, shape: [...t.shape], dtype: t.dtype };
  });
  if (new Set(inputSpecs.map((i) => i.name)).size !== inputSpecs.length) throw new Error('compile: duplicate input names');

  const addInit = (name: string, dtype: DType, dims: number[], data: HostArray) => {
    initializers.push({ name, dims, dataType: ONNX_TYPES[dtype], raw: bytesOf(data) });
    initializerBytes += data.byteLength;
  };
  const usedInitNames = new Set<string>();

  const l: Lowering = {
    none: '',
    node(opType, ins, attrs = {}, out, domain) {
      const o = out ?? `n${fresh++}`;
      nodes.push({ opType, inputs: ins, outputs: [o], attrs: attrs as Record<string, AttrValue>, domain });
      return o;
    },
    ints(values) {
      const key = `i64:${values.join(',')}`;
      let n = shared.get(key);
      if (!n) {
        n = `k${shared.size}`;
        shared.set(key, n);
        addInit(n, 'int64', [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
      }
      return n;
    },
    scalar(value, dtype) {
      const key = `${dtype}:${value}`;
      let n = shared.get(key);
      if (!n) {
        n = `k${shared.size}`;
        shared.set(key, n);
        if (dtype === 'float16') {
          const f = `k${shared.size}_f32`;
          addInit(f, 'float32', [], new Float32Array([value]));
          nodes.push({ opType: 'Cast', inputs: [f], outputs: [n], attrs: { to: { kind: 'int', value: ONNX_TYPES.float16 } } });
        } else {
          const arr = dtype === 'int64' ? new BigInt64Array([BigInt(value)]) : dtype === 'float32' ? new Float32Array([value])
            : dtype === 'int32' ? new Int32Array([value]) : dtype === 'int8' ? new Int8Array([value]) : new Uint8Array([value]);
          addInit(n, dtype, [], arr);
        }
      }
      return n;
    },
  };

  const roots = Object.values(outputs);
  for (const t of topoOrder(roots)) {
    if (names.has(t.id)) continue;
    const src = t.source;
    if (src.kind === 'input') throw new Error(`compile: graph input '${src.name}' is used but not listed in inputs`);
    if (src.kind === 'const') {
      let name = src.name ?? `c${t.id}`;
      if (usedInitNames.has(name)) name = `${name}#${t.id}`;
      usedInitNames.add(name);
      names.set(t.id, name);
      if (src.external) {
        initializers.push({ name, dims: [...t.shape], dataType: ONNX_TYPES[t.dtype], external: src.external && { location: src.external.path, offset: src.external.offset, length: src.external.length } });
        initializerBytes += src.external.length;
      } else {
        addInit(name, t.dtype, [...t.shape], src.data!);
      }
      continue;
    }
    const out = `t${t.id}`;
    names.set(t.id, out);
    const ins = src.inputs.map((x) => names.get(x.id)!);
    getOp(src.op).lower(l, ins, out, src.attrs, src.inputs, t);
  }

  const outputSpecs: IOSpec[] = [];
  for (const [name, t] of Object.entries(outputs)) {
    nodes.push({ opType: 'Identity', inputs: [names.get(t.id)!], outputs: [name] });
    outputSpecs.push({ name, shape: [...t.shape], dtype: t.dtype });
  }

  const bytes = encodeModel({
    graphName: opts.name ?? 'loragraph',
    nodes,
    initializers,
    inputs: inputSpecs.map((i) => ({ name: i.name, dataType: ONNX_TYPES[i.dtype], dims: i.shape })),
    outputs: outputSpecs.map((o) => ({ name: o.name, dataType: ONNX_TYPES[o.dtype], dims: o.shape })),
    opset: OPSET,
    metadata: opts.metadata,
  });
  const hash = createHash('sha256').update(bytes).digest('hex');
  return { bytes, hash, inputs: inputSpecs, outputs: outputSpecs, initializerBytes, nodeCount: nodes.length };
}
