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
import { arrayFor, input, type HostTensor, type Tensor } from '../tensor';
import { add, mul } from '../ops/elementwise';
import { reduceSum } from '../ops/shape-and-reduce';
import { getOp } from '../ops/table';
import { grad } from '../autodiff';
import { compileGraph } from '../compile';
import type { Feed, Runtime, Session } from '../runtime';
import { TrainStep, type TrainStepSpec } from './step';
import { checkMemory, deviceMemoryLimit, type MemoryEstimate } from './memory';
import { cloneOps, crossingBytes, noArena, segmentedEstimate, segmentInputs, splitAtBlocks, WeightStreamer, type Segment as Split } from './segments';

export type OffloadMode = 'none' | 'blocks';
export const OFFLOAD_MODES = ['none', 'blocks'] as const satisfies readonly OffloadMode[];

/**
 * What a TrainStep takes; `externalDir` does not apply (no graph holds the weights), the memory pre-flight
 * checks the largest segment plus what waits on the host, `shareStateWith` must be another OffloadedStep.
 */
export type OffloadedStepSpec = TrainStepSpec;

/** A segment of the step (kernels/train/segments.ts) with what training adds to it. */
interface Segment extends Split {
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
  private readonly weights = new WeightStreamer();
  /** Bytes of frozen weights fed to the largest segment run (what ORT holds of the model at a time). */
  get maxSegmentWeightBytes() { return this.weights.maxSegmentWeightBytes; }

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
    // Segments: the blocks, and the glue between them (kernels/train/segments.ts).
    const split = splitAtBlocks([loss, ...Object.values(spec.extraOutputs ?? {})], 'layer offloading');
    const { order } = split;
    const paramName = new Map(Object.entries(spec.params).map(([n, t]) => [t.id, n]));
    const inputName = new Map(spec.inputs.map((t) => [t.id, (t.source as { name: string }).name]));
    for (const t of order) {
      if (t.source.kind === 'input' && !paramName.has(t.id) && !inputName.has(t.id)) throw new Error(`layer offloading: graph input '${t.source.name}' is neither a step input nor a parameter`);
    }
    const segments: Segment[] = split.segments.map((sg) => ({ ...sg, hasLoss: sg.ops.includes(loss), extras: [], gradReads: [], seeded: [] }));
    for (const [name, t] of Object.entries(spec.extraOutputs ?? {})) {
      const at = split.segmentOf(t);
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
      const ins = segmentInputs(seg);
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
    const host = crossingBytes(segments) + Object.values(spec.params).reduce((n, t) => n + t.size * 4, 0);
    const memoryEstimate = segmentedEstimate(plans.map((p) => Object.values(p.outputs)), host);
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
    const feedOf = (seg: Segment) => this.weights.feeds(seg, (x): Feed => {
      const p = this.paramName.get(x.id), name = this.inputName.get(x.id);
      if (p !== undefined) return { slot: `${this.apply.ns}/${p}` };
      if (name === undefined) return acts.get(x.id)!;
      if (!feeds[name]) throw new Error(`layer offloading: input '${name}' was not fed`);
      return feeds[name];
    });
    for (const seg of this.segments) {
      if (!seg.fwd) continue;
      const f = feedOf(seg);
      const out = await seg.fwd.run(f.feeds, { transfer: f.transfer });
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
        f.feeds[`seed${j}`] = actGrads.get(t.id) ?? { dtype: t.dtype, shape: [...t.shape], data: arrayFor(t.dtype, t.size) };
        actGrads.delete(t.id);
      }
      const out = await seg.bwd.run(f.feeds, { transfer: f.transfer });
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

  override async dispose() {
    this.weights.close();
    await this.apply.dispose();
  }
}

function addHost(a: HostTensor, b: HostTensor): HostTensor {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + y[i];
  return { ...a, data: out };
}
