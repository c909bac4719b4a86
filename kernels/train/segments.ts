// Layer offloading's split of a graph into segments, shared by the offloaded training step
// (kernels/train/offload.ts) and the offloaded forward pass of sampling (kernels/train/offload-forward.ts).
// The graph is built with gradient checkpointing on, so its blocks (Builder.block) are marked; each
// block becomes a segment, and the ops between blocks (embedders, head, loss) form glue segments. A
// segment's graph reads its outside values as inputs `in0`, `in1`, …: the values made by earlier
// segments, the graph's own inputs, and its frozen weights — which are fed per run, read from the
// checkpoint file (external constants) or host memory, so no session holds weights and blocks of the
// same shape compile to the same graph (one session).
import { closeSync, openSync, readSync } from 'node:fs';
import { apply, arrayFor, input, BYTES_PER_ELEMENT, type DType, type HostTensor, type Tensor } from '../tensor';
import { bfloat16ToFloat32 } from '../io/dtypes';
import { recomputedBlocks, topoOrder } from '../autodiff';
import type { CompiledGraph } from '../compile';
import type { Feed } from '../runtime';
import { estimateGraphMemory, RUNTIME_BASE_BYTES, type MemoryEstimate } from './memory';

/** Constants embedded in segment graphs rather than fed: unnamed and small (scalars, ones, tables). */
const EMBED_MAX = 4096;

type OpSource = Extract<Tensor['source'], { kind: 'op' }>;
type ConstSource = Extract<Tensor['source'], { kind: 'const' }>;

export interface Segment {
  /** Op tensors of the segment, in creation order. */
  ops: Tensor[];
  /** Outside values the segment reads, in first-read order: its graphs' inputs `in0`, `in1`, …. */
  reads: Tensor[];
  /** Values made here and read by a later segment, or asked for as `keep` (outputs). */
  exports: Tensor[];
}

export interface Segmentation {
  segments: Segment[];
  /** Index of the segment computing an op tensor (undefined for inputs and constants). */
  segmentOf: (t: Tensor) => number | undefined;
  /** Every tensor the roots reach, in creation (topological) order. */
  order: Tensor[];
}

/**
 * Splits the graph of `roots` at its recomputed blocks. `keep`: tensors exported from their segment even
 * when no later segment reads them (the outputs a caller takes). `what` names the caller in errors.
 */
export function splitAtBlocks(roots: Tensor[], what: string, keep: Tensor[] = []): Segmentation {
  const blocks = recomputedBlocks(roots);
  if (!blocks.length) throw new Error(`${what}: the model has no blocks — build it with gradient checkpointing on (Builder.gradientCheckpointing)`);
  const order = topoOrder(roots).sort((a, b) => a.id - b.id);
  const segOf = new Map<number, number>();
  const segments: Segment[] = [];
  const fresh = (): Segment => { segments.push({ ops: [], reads: [], exports: [] }); return segments[segments.length - 1]; };
  let b = 0, glue: Segment | undefined;
  const blockSeg = new Map<number, Segment>();
  for (const t of order) {
    if (t.source.kind !== 'op') continue;
    while (b < blocks.length && blocks[b].end <= t.id) b++;
    let seg: Segment;
    if (b < blocks.length && t.id >= blocks[b].start) {
      if (!blockSeg.has(b)) { blockSeg.set(b, fresh()); glue = undefined; }
      seg = blockSeg.get(b)!;
    } else seg = glue ??= fresh();
    segOf.set(t.id, segments.indexOf(seg));
    seg.ops.push(t);
  }
  const exported = new Set<number>(keep.map((t) => t.id));
  segments.forEach((seg, i) => {
    const seen = new Set<number>();
    for (const t of seg.ops) for (const x of (t.source as OpSource).inputs) {
      if (seen.has(x.id)) continue;
      const from = segOf.get(x.id);
      const outside = from === undefined ? x.source.kind === 'input' || streamed(x) : from !== i;
      if (!outside) continue;
      seen.add(x.id);
      seg.reads.push(x);
      if (from !== undefined) exported.add(x.id);
    }
  });
  for (const seg of segments) seg.exports = seg.ops.filter((t) => exported.has(t.id));
  for (const t of keep) if (!segOf.has(t.id)) throw new Error(`${what}: an output is not computed by the model's graph`);
  return { segments, segmentOf: (t) => segOf.get(t.id), order };
}

/** Frozen weights fed per run rather than embedded: named (checkpoint tensors), in a file, or big. */
function streamed(x: Tensor): boolean {
  return x.source.kind === 'const' && (!!x.source.external || !!x.source.name || x.size > EMBED_MAX);
}

/**
 * The dtype a read is fed in. onnxruntime-node takes no bfloat16 tensor from JS, so a bf16 weight (Load
 * Model's precision) is widened to float32 when fed — one segment's weights at a time — and the cast
 * after it in the graph becomes float32 → float32.
 */
const fedDtype = (x: Tensor): DType => (x.source.kind === 'const' && x.dtype === 'bfloat16' ? 'float32' : x.dtype);

