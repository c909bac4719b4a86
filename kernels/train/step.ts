// One training step as one ONNX graph: forward, loss, backward, gradient clipping and the optimizer
// update. Parameters and optimizer state stay resident in the runtime (slots) between steps; only the
// batch goes in and the loss comes out. With gradient accumulation the step splits in two graphs:
// forward+backward adding into gradient accumulators, then clip+update on their mean. An optional EMA
// of the parameters is updated in the same graph as the optimizer and kept resident beside them.
import { join } from 'node:path';
import { input, arrayFor, type HostTensor, type Tensor } from '../tensor';
import { add, div, minimum, mul, sqrt, sub } from '../ops/elementwise';
import { reduceSum } from '../ops/shape-and-reduce';
import { grad } from '../autodiff';
import { compileGraph, type CompiledGraph } from '../compile';
import type { Runtime, Session, Feed } from '../runtime';
import type { Optimizer, StateSpec } from '../optim/optimizer';
import { emaDecayAt, type EmaConfig } from '../schedules/ema';
import { checkMemory, deviceMemoryLimit, estimateGraphMemory, type MemoryEstimate, type MemorySettings } from './memory';

export interface TrainStepSpec {
  /** Per-step inputs (batch, noise, timesteps, masks…), fed from the host every step. */
  inputs: Tensor[];
  /** Trainable parameters: graph inputs, keyed by their saved names. */
  params: Record<string, Tensor>;
  loss: Tensor;
  optimizer: Optimizer;
  /** Global gradient-norm clip; 0 or undefined = off. */
  maxGradNorm?: number;
  /** Micro-batches per optimizer step. */
  accumulation?: number;
  /** Extra scalars/tensors to fetch each step (e.g. per-term losses). */
  extraOutputs?: Record<string, Tensor>;
  /**
   * Keep an exponential moving average of the parameters (slots `ema:<name>`), updated after each
   * optimizer step with the decay `emaDecayAt(step, ema)` of kernels/schedules (fed per step).
   */
  ema?: EmaConfig;
  /**
   * Share parameters and optimizer state with an existing step (same parameter names and shapes):
   * one run, several compiled graphs — e.g. one per resolution bucket.
   */
  shareStateWith?: TrainStep;
  /**
   * Write the step's graphs to folders under this one with big frozen weights as external data
   * (required for models over 2 GB and for weights read straight from checkpoint files).
   */
  externalDir?: string;
  /**
   * Memory pre-flight: the step's estimated peak (kernels/train/memory.ts) must fit in this many bytes,
   * else create() fails before any session is made. Default: deviceMemoryLimit(); 0 = no check.
   */
  memoryLimitBytes?: number;
  /** The settings behind the graph's size, named in the pre-flight's refusal. */
  memorySettings?: MemorySettings;
}

let nextGraphFolder = 0;

let nextNamespace = 0;

export class TrainStep {
  readonly ns: string;
  private sessions: Session[] = [];
  protected constructor(
    readonly spec: TrainStepSpec,
    readonly graphs: { fused?: CompiledGraph; accumulate?: CompiledGraph; apply?: CompiledGraph },
    readonly stateNames: Record<string, string[]>,
    readonly sharedNames: string[],
    private rt: Runtime,
    /** The pre-flight's estimate of the step's peak memory (the larger graph when accumulating). */
    readonly memoryEstimate: MemoryEstimate,
  ) {
    const other = spec.shareStateWith;
    if (other) {
      const mine = Object.entries(spec.params).map(([n, t]) => `${n}:${t.shape}`).sort().join();
      const theirs = Object.entries(other.spec.params).map(([n, t]) => `${n}:${t.shape}`).sort().join();
      if (mine !== theirs) throw new Error('shareStateWith: the two steps train different parameters');
      if (other.rt !== rt) throw new Error('shareStateWith: the two steps use different runtimes');
    }
    this.ns = other?.ns ?? `train${nextNamespace++}`;
  }

  /**
   * The memory pre-flight of a step without building it: the estimate `create` checks before it
   * compiles anything (benchmarks print it for sizes they cannot run).
   */
  static preflight(spec: TrainStepSpec): MemoryEstimate {
    return planStep(spec).estimate;
  }

