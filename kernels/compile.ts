// Lowers a symbolic graph (inputs → named outputs) to an ONNX model. Each table op emits its own
// nodes; constants become initializers (frozen weights keep their names), shared small constants
// are emitted once.
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, linkSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync, existsSync, writeFileSync, unlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
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
  /** Set when the model was written to a folder with external data: ORT loads it from this path. */
  path?: string;
  /**
   * false: the session runs without ORT's CPU memory arena, so its buffers go back to the system after
   * each run (layer offloading's per-block sessions; an arena per session would keep every block's peak).
   */
  memArena?: boolean;
}

export interface CompileOptions {
  name?: string;
  metadata?: Record<string, string>;
  /**
   * Write the model to this folder with its big initializers as external data (needed past protobuf's
   * 2 GB limit, and to let ORT read frozen weights straight from a checkpoint file). When a graph needs
   * external data and no folder is given, one is made under `setExternalDataRoot`'s folder.
   */
  externalDir?: string;
  /** In-memory initializers at least this big go to `weights.bin` when `externalDir` is set. */
  externalThreshold?: number;
  /** Name every node after its output, so ORT's profile (enableProfiling) says which node took the time. */
  nodeNames?: boolean;
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
  const namedConsts = new Map<string, { identity: unknown; onnxName: string }>();

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
        if (dtype === 'float16' || dtype === 'bfloat16') {
          const f = `k${shared.size}_f32`;
          addInit(f, 'float32', [], new Float32Array([value]));
          nodes.push({ opType: 'Cast', inputs: [f], outputs: [n], attrs: { to: { kind: 'int', value: ONNX_TYPES[dtype] } } });
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
  const order = topoOrder(roots);
  const extDir = opts.externalDir ?? (needsExternalData(order) ? automaticExternalDir() : undefined);
  const ext = extDir ? new ExternalData(extDir) : undefined;
  const identity: string[] = [];
  // Names come from the position in the graph, not the tensor's process-wide id, so building the same
  // graph twice gives the same bytes and hash: the runtime then reuses the session it already has.
  for (const [pos, t] of order.entries()) {
    if (names.has(t.id)) continue;
    const src = t.source;
    if (src.kind === 'input') throw new Error(`compile: graph input '${src.name}' is used but not listed in inputs`);
    if (src.kind === 'const') {
      // The same weight asked for twice (a model built twice in one graph, e.g. with and without an
      // adapter) is one initializer: same name and same bytes (or the same file range).
      const sameAs = src.data ?? (src.external && `${src.external.path}:${src.external.offset}`);
      const prev = src.name ? namedConsts.get(src.name) : undefined;
      if (prev && prev.identity === sameAs) { names.set(t.id, prev.onnxName); continue; }
      let name = src.name ?? `c${pos}`;
      if (usedInitNames.has(name)) name = `${name}#${pos}`;
      usedInitNames.add(name);
      if (src.name && !prev) namedConsts.set(src.name, { identity: sameAs, onnxName: name });
      names.set(t.id, name);
      if (src.external) {
        if (!ext) throw new Error(`compile: constant '${name}' lives in ${src.external.path} but no external-data folder was made`);
        initializers.push({ name, dims: [...t.shape], dataType: ONNX_TYPES[t.dtype], external: { location: ext.link(src.external.path), offset: src.external.offset, length: src.external.length } });
        identity.push(`${name}:${ext.identity(src.external.path)}:${src.external.offset}`);
        initializerBytes += src.external.length;
      } else if (ext && src.data!.byteLength >= (opts.externalThreshold ?? 1 << 20)) {
        const bytes = bytesOf(src.data!);
        initializers.push({ name, dims: [...t.shape], dataType: ONNX_TYPES[t.dtype], external: { location: 'weights.bin', offset: ext.append(bytes), length: bytes.byteLength } });
        identity.push(`${name}:${createHash('sha256').update(bytes).digest('hex')}`);
        initializerBytes += bytes.byteLength;
      } else {
        addInit(name, t.dtype, [...t.shape], src.data!);
      }
      continue;
    }
    const out = `t${pos}`;
    names.set(t.id, out);
    const ins = src.inputs.map((x) => names.get(x.id)!);
    getOp(src.op).lower(l, ins, out, src.attrs, src.inputs, t);
  }

  const outputSpecs: IOSpec[] = [];
  for (const [name, t] of Object.entries(outputs)) {
    nodes.push({ opType: 'Identity', inputs: [names.get(t.id)!], outputs: [name] });
    outputSpecs.push({ name, shape: [...t.shape], dtype: t.dtype });
  }

  if (opts.nodeNames) for (const n of nodes) n.name ??= n.outputs[0];
  const bytes = encodeModel({
    graphName: opts.name ?? 'loragraph',
    nodes,
    initializers,
    inputs: inputSpecs.map((i) => ({ name: i.name, dataType: ONNX_TYPES[i.dtype], dims: i.shape })),
    outputs: outputSpecs.map((o) => ({ name: o.name, dataType: ONNX_TYPES[o.dtype], dims: o.shape })),
    opset: OPSET,
    metadata: opts.metadata,
  });
  // External bytes are not in the protobuf, so they join the hash by content (or file identity).
  const hash = createHash('sha256').update(bytes).update(identity.join('\n')).digest('hex');
  const path = ext?.finish(bytes);
  return { bytes, hash, inputs: inputSpecs, outputs: outputSpecs, initializerBytes, nodeCount: nodes.length, path };
}

// Protobuf cannot hold more than 2 GB; weights past this total go to external data automatically.
const INLINE_LIMIT = 1 << 30;

function needsExternalData(order: Tensor[]): boolean {
  let bytes = 0;
  for (const t of order) {
    if (t.source.kind !== 'const') continue;
    if (t.source.external) return true;
    bytes += t.source.data!.byteLength;
  }
  return bytes > INLINE_LIMIT;
}

let externalRoot: string | undefined;
let automaticCount = 0;
const automaticDirs: string[] = [];

/**
 * Where models needing external data are written when the caller names no folder. Put it on the same
 * filesystem as the checkpoints (the server uses its data folder's cache/) so their weights are
 * hard-linked, not copied.
 */
export function setExternalDataRoot(dir: string) { externalRoot = dir; }

function automaticExternalDir(): string {
  const dir = join(externalRoot ?? join(tmpdir(), 'loragraph-onnx'), `${process.pid}-${automaticCount++}`);
  if (automaticDirs.length === 0) {
    // Sessions read their files when they are created; the folders are this process's scratch.
    process.once('exit', () => { for (const d of automaticDirs) rmSync(d, { recursive: true, force: true }); });
  }
  automaticDirs.push(dir);
  return dir;
}

/**
 * The folder of a model with external data. ORT resolves external locations relative to the model
 * file and refuses paths that leave its folder (symlinks included), so source files are hard-linked
 * in beside it — or copied, when the folder is on another filesystem.
 */
class ExternalData {
  private fd: number;
  private offset = 0;
  private links = new Map<string, string>();
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.fd = openSync(join(dir, 'weights.bin.tmp'), 'w');
  }
  append(bytes: Uint8Array): number {
    // 64-byte alignment lets ORT map tensors without copying.
    const pad = (64 - (this.offset % 64)) % 64;
    if (pad) writeSync(this.fd, new Uint8Array(pad));
    const at = this.offset + pad;
    writeSync(this.fd, bytes);
    this.offset = at + bytes.byteLength;
    return at;
  }
  link(source: string): string {
    const abs = resolve(source);
    let name = this.links.get(abs);
    if (!name) {
      name = `src${this.links.size}-${basename(abs).replace(/[^\w.-]/g, '_')}`;
      const at = join(this.dir, name);
      if (existsSync(at)) unlinkSync(at);
      try { linkSync(abs, at); } catch { copyFileSync(abs, at); }
      this.links.set(abs, name);
    }
    return name;
  }
  identity(source: string): string {
    const st = statSync(source);
    return `${resolve(source)}:${st.size}:${st.mtimeMs}`;
  }
  finish(model: Uint8Array): string {
    closeSync(this.fd);
    renameSync(join(this.dir, 'weights.bin.tmp'), join(this.dir, 'weights.bin'));
    const path = join(this.dir, 'model.onnx');
    writeFileSync(`${path}.tmp`, model);
    renameSync(`${path}.tmp`, path);
    return path;
  }
}
