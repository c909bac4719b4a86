// Memory pre-flight: an estimate of a graph's peak memory made from the symbolic graph before ORT
// sees it, and a check against the device's memory that fails at once, naming the settings to change,
// instead of the run dying mid-way. The estimate replays the graph in the order it is compiled (the
// order ORT's sequential executor follows closely) as ORT's allocation plan lays it out — an output
// takes a dead buffer of its exact shape when there is one, which then stays held until that value's
// last read — through a model of ORT's arena (kernels/train/arena.ts), with the scratch memory kernels
// take while they run (an op's `workspace`). Reshapes and gates alias their input; ops on constants
// alone are folded by ORT into initializers at load (DequantizeLinear excepted), and the weights are
// what the computed ops then read (folded values included, constants read only while folding not).
// Measured against bench:sd15's peaks at 512² (every base, with and without recomputation): 0.89–0.97
// of the peak; without the plan and the scratch the estimate for bases dequantised per layer was
// 0.49–0.73, and with the plan but every shape taken as known 1.12–1.19.
import { readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { BYTES_PER_ELEMENT, type Tensor } from '../tensor';
import { topoOrder } from '../autodiff';
import { getOp } from '../ops/table';
import { foldedAtLoad } from '../ops/folding';
import { ArenaModel } from './arena';

export interface MemoryEstimate {
  /** Frozen weights and constants as ORT holds them (initializers, folded constants included). */
  weights: number;
  /** Graph inputs: the batch, trainable parameters, optimizer state (resident slots), scalars. */
  inputs: number;
  /**
   * Memory ORT's arena holds for the intermediate values (activations, gradients, updates): their
   * peak alive at once, plus the gaps its best-fit layout leaves (kernels/train/arena.ts).
   */
  activations: number;
  /** Peak of the intermediate values alive at once, without the arena's gaps. */
  live: number;
  /**
   * Peak of the buffers ORT's allocation plan holds at once: the live values plus dead ones it keeps
   * for a later value of the same shape (and less where an op writes over its input).
   */
  planned?: number;
  /** The process and ONNX Runtime themselves (libraries, arenas' slack, JS heap). */
  runtime: number;
  total: number;
}

// Reads that share their input's buffer in ORT (Reshape aliases; Identity is removed).
const ALIASES = new Set(['reshape', 'after', 'stopGradient']);
// Kernels ORT lets write over their input when this is the input's last read (MayInplace in its CPU
// kernel registrations: softmax and the unary activations; not the binary arithmetic).
const IN_PLACE = new Set(['softmax', 'sigmoid', 'relu', 'tanh']);
// Ops whose output shape is the broadcast of their operands' (ONNX's multidirectional broadcasting).
const BROADCAST = new Set(['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'where', 'equal', 'less', 'greater', 'lessOrEqual', 'greaterOrEqual', 'and']);
// Resident memory of the process beyond weights, inputs and activations: Node with onnxruntime-node
// loaded, plus what ORT keeps per node of a session (kernels, node args, the plan). Fitted (Node 20,
// onnxruntime-node 1.24) to the resident memory before the first step in bench:sd15, less the JS
// buffers — about 280 MiB for an SD 1.5 step of 14 k ops, 370 MiB for one of 28 k ops (recomputed
// blocks) — and to bench:memory's tiny UNet steps of 6–7 k ops, about 235 MiB.
export const RUNTIME_BASE_BYTES = 200 * 2 ** 20;
const RUNTIME_BYTES_PER_OP = 6 * 2 ** 10;

type OpSource = Extract<Tensor['source'], { kind: 'op' }>;
const bytesOf = (t: Tensor) => t.size * BYTES_PER_ELEMENT[t.dtype];
/** One initializer per constant: the same array, or the same bytes of the same file, is one tensor to ORT. */
const constantId = (x: Tensor): unknown =>
  (x.source.kind === 'const' ? x.source.data ?? `${x.source.external?.path}:${x.source.external?.offset}` : undefined);
/** Bytes a tensor takes as ORT holds it (a file's stored form for external data). */
const storedBytes = (x: Tensor) => (x.source.kind === 'const' && x.source.external ? x.source.external.length : bytesOf(x));

/** Estimates the peak memory of running a graph with these outputs. */
export function estimateGraphMemory(outputs: Tensor[]): MemoryEstimate {
  const order = topoOrder(outputs);
  const outputIds = new Set(outputs.map((t) => t.id));
  let weights = 0, inputs = 0;
  // Constants, and ops on constants alone (ORT folds those at load; DequantizeLinear it leaves alone).
  const folded = new Set(order.filter((t) => foldedAtLoad(t)).map((t) => t.id));
  // What ORT keeps of them: the folded values and constants that a computed op (or an output) reads.
  // Intermediate folding results and constants read only while folding are dropped after load.
  const kept = new Map<unknown, number>();
  const keep = (x: Tensor) => kept.set(constantId(x) ?? x.id, storedBytes(x));
  for (const t of order) {
    if (t.source.kind === 'op' && !folded.has(t.id)) for (const x of t.source.inputs) if (folded.has(x.id)) keep(x);
    if (outputIds.has(t.id) && folded.has(t.id)) keep(t);
  }
  for (const b of kept.values()) weights += b;
  // The CPU EP prepacks a Gemm's constant B (our linear) into MLAS's layout. When every computed reader
  // is such a Gemm, ORT drops the original (sampling: one copy); when another op reads it too — the
  // backward pass's products — both stay (SD 1.5 fp32 training: +1.0 GiB, measured by bench:sd15).
  const packedBy = new Map<unknown, number>(), readOtherwise = new Set<unknown>();
  for (const t of order) {
    const src = t.source;
    if (src.kind !== 'op' || folded.has(t.id)) continue;
    src.inputs.forEach((x, i) => {
      const id = constantId(x);
      if (id === undefined) return;
      if (src.op === 'linear' && i === 1) packedBy.set(id, storedBytes(x));
      else readOtherwise.add(id);
    });
  }
  for (const [id, bytes] of packedBy) if (readOtherwise.has(id)) weights += bytes;
  // ORT's allocation plan (allocation_planner.cc), made once per session in the order it will run: an
  // output takes the buffer of a dead value of exactly the same shape and element size when there is
  // one (the most recently freed first), else a new buffer; a buffer returns to the arena only after the
  // last value sharing it is read. Reshapes and gates share their input's buffer; one of a constant
  // shares the initializer. Graph inputs are the caller's; the step's outputs live to the end.
  const ops = order.filter((t) => t.source.kind === 'op' && !folded.has(t.id));
  const idTensor = new Map(ops.map((t) => [t.id, t]));
  // Temporaries inside each op (chunked attention's one chunk of scores) live only while it runs.
  const workspace = ops.map((t) => { const src = t.source as OpSource; return getOp(src.op).workspace?.(src.inputs, src.attrs) ?? 0; });
  for (const t of order) if (!folded.has(t.id) && t.source.kind === 'input') inputs += bytesOf(t);
  const bufferOf = new Map<number, number>();
  const size = new Map<number, number>();
  const readers = new Map<number, number>();
  for (const t of ops) {
    for (const x of (t.source as OpSource).inputs) readers.set(x.id, (readers.get(x.id) ?? 0) + 1);
    if (outputIds.has(t.id)) readers.set(t.id, (readers.get(t.id) ?? 0) + 1);
  }
  const left = new Map<number, number>(); // reads left per buffer (all the values sharing it)
  const freelist = new Map<string, number[]>(); // dead buffers by shape, most recently freed last
  const onFreelist = new Set<number>();
  const keyOf = new Map<number, string>();
  const allocAt = new Map<number, number[]>(); // op index → buffers first allocated there
  const releaseAt = new Map<number, number[]>(); // op index → buffers handed back to the arena after it
  const lastFree = new Map<number, number>(); // buffer → op index after which it went on the freelist
  // The plain live peak beside the plan: each value's bytes from its op to its last read (aliases
  // share their input's), the figure gradient checkpointing shrinks; the plan holds dead buffers on top.
  const valueOf = new Map<number, number>(), valueLeft = new Map<number, number>();
  let valueLive = 0, livePeak = 0;
  // Which dims of each value ORT's shape inference knows (it plans reuse only for fully known shapes:
  // SameShape compares dims). A gate (`after`: a Reshape to a computed shape) hides its output's dims;
  // ops reading it pass on what they take from it, until a Reshape to a constant shape, or a broadcast
  // against an operand that has the dim known and above 1 (a bias, a LoRA branch), fixes them. So a
  // weight dequantised or widened behind a gate never has its buffer handed to another value.
  const dims = new Map<number, boolean[]>();
  const dimsOf = (x: Tensor) => (x.source.kind !== 'op' || folded.has(x.id) ? x.shape.map(() => true) : dims.get(x.id)!);
  const knownDims = (t: Tensor): boolean[] => {
    const src = t.source as OpSource;
    const ins = src.inputs.map(dimsOf);
    const all = (v: boolean) => t.shape.map(() => v);
    if (src.op === 'after') return all(false);
    if (src.op === 'reshape' || ins.every((k) => k.every(Boolean))) return all(true);
    // ONNX's broadcast inference: a dim is known when an operand has it known and above 1, or all do.
    const broadcast = (ops: { shape: readonly number[]; k: boolean[] }[], rank: number, i: number) => {
      const at = ops.map(({ shape, k }) => ({ d: shape[shape.length - rank + i], k: k[shape.length - rank + i] })).filter((v) => v.d !== undefined);
      return at.some((v) => v.k && v.d > 1) || at.every((v) => v.k);
    };
    const [a, b] = src.inputs;
    switch (src.op) {
      case 'linear': return [...ins[0].slice(0, -1), ins[1][0]];
      case 'matmul': return t.shape.map((_, i) => (i === t.rank - 2 ? ins[0][a.rank - 2] : i === t.rank - 1 ? ins[1][b.rank - 1]
        : broadcast([a, b].map((x, n) => ({ shape: x.shape.slice(0, -2), k: ins[n].slice(0, -2) })), t.rank - 2, i)));
      case 'conv2d': case 'conv2dInputGrad': {
        const spatial = ins[0][2] && ins[0][3] && ins[1][2] && ins[1][3];
        return [ins[0][0], src.op === 'conv2d' ? ins[1][0] : ins[1][1], spatial, spatial];
      }
      case 'transpose': return (src.attrs as { perm: number[] }).perm.map((p) => ins[0][p]);
    }
    if (BROADCAST.has(src.op)) return t.shape.map((_, i) => broadcast(src.inputs.map((x, n) => ({ shape: x.shape, k: ins[n] })), t.rank, i));
    if (src.inputs.length === 1 && t.rank === a.rank && t.shape.every((d, i) => d === a.shape[i])) return [...ins[0]]; // elementwise
    return all(false);
  };
  ops.forEach((t, i) => {
    const src = t.source as OpSource;
    const x0 = src.inputs[0];
    let buf: number | undefined;
    const b0 = bufferOf.get(x0.id);
    dims.set(t.id, knownDims(t));
    if (ALIASES.has(src.op)) buf = x0.source.kind === 'op' && !folded.has(x0.id) ? b0 : -1;
    else if (IN_PLACE.has(src.op) && b0 !== undefined && b0 >= 0 && left.get(b0) === 1 && size.get(b0) === bytesOf(t)) buf = b0;
    else {
      // Only a value whose shape ORT's shape inference knows takes part in reuse (SameShape compares dims).
      const key = dims.get(t.id)!.every(Boolean) ? `${BYTES_PER_ELEMENT[t.dtype]}:${t.shape.join(',')}` : `unknown:${t.id}`;
      const dead = t.shape.length ? freelist.get(key) : undefined;
      if (dead?.length) { buf = dead.pop()!; onFreelist.delete(buf); lastFree.delete(buf); }
      else { buf = t.id; size.set(buf, bytesOf(t)); keyOf.set(buf, key); (allocAt.get(i) ?? allocAt.set(i, []).get(i)!).push(buf); }
    }
    bufferOf.set(t.id, buf!);
    if (buf! >= 0) left.set(buf!, (left.get(buf!) ?? 0) + (readers.get(t.id) ?? 0));
    const v = ALIASES.has(src.op) ? (x0.source.kind === 'op' && !folded.has(x0.id) ? valueOf.get(x0.id)! : -1) : t.id;
    valueOf.set(t.id, v);
    if (v === t.id) { valueLive += bytesOf(t); livePeak = Math.max(livePeak, valueLive + workspace[i]); }
    if (v >= 0) valueLeft.set(v, (valueLeft.get(v) ?? 0) + (readers.get(t.id) ?? 0));
    for (const x of src.inputs) {
      const xv = valueOf.get(x.id);
      if (xv === undefined || xv < 0) continue;
      valueLeft.set(xv, valueLeft.get(xv)! - 1);
      if (valueLeft.get(xv) === 0) valueLive -= bytesOf(idTensor.get(xv)!);
    }
    if (v === t.id && valueLeft.get(v) === 0) valueLive -= bytesOf(t);
    const done = (b: number) => {
      const k = keyOf.get(b)!;
      (freelist.get(k) ?? freelist.set(k, []).get(k)!).push(b);
      onFreelist.add(b);
      lastFree.set(b, i);
    };
    for (const x of src.inputs) {
      const b = bufferOf.get(x.id);
      if (b === undefined || b < 0) continue;
      const n = left.get(b)! - 1;
      left.set(b, n);
      if (n === 0) done(b);
    }
    if (buf! >= 0 && left.get(buf!) === 0 && !onFreelist.has(buf!)) done(buf!); // never read
  });
  for (const [b, i] of lastFree) (releaseAt.get(i) ?? releaseAt.set(i, []).get(i)!).push(b);
  // Replayed twice through a model of ORT's arena: the second step reuses the first one's regions and
  // grows them only where the layout left no room; the estimate is what the arena then holds.
  const arena = new ArenaModel();
  let peak = 0;
  for (let pass = 0; pass < 2; pass++) {
    const chunks = new Map<number, ReturnType<ArenaModel['alloc']>>();
    let live = 0;
    ops.forEach((_, i) => {
      for (const b of allocAt.get(i) ?? []) { live += size.get(b)!; peak = Math.max(peak, live); chunks.set(b, arena.alloc(size.get(b)!)); }
      const ws = workspace[i];
      if (ws) { peak = Math.max(peak, live + ws); arena.free(arena.alloc(ws)); }
      for (const b of releaseAt.get(i) ?? []) { live -= size.get(b)!; arena.free(chunks.get(b)); chunks.delete(b); }
    });
    for (const c of chunks.values()) arena.free(c); // the step's outputs, handed back after the run
  }
  const activations = Math.max(peak, arena.resident);
  const runtime = RUNTIME_BASE_BYTES + RUNTIME_BYTES_PER_OP * ops.length;
  return { weights, inputs, activations, live: livePeak, planned: peak, runtime, total: weights + inputs + activations + runtime };
}

/**
 * Memory a run may use: LORAGRAPH_MEMORY_LIMIT_MB, else what the machine has available (MemAvailable:
 * free memory plus reclaimable cache) plus what this process already holds.
 */
export function deviceMemoryLimit(): number {
  const env = Number(process.env.LORAGRAPH_MEMORY_LIMIT_MB);
  if (env > 0) return env * 2 ** 20;
  let available = freemem();
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) available = Number(m[1]) * 1024;
  } catch { /* not Linux: free memory it is */ }
  return Math.min(totalmem(), available + process.memoryUsage().rss);
}

export class MemoryPreflightError extends Error {
  constructor(message: string, readonly estimate: MemoryEstimate, readonly limit: number) { super(message); this.name = 'MemoryPreflightError'; }
}

const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${Math.round(b / 2 ** 20)} MiB`);

/** What the caller knows about the settings that drive memory, to name them in the refusal. */
export interface MemorySettings {
  resolution?: string;
  frames?: number;
  batch?: number;
  precision?: string;
  quantisation?: string;
  gradientCheckpointing?: boolean;
}

/** Throws MemoryPreflightError when `estimate` does not fit in `limit` bytes, naming what to change. */
export function checkMemory(what: string, estimate: MemoryEstimate, limit: number, settings: MemorySettings = {}) {
  if (estimate.total <= limit) return;
  const s = settings;
  const now = (v: unknown) => (v === undefined ? '' : ` (now ${v})`);
  const advice = [
    `lower the resolution${now(s.resolution)}`,
    ...(s.frames !== undefined ? [`use fewer frames${now(s.frames)}`] : []),
    `lower the batch size${now(s.batch)}`,
    ...(s.precision === undefined || s.precision === 'fp32' ? [`set precision to bf16 or fp16${now(s.precision)}`] : []),
    ...(s.quantisation === undefined || s.quantisation === 'none' ? [`set quantisation to int8 or nf4${now(s.quantisation ?? 'none')}`] : []),
    ...(!s.gradientCheckpointing ? [`turn on gradientCheckpointing${now(s.gradientCheckpointing === false ? 'off' : undefined)}`] : []),
  ];
  throw new MemoryPreflightError(
    `${what} needs an estimated ${gib(estimate.total)} (weights ${gib(estimate.weights)}, inputs and optimizer state ${gib(estimate.inputs)}, `
    + `activations ${gib(estimate.activations)}, runtime ${gib(estimate.runtime)}) but ${gib(limit)} is available. To fit: ${advice.join('; ')}.`,
    estimate, limit);
}