  static async create(rt: Runtime, spec: TrainStepSpec): Promise<TrainStep> {
    const { plan, estimate, stateNames, sharedNames } = planStep(spec);
    const limit = spec.memoryLimitBytes ?? deviceMemoryLimit();
    if (limit > 0) checkMemory('This training step', estimate, limit, spec.memorySettings);
    const graphOptions = (name: string) => ({ name, ...(spec.externalDir ? { externalDir: join(spec.externalDir, `${name}-${process.pid}-${nextGraphFolder++}`) } : {}) });
    const graphs: { fused?: CompiledGraph; accumulate?: CompiledGraph; apply?: CompiledGraph } = {};
    for (const p of plan) graphs[p.key] = compileGraph(p.inputs, p.outputs, graphOptions(p.name));
    const ts = new TrainStep(spec, graphs, stateNames, sharedNames, rt, estimate);
    // Outputs that go back into slots stay on the device (WebGPU/CUDA) between steps.
    for (const g of Object.values(graphs)) ts.sessions.push(await rt.load(g!, g!.outputs.map((o) => o.name).filter((n) => n.startsWith('new:'))));
    return ts;
  }

  private slot(name: string) { return `${this.ns}/${name}`; }

  /** Puts initial parameter values (and zero/initial optimizer state) into the runtime. */
  async init(values: Record<string, HostTensor>) {
    const slots: Record<string, HostTensor> = {};
    for (const [n, p] of Object.entries(this.spec.params)) {
      const v = values[n];
      if (!v) throw new Error(`init: no value for parameter '${n}'`);
      if (v.data.length !== p.size) throw new Error(`init: parameter '${n}' has ${v.data.length} values, expected ${p.size} for [${p.shape.join(',')}]`);
      slots[this.slot(n)] = v;
      for (const [k, s] of Object.entries(this.spec.optimizer.state(p.shape))) slots[this.slot(`${n}:${k}`)] = initialState(s, v);
      if (this.spec.ema) slots[this.slot(`ema:${n}`)] = initialState({ shape: [...p.shape], init: 'param' }, v);
    }
    for (const [k, s] of Object.entries(this.spec.optimizer.shared?.() ?? {})) slots[this.slot(`opt:${k}`)] = initialState(s);
    await this.rt.put(slots);
    if (this.graphs.accumulate) await this.zeroAccumulators();
  }

  /** Restores parameters and optimizer state saved by `read()` (resume). */
  async load(values: Record<string, HostTensor>) {
    const slots: Record<string, HostTensor> = {};
    for (const key of this.stateKeys(true)) {
      if (!values[key]) throw new Error(`resume: checkpoint lacks '${key}'`);
      slots[this.slot(key)] = values[key];
    }
    await this.rt.put(slots);
    if (this.graphs.accumulate) await this.zeroAccumulators();
  }

  private async zeroAccumulators() {
    await this.rt.put(Object.fromEntries(Object.entries(this.spec.params).map(([n, p]) =>
      [this.slot(`acc:${n}`), { dtype: 'float32' as const, shape: [...p.shape], data: new Float32Array(p.size) }])));
  }

  /** Slot keys: parameters, then (withState) optimizer state, shared optimizer state and EMA copies. */
  private stateKeys(withState: boolean): string[] {
    const names = Object.keys(this.spec.params);
    if (!withState) return names;
    return [
      ...names.flatMap((n) => [n, ...this.stateNames[n].map((k) => `${n}:${k}`)]),
      ...this.sharedNames.map((k) => `opt:${k}`),
      ...(this.spec.ema ? names.map((n) => `ema:${n}`) : []),
    ];
  }

  // The slot feeds and stores never change for a step, so they are built once.
  private readonly slotFeeds: Partial<Record<'params' | 'state', Record<string, Feed>>> = {};
  private storeMap?: Record<string, string>;

  private paramFeeds(withState: boolean): Record<string, Feed> {
    return (this.slotFeeds[withState ? 'state' : 'params'] ??= Object.fromEntries(this.stateKeys(withState).map((k) => [k, { slot: this.slot(k) }])));
  }

  private updateStore(): Record<string, string> {
    return (this.storeMap ??= Object.fromEntries(this.stateKeys(true).map((k) => [`new:${k}`, this.slot(k)])));
  }

  private scalars(lr: number, step: number): Record<string, HostTensor> {
    const f = (v: number): HostTensor => ({ dtype: 'float32', shape: [], data: new Float32Array([v]) });
    const s: Record<string, HostTensor> = { lr: f(lr), step: f(step) };
    if (this.spec.ema) s.ema_decay = f(emaDecayAt(step, this.spec.ema));
    return s;
  }

