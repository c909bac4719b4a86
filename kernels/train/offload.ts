// Layer offloading (ai-toolkit's "low VRAM" mode, for bases that do not fit at all): the training step
// runs block by block instead of as one graph. The model is built as usual with gradient checkpointing
// on; its recomputed blocks (Builder.block) and the glue between them (embedders, head, loss) become
// segments, each lowered to a forward session and a backward session (which recomputes the segment's
// forward from its saved inputs, as checkpointing does). Frozen weights are not initializers: they are
// inputs fed per run — read from the checkpoint file (external constants: `CheckpointWeights` with
// `external`) or from host memory — so no session holds weights, blocks of the same shape share one
// session, and at most one segment's weights sit in ORT at a time. Between segments only the values
// that cross them (block outputs, conditioning) are kept, on the host. The adapter parameters,
// optimizer state, clipping and EMA live in an ordinary TrainStep whose "loss" Σ p·g has gradient g:
// the gradients this module computes are its inputs, so the update is the same as a resident step's.
import { closeSync, openSync, readSync } from 'node:fs';
import { arrayFor, input, BYTES_PER_ELEMENT, type HostTensor, type Tensor } from '../tensor';
import { add, mul } from '../ops/elementwise';
import { reduceSum } from '../ops/shape-and-reduce';
import { apply } from '../tensor';
import { getOp } from '../ops/table';
import { grad, recomputedBlocks, topoOrder } from '../autodiff';
import { compileGraph, type CompiledGraph } from '../compile';
import type { Feed, Runtime, Session } from '../runtime';
import { TrainStep, type TrainStepSpec } from './step';
import { checkMemory, deviceMemoryLimit, estimateGraphMemory, type MemoryEstimate } from './memory';

export type OffloadMode = 'none' | 'blocks';
export const OFFLOAD_MODES = ['none', 'blocks'] as const satisfies readonly OffloadMode[];

/**
 * What a TrainStep takes; `externalDir` does not apply (no graph holds the weights), the memory pre-flight
 * checks the largest segment plus what waits on the host, `shareStateWith` must be another OffloadedStep.
 */
export type OffloadedStepSpec = TrainStepSpec;

/** Constants embedded in segment graphs rather than fed: unnamed and small (scalars, ones, tables). */
const EMBED_MAX = 4096;

type OpSource = Extract<Tensor['source'], { kind: 'op' }>;

interface Segment {
  /** Op tensors of the segment, in creation order. */
  ops: Tensor[];
  /** Outside values the segment reads, in first-read order: its graphs' inputs `in0`, `in1`, …. */
  reads: Tensor[];
  /** Values made here and read by a later segment (or the loss). */
  exports: Tensor[];
  hasLoss: boolean;
  /** Extra outputs (per-term losses) computed here: name → tensor. */
  extras: [string, Tensor][];
  fwd?: Session;
  bwd?: Session;
  /** Positions in `reads` that get a gradient, and in `exports` that receive one. */
  gradReads: number[];
  seeded: number[];
}

/**
 * A training step whose segments run one after another, their frozen weights streamed per run. It is a
 * TrainStep (same step/read/load/init/dispose), so the trainer uses either.
 */
export class OffloadedStep extends TrainStep {
  private fds = new Map<string, number>();
  /** Bytes of frozen weights fed to the largest segment run (what ORT holds of the model at a time). */
  maxSegmentWeightBytes = 0;

  private constructor(
    spec: OffloadedStepSpec,
    private readonly segments: Segment[],
    private readonly paramName: Map<number, string>,
    private readonly inputName: Map<number, string>,
    /** Holds parameters and optimizer state; its step applies the gradients computed here. */
    readonly apply: TrainStep,
    private readonly runtime: Runtime,
    memoryEstimate: MemoryEstimate,
  ) {
    super({ ...spec, shareStateWith: undefined }, {}, {}, [], runtime, memoryEstimate);
  }