/** Fresh graph inputs `in0`, `in1`, … standing for a segment's outside reads. */
export function segmentInputs(seg: Segment): Tensor[] {
  return seg.reads.map((x, k) => input(`in${k}`, x.shape, fedDtype(x)));
}

/** Rebuilds a segment's ops over `ins` (its segmentInputs); returns the mapping from the original tensors. */
export function cloneOps(seg: Segment, ins: Tensor[]): (t: Tensor) => Tensor {
  const copies = new Map<number, Tensor>(seg.reads.map((x, k) => [x.id, ins[k]]));
  for (const t of seg.ops) {
    const src = t.source as OpSource;
    copies.set(t.id, apply(src.op, src.inputs.map((x) => copies.get(x.id) ?? x), src.attrs));
  }
  return (t) => copies.get(t.id)!;
}

/** Segment sessions run without ORT's arena: one arena per session would keep every segment's peak. */
export const noArena = (g: CompiledGraph): CompiledGraph => ({ ...g, memArena: false, hash: `${g.hash}:no-arena` });

const bytesOf = (t: Tensor) => t.size * BYTES_PER_ELEMENT[t.dtype];

/** Bytes of every value crossing segments (all of them waiting on the host at once). */
export function crossingBytes(segments: Segment[]): number {
  return segments.reduce((n, sg) => n + sg.exports.reduce((m, t) => m + bytesOf(t), 0), 0);
}

/**
 * The pre-flight of segmented execution: the largest segment graph (its streamed weights are inputs,
 * so they count) plus `hostBytes` waiting on the host between segments.
 */
export function segmentedEstimate(graphs: Tensor[][], hostBytes: number): MemoryEstimate {
  const parts = graphs.map((outs) => estimateGraphMemory(outs));
  const largest = parts.reduce((a, b) => (b.total > a.total ? b : a));
  // Every segment's session stays loaded: ORT's per-node state counts for each distinct one (blocks of
  // one shape share a session, and estimate alike), the process once.
  const sessions = new Map(parts.map((e) => [`${e.runtime}:${e.weights}:${e.inputs}:${e.activations}`, e.runtime - RUNTIME_BASE_BYTES]));
  const runtime = RUNTIME_BASE_BYTES + [...sessions.values()].reduce((a, b) => a + b, 0);
  const extra = hostBytes + runtime - largest.runtime;
  return { ...largest, inputs: largest.inputs + hostBytes, runtime, total: largest.total + extra };
}

/**
 * Feeds a segment's streamed weights when it runs: from the checkpoint file (external constants, read
 * now) or from host memory. Keeps the files open between runs.
 */
export class WeightStreamer {
  private fds = new Map<string, number>();
  /** Bytes of frozen weights fed to the largest segment run (what ORT holds of the model at a time). */
  maxSegmentWeightBytes = 0;

  /**
   * A segment's feeds: streamed weights for its constant reads, `other(x)` for the rest; `transfer`
   * names the feeds made for this run alone (read from the file, or widened), which the run may move to
   * the worker (RunOptions.transfer) rather than copy.
   */
  feeds(seg: Segment, other: (x: Tensor) => Feed): { feeds: Record<string, Feed>; transfer: string[] } {
    let weightBytes = 0;
    const feeds: Record<string, Feed> = {}, transfer: string[] = [];
    seg.reads.forEach((x, k) => {
      if (x.source.kind === 'const') {
        const w = this.weight(x);
        feeds[`in${k}`] = w;
        weightBytes += w.data.byteLength;
        if (w.data !== x.source.data) transfer.push(`in${k}`);
      } else feeds[`in${k}`] = other(x);
    });
    this.maxSegmentWeightBytes = Math.max(this.maxSegmentWeightBytes, weightBytes);
    return { feeds, transfer };
  }

  /** A streamed frozen weight: its bytes from the checkpoint file, or its host array (bf16 widened, see fedDtype). */
  private weight(x: Tensor): HostTensor {
    const w = this.stored(x);
    if (fedDtype(x) === x.dtype) return w;
    return { dtype: 'float32', shape: w.shape, data: bfloat16ToFloat32(w.data as Uint16Array) };
  }

  private stored(x: Tensor): HostTensor {
    const src = x.source as ConstSource;
    if (!src.external) return { dtype: x.dtype, shape: [...x.shape], data: src.data! };
    const { path, offset, length } = src.external;
    let fd = this.fds.get(path);
    if (fd === undefined) { fd = openSync(path, 'r'); this.fds.set(path, fd); }
    const data = arrayFor(x.dtype, x.size);
    const bytes = new Uint8Array(data.buffer, 0, length);
    for (let done = 0; done < length;) {
      const got = readSync(fd, bytes, done, length - done, offset + done);
      if (got === 0) throw new Error(`${path}: tensor '${src.name ?? '?'}' ended after ${done} of ${length} bytes (truncated)`);
      done += got;
    }
    return { dtype: x.dtype, shape: [...x.shape], data };
  }

  close() {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