  /**
   * One optimizer step. `micro` holds one feed set per micro-batch (exactly `accumulation` of them).
   * Returns the mean loss, the gradient norm before clipping and the extra outputs of the last micro-batch.
   */
  async step(micro: Record<string, HostTensor>[], lr: number, step: number): Promise<{ loss: number; gradNorm: number; extra: Record<string, HostTensor> }> {
    const extraNames = Object.keys(this.spec.extraOutputs ?? {});
    if (this.graphs.fused) {
      if (micro.length !== 1) throw new Error(`step: expected 1 micro-batch, got ${micro.length}`);
      const out = await this.sessions[0].run([micro[0], this.paramFeeds(true), this.scalars(lr, step)],
        { fetch: ['loss', 'grad_norm', ...extraNames], store: this.updateStore() });
      return { loss: out.loss.data[0] as number, gradNorm: out.grad_norm.data[0] as number, extra: pick(out, extraNames) };
    }
    const g = this.spec.accumulation!;
    if (micro.length !== g) throw new Error(`step: expected ${g} micro-batches, got ${micro.length}`);
    let loss = 0;
    let extra: Record<string, HostTensor> = {};
    const names = Object.keys(this.spec.params);
    for (const feeds of micro) {
      const accFeeds = Object.fromEntries(names.map((n) => [`acc:${n}`, { slot: this.slot(`acc:${n}`) }]));
      const out = await this.sessions[0].run([feeds, this.paramFeeds(false), accFeeds],
        { fetch: ['loss', ...extraNames], store: Object.fromEntries(names.map((n) => [`new:acc:${n}`, this.slot(`acc:${n}`)])) });
      loss += (out.loss.data[0] as number) / g;
      extra = pick(out, extraNames);
    }
    const accFeeds = Object.fromEntries(names.map((n) => [`acc:${n}`, { slot: this.slot(`acc:${n}`) }]));
    const out = await this.sessions[1].run([this.paramFeeds(true), accFeeds, this.scalars(lr, step)],
      { fetch: ['grad_norm'], store: this.updateStore() });
    await this.zeroAccumulators();
    return { loss, gradNorm: out.grad_norm.data[0] as number, extra };
  }

  /**
   * Current parameters and optimizer state, keyed `name` and `name:state`, shared optimizer state
   * `opt:key` and EMA copies `ema:name` (for checkpoints).
   */
  async read(withState = true): Promise<Record<string, HostTensor>> {
    const keys = this.stateKeys(withState);
    const got = await this.rt.get(keys.map((k) => this.slot(k)));
    return Object.fromEntries(keys.map((k) => [k, got[this.slot(k)]]));
  }

  /** The EMA copies of the parameters, keyed by parameter name. */
  async readEma(): Promise<Record<string, HostTensor>> {
    if (!this.spec.ema) throw new Error('readEma: this train step keeps no EMA (set spec.ema)');
    const names = Object.keys(this.spec.params);
    const got = await this.rt.get(names.map((n) => this.slot(`ema:${n}`)));
    return Object.fromEntries(names.map((n) => [n, got[this.slot(`ema:${n}`)]]));
  }

  /** Releases this step's ORT sessions (and the frozen weights in them); the next step loads them again. */
  async releaseSessions() {
    for (const s of this.sessions) await this.rt.release(s);
  }

  async dispose() {
    const keys = [...this.stateKeys(true), ...Object.keys(this.spec.params).map((n) => `acc:${n}`)];
    await this.rt.drop(keys.map((k) => this.slot(k)));
  }
}

function initialState(s: StateSpec, param?: HostTensor): HostTensor {
  const dtype = s.dtype ?? 'float32';
  if (s.init === 'param') {
    if (!param || param.dtype !== 'float32') throw new Error('a state initialised from its parameter needs a float32 parameter');
    return { dtype, shape: [...s.shape], data: (param.data as Float32Array).slice() };
  }
  const data = arrayFor(dtype, s.shape.reduce((a, b) => a * b, 1));
  if (s.init) (data as Float32Array).fill(s.init);
  return { dtype, shape: [...s.shape], data };
}

function pick(o: Record<string, HostTensor>, names: string[]) { return Object.fromEntries(names.map((n) => [n, o[n]])); }

/** Scales all gradients by min(1, maxNorm / ‖g‖) (the global L2 norm), as torch's clip_grad_norm_. */
export function clipByGlobalNorm(grads: Tensor[], maxNorm?: number): { grads: Tensor[]; norm: Tensor } {
  let sq: Tensor | undefined;
  for (const g of grads) { const s = reduceSum(mul(g, g)); sq = sq ? add(sq, s) : s; }
  const norm = sqrt(sq!);
  if (!maxNorm) return { grads, norm };
  const scale = minimum(div(maxNorm, add(norm, 1e-6)) as Tensor, 1);
  return { grads: grads.map((g) => mul(g, scale)), norm };
}

/** One graph of a step (fused, or accumulate and apply), planned before anything is compiled. */
interface PlannedGraph { key: 'fused' | 'accumulate' | 'apply'; inputs: Tensor[]; outputs: Record<string, Tensor>; name: string }