  static override async create(rt: Runtime, spec: OffloadedStepSpec): Promise<OffloadedStep> {
    const { loss } = spec;
    const other = spec.shareStateWith;
    if (other && !(other instanceof OffloadedStep)) throw new Error('layer offloading: shareStateWith must be another offloaded step');
    const blocks = recomputedBlocks([loss]);
    if (!blocks.length) throw new Error('layer offloading: the model has no blocks — build it with gradient checkpointing on (Builder.gradientCheckpointing)');
    const order = topoOrder([loss, ...Object.values(spec.extraOutputs ?? {})]).sort((a, b) => a.id - b.id);
    const paramName = new Map(Object.entries(spec.params).map(([n, t]) => [t.id, n]));
    const inputName = new Map(spec.inputs.map((t) => [t.id, (t.source as { name: string }).name]));
    for (const t of order) {
      if (t.source.kind === 'input' && !paramName.has(t.id) && !inputName.has(t.id)) throw new Error(`layer offloading: graph input '${t.source.name}' is neither a step input nor a parameter`);
    }
    // Segment of every op tensor: blocks are their own; the ops between blocks form glue segments.
    const segOf = new Map<number, number>();
    const segments: Segment[] = [];
    const fresh = (): Segment => { segments.push({ ops: [], reads: [], exports: [], hasLoss: false, extras: [], gradReads: [], seeded: [] }); return segments[segments.length - 1]; };
    let b = 0, glue: Segment | undefined;
    for (const t of order) {
      if (t.source.kind !== 'op') continue;
      while (b < blocks.length && blocks[b].end <= t.id) b++;
      const inBlock = b < blocks.length && t.id >= blocks[b].start;
      let seg: Segment;
      if (inBlock) {
        const key = -1 - b;
        if (!segOf.has(key)) { segOf.set(key, segments.length); fresh(); glue = undefined; }
        seg = segments[segOf.get(key)!];
      } else seg = glue ??= fresh();
      segOf.set(t.id, segments.indexOf(seg));
      seg.ops.push(t);
    }
    const streamed = (x: Tensor) => x.source.kind === 'const' && (!!x.source.external || !!x.source.name || x.size > EMBED_MAX);
    const exported = new Set<number>();
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
    for (const seg of segments) {
      seg.exports = seg.ops.filter((t) => exported.has(t.id));
      seg.hasLoss = seg.ops.includes(loss);
    }
    for (const [name, t] of Object.entries(spec.extraOutputs ?? {})) {
      const at = segOf.get(t.id);
      if (at === undefined) throw new Error(`layer offloading: extra output '${name}' is not computed by the model's graph`);
      segments[at].extras.push([name, t]);
    }
    // Which values carry a gradient to a parameter (as autodiff decides it).
    const needs = new Set<number>(paramName.keys());
    for (const t of order) {
      if (t.source.kind !== 'op' || needs.has(t.id)) continue;
      const fixed = getOp(t.source.op).constantInputs;
      if (t.source.inputs.some((x, k) => needs.has(x.id) && !fixed?.includes(k))) needs.add(t.id);
    }
    const plans: { seg: Segment; kind: 'fwd' | 'bwd'; inputs: Tensor[]; outputs: Record<string, Tensor> }[] = [];
    for (const [i, seg] of segments.entries()) {
      seg.gradReads = seg.reads.flatMap((x, k) => (needs.has(x.id) ? [k] : []));
      seg.seeded = seg.exports.flatMap((x, k) => (needs.has(x.id) ? [k] : []));
      const ins = seg.reads.map((x, k) => input(`in${k}`, x.shape, x.dtype));
      const clone = cloneOps(seg, ins);
      const hasBwd = (seg.seeded.length > 0 || seg.hasLoss) && seg.gradReads.length > 0;
      const extras = Object.fromEntries(seg.extras.map(([n, t]) => [`extra:${n}`, clone(t)]));
      if (seg.exports.length || (seg.extras.length && !hasBwd)) {
        plans.push({ seg, kind: 'fwd', inputs: ins, outputs: { ...Object.fromEntries(seg.exports.map((t, j) => [`out${j}`, clone(t)])), ...(hasBwd ? {} : extras) } });
      }
      if (hasBwd) {
        const seeds = seg.seeded.map((j) => input(`seed${j}`, seg.exports[j].shape, seg.exports[j].dtype));
        let total: Tensor | undefined = seg.hasLoss ? reduceSum(clone(loss)) : undefined;
        seg.seeded.forEach((j, n) => { const s = reduceSum(mul(clone(seg.exports[j]), seeds[n])); total = total ? add(total, s) : s; });
        const gs = grad(total!, seg.gradReads.map((k) => ins[k]));
        const outs: Record<string, Tensor> = Object.fromEntries(seg.gradReads.map((k, n) => [`grad${k}`, gs[n]]));
        if (seg.hasLoss) outs.loss = clone(loss);
        Object.assign(outs, extras);
        plans.push({ seg, kind: 'bwd', inputs: [...ins, ...seeds], outputs: outs });
      } else if (seg.hasLoss) throw new Error(`layer offloading: segment ${i} computes the loss but no parameter reaches it`);
    }
    // Pre-flight: the largest segment graph (its weights are inputs, so they count), plus what waits on
    // the host between segments (every value crossing segments, every parameter's gradient).
    const host = segments.reduce((n, sg) => n + sg.exports.reduce((m, t) => m + t.size * BYTES_PER_ELEMENT[t.dtype], 0), 0)
      + Object.values(spec.params).reduce((n, t) => n + t.size * 4, 0);
    const estimate = plans.map((p) => estimateGraphMemory(Object.values(p.outputs))).reduce((a, b) => (b.total > a.total ? b : a));
    const memoryEstimate: MemoryEstimate = { ...estimate, inputs: estimate.inputs + host, total: estimate.total + host };
    const limit = spec.memoryLimitBytes ?? deviceMemoryLimit();
    if (limit > 0) checkMemory('This offloaded training step', memoryEstimate, limit, spec.memorySettings);
    for (const p of plans) p.seg[p.kind] = await rt.load(noArena(compileGraph(p.inputs, p.outputs, { name: `offload_${p.kind}` })));
    // The optimizer: a TrainStep over the same parameters whose loss Σ reduceSum(p · g) has gradient g.
    const gIns = Object.entries(spec.params).map(([n, p]) => input(`grad:${n}`, p.shape, p.dtype));
    const params = Object.fromEntries(Object.entries(spec.params).map(([n, p]) => [n, input(n, p.shape, p.dtype)]));
    let surrogate: Tensor | undefined;
    Object.values(params).forEach((p, i) => { const s = reduceSum(mul(p, gIns[i])); surrogate = surrogate ? add(surrogate, s) : s; });
    const applyStep = await TrainStep.create(rt, {
      inputs: gIns, params, loss: surrogate!, optimizer: spec.optimizer, maxGradNorm: spec.maxGradNorm, ema: spec.ema, memoryLimitBytes: 0,
      shareStateWith: (other as OffloadedStep | undefined)?.apply,
    });
    return new OffloadedStep(spec, segments, paramName, inputName, applyStep, rt, memoryEstimate);
  }

  /** Number of segments (blocks and the glue between them) and distinct sessions they use. */
  get layout() {
    const sessions = new Set(this.segments.flatMap((s) => [s.fwd?.key, s.bwd?.key]).filter(Boolean));
    return { segments: this.segments.length, sessions: sessions.size };
  }

  override async init(values: Record<string, HostTensor>) { await this.apply.init(values); }
  override async load(values: Record<string, HostTensor>) { await this.apply.load(values); }
  override read(withState = true) { return this.apply.read(withState); }
  override readEma() { return this.apply.readEma(); }

  /** Loss, extra outputs and gradients of every parameter at the current parameters, for one feed set. */
  async gradients(feeds: Record<string, HostTensor>): Promise<{ loss: number; grads: Record<string, HostTensor>; extra: Record<string, HostTensor> }> {
    const extra: Record<string, HostTensor> = {};
    const pickExtras = (seg: Segment, out: Record<string, HostTensor>) => { for (const [n] of seg.extras) if (out[`extra:${n}`]) extra[n] = out[`extra:${n}`]; };
    const acts = new Map<number, HostTensor>();
    const actGrads = new Map<number, HostTensor>();
    const grads: Record<string, HostTensor> = {};
    const feedOf = (seg: Segment): Record<string, Feed> => {
      let weightBytes = 0;
      const f: Record<string, Feed> = {};
      seg.reads.forEach((x, k) => {
        const p = this.paramName.get(x.id), name = this.inputName.get(x.id);
        if (p !== undefined) f[`in${k}`] = { slot: `${this.apply.ns}/${p}` };
        else if (name !== undefined) {
          if (!feeds[name]) throw new Error(`layer offloading: input '${name}' was not fed`);
          f[`in${k}`] = feeds[name];
        } else if (x.source.kind === 'const') {
          const w = this.weight(x);
          f[`in${k}`] = w;
          weightBytes += w.data.byteLength;
        } else f[`in${k}`] = acts.get(x.id)!;
      });
      this.maxSegmentWeightBytes = Math.max(this.maxSegmentWeightBytes, weightBytes);
      return f;
    };
    for (const seg of this.segments) {
      if (!seg.fwd) continue;
      const out = await seg.fwd.run(feedOf(seg));
      seg.exports.forEach((t, j) => acts.set(t.id, out[`out${j}`]));
      pickExtras(seg, out);
    }
    let loss = NaN;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i];
      if (!seg.bwd) continue;
      const f = feedOf(seg);
      for (const j of seg.seeded) {
        const t = seg.exports[j];
        f[`seed${j}`] = actGrads.get(t.id) ?? { dtype: t.dtype, shape: [...t.shape], data: arrayFor(t.dtype, t.size) };
        actGrads.delete(t.id);
      }
      const out = await seg.bwd.run(f);
      if (seg.hasLoss) loss = out.loss.data[0] as number;
      pickExtras(seg, out);
      for (const k of seg.gradReads) {
        const x = seg.reads[k], g = out[`grad${k}`];
        const p = this.paramName.get(x.id);
        if (p !== undefined) grads[p] = grads[p] ? addHost(grads[p], g) : g;
        else if (x.source.kind === 'op') actGrads.set(x.id, actGrads.has(x.id) ? addHost(actGrads.get(x.id)!, g) : g);
      }
    }
    for (const [n, p] of Object.entries(this.spec.params)) grads[n] ??= { dtype: p.dtype, shape: [...p.shape], data: arrayFor(p.dtype, p.size) };
    return { loss, grads, extra };
  }

  /**
   * One optimizer step: forward and backward segment by segment for each micro-batch (`accumulation`
   * of them, gradients averaged), then the update. Returns what TrainStep.step returns.
   */
  override async step(micro: Record<string, HostTensor>[], lr: number, step: number): Promise<{ loss: number; gradNorm: number; extra: Record<string, HostTensor> }> {
    const n = this.spec.accumulation ?? 1;
    if (micro.length !== n) throw new Error(`layer offloading: expected ${n} micro-batch(es), got ${micro.length}`);
    let loss = 0, extra: Record<string, HostTensor> = {};
    let sum: Record<string, HostTensor> | undefined;
    for (const feeds of micro) {
      const r = await this.gradients(feeds);
      loss += r.loss / n;
      extra = r.extra;
      sum = sum ? Object.fromEntries(Object.entries(sum).map(([k, g]) => [k, addHost(g, r.grads[k])])) : r.grads;
    }
    const mean = (g: HostTensor): HostTensor => (n === 1 ? g : { ...g, data: (g.data as Float32Array).map((v) => v / n) });
    const r = await this.apply.step([Object.fromEntries(Object.entries(sum!).map(([k, g]) => [`grad:${k}`, mean(g)]))], lr, step);
    return { loss, gradNorm: r.gradNorm, extra };
  }

  /** Releases the segments' sessions and the optimizer's (parameters stay in the runtime). */
  override async releaseSessions() {
    for (const seg of this.segments) for (const s of [seg.fwd, seg.bwd]) if (s) await this.runtime.release(s);
    await this.apply.releaseSessions();
  }

  /** A streamed frozen weight: its bytes from the checkpoint file, or its host array. */
  private weight(x: Tensor): HostTensor {
    const src = x.source as Extract<Tensor['source'], { kind: 'const' }>;
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

  override async dispose() {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    await this.apply.dispose();
  }
}

/** Segment sessions run without ORT's arena: one arena per session would keep every segment's peak. */
const noArena = (g: CompiledGraph): CompiledGraph => ({ ...g, memArena: false, hash: `${g.hash}:no-arena` });

/** Rebuilds a segment's ops over fresh inputs standing for its outside reads; returns the mapping. */
function cloneOps(seg: Segment, ins: Tensor[]): (t: Tensor) => Tensor {
  const copies = new Map<number, Tensor>(seg.reads.map((x, k) => [x.id, ins[k]]));
  for (const t of seg.ops) {
    const src = t.source as OpSource;
    copies.set(t.id, apply(src.op, src.inputs.map((x) => copies.get(x.id) ?? x), src.attrs));
  }
  return (t) => copies.get(t.id)!;
}

function addHost(a: HostTensor, b: HostTensor): HostTensor {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + y[i];
  return { ...a, data: out };
}