/** A step's graphs and their memory pre-flight: what `TrainStep.create` compiles once the estimate fits. */
function planStep(spec: TrainStepSpec): { plan: PlannedGraph[]; estimate: MemoryEstimate; stateNames: Record<string, string[]>; sharedNames: string[] } {
  const names = Object.keys(spec.params);
  const params = names.map((n) => spec.params[n]);
  const lr = input('lr', [], 'float32');
  const step = input('step', [], 'float32');
  const stateInputs: Record<string, Record<string, Tensor>> = {};
  const stateNames: Record<string, string[]> = {};
  for (const n of names) {
    const specs = spec.optimizer.state(spec.params[n].shape);
    stateNames[n] = Object.keys(specs);
    stateInputs[n] = Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, input(`${n}:${k}`, s.shape, s.dtype ?? 'float32')]));
  }
  const sharedSpecs = spec.optimizer.shared?.() ?? {};
  const sharedInputs = Object.fromEntries(Object.entries(sharedSpecs).map(([k, s]) => [k, input(`opt:${k}`, s.shape, s.dtype ?? 'float32')]));
  if (Object.keys(sharedSpecs).length && !spec.optimizer.updateAll) throw new Error(`optimizer ${spec.optimizer.name}: shared state needs updateAll`);
  const emaDecay = input('ema_decay', [], 'float32');
  const emaInputs = Object.fromEntries(names.map((n, i) => [n, input(`ema:${n}`, params[i].shape)]));
  const grads = grad(spec.loss, params);
  const accumulation = spec.accumulation ?? 1;

  const update = (gs: Tensor[]) => {
    const clipped = clipByGlobalNorm(gs, spec.maxGradNorm);
    const outs: Record<string, Tensor> = {};
    const scalars = { lr, step };
    let newParams: Tensor[];
    if (spec.optimizer.updateAll) {
      const r = spec.optimizer.updateAll(names.map((n, i) => ({ param: params[i], grad: clipped.grads[i], state: stateInputs[n] })), sharedInputs, scalars);
      newParams = r.params;
      names.forEach((n, i) => { for (const [k, t] of Object.entries(r.states[i])) outs[`new:${n}:${k}`] = t; });
      for (const [k, t] of Object.entries(r.shared)) outs[`new:opt:${k}`] = t;
    } else {
      newParams = names.map((n, i) => {
        const r = spec.optimizer.update(params[i], clipped.grads[i], stateInputs[n], scalars);
        for (const [k, t] of Object.entries(r.state)) outs[`new:${n}:${k}`] = t;
        return r.param;
      });
    }
    names.forEach((n, i) => {
      outs[`new:${n}`] = newParams[i];
      // ema ← ema − (1 − decay)(ema − p), the form of the host reference (decay 0 copies p).
      if (spec.ema) outs[`new:ema:${n}`] = sub(emaInputs[n], mul(sub(1, emaDecay), sub(emaInputs[n], newParams[i])));
    });
    outs.grad_norm = clipped.norm;
    return outs;
  };
  const stateList = [
    ...names.flatMap((n) => Object.values(stateInputs[n])),
    ...Object.values(sharedInputs),
    ...(spec.ema ? [...Object.values(emaInputs), emaDecay] : []),
  ];
  const extra = spec.extraOutputs ?? {};
  // Every graph's outputs are known before any is compiled: the pre-flight runs first.
  const plan: PlannedGraph[] = [];
  if (accumulation === 1) {
    plan.push({ key: 'fused', inputs: [...spec.inputs, ...params, ...stateList, lr, step], outputs: { loss: spec.loss, ...extra, ...update(grads) }, name: 'train_step' });
  } else {
    const accIn = names.map((n, i) => input(`acc:${n}`, params[i].shape));
    const accOut = Object.fromEntries(names.map((n, i) => [`new:acc:${n}`, add(accIn[i], grads[i])]));
    plan.push({ key: 'accumulate', inputs: [...spec.inputs, ...params, ...accIn], outputs: { loss: spec.loss, ...extra, ...accOut }, name: 'train_accumulate' });
    const accApply = names.map((n, i) => input(`acc:${n}`, params[i].shape));
    plan.push({ key: 'apply', inputs: [...params, ...stateList, ...accApply, lr, step], outputs: update(accApply.map((a) => mul(a, 1 / accumulation))), name: 'train_apply' });
  }
  const estimates = plan.map((p) => estimateGraphMemory(Object.values(p.outputs)));
  const estimate = estimates.reduce((a, b) => (b.total > a.total ? b : a));
  return { plan, estimate, stateNames, sharedNames: Object.keys(sharedSpecs) };
}
