// The runtime: ONNX Runtime sessions in a worker thread (ORT's run blocks the thread it runs on),
// cached by graph hash, with resident "slots" for state that stays put between training steps.
// Sessions live within a memory budget: past it, the least recently used idle ones are released and
// loaded again on their next run, so a long-lived server does not grow with every graph it has run.
import { totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CompiledGraph } from '../compile';
import { input, type DType, type HostTensor } from '../tensor';
import { compileGraph } from '../compile';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';

export interface RuntimeOptions {
  ep?: ExecutionProvider;
  /** ORT intra-op threads; 0 = ORT's default (all cores). Fixed threads + fixed seed = bit-identical CPU runs. */
  threads?: number;
  deviceId?: number;
  /**
   * Estimated bytes of loaded sessions to keep (weights + model bytes); the least recently used idle
   * sessions beyond it are released. Default: LORAGRAPH_SESSION_BUDGET_MB, else half the machine's memory.
   */
  sessionBudgetBytes?: number;
}

/** A feed is a host tensor, or the name of a slot holding a resident tensor. */
export type Feed = HostTensor | { slot: string };

export interface RunOptions {
  /** Outputs to copy back to the host. Defaults to every output not stored. */
  fetch?: string[];
  /** Outputs kept resident: output name → slot name. */
  store?: Record<string, string>;
  /**
   * Feeds whose buffers move to the worker instead of being copied; the caller gives them up (they are
   * detached after the call). Layer offloading's weights read for one run: without it a second copy
   * sits in this thread until its garbage is collected.
   */
  transfer?: readonly string[];
}

export class Session {
  constructor(private rt: Runtime, readonly graph: CompiledGraph, readonly key: string) {}

  /** Unloads the session now (its weights leave memory); the next run loads it again. */
  release() { return this.rt.release(this); }

  /**
   * Runs the graph. `feeds` may be split over several records (looked up in order), so callers with
   * hundreds of resident-state feeds can pass those as one prepared record instead of merging objects
   * each step (spreading 800 keys cost more than the tiny model's step).
   */
  async run(feeds: Record<string, Feed> | readonly Record<string, Feed>[], opts: RunOptions = {}): Promise<Record<string, HostTensor>> {
    const store = opts.store ?? {};
    const fetch = opts.fetch ?? this.graph.outputs.map((o) => o.name).filter((n) => !(n in store));
    const layers = Array.isArray(feeds) ? feeds : [feeds as Record<string, Feed>];
    const wire: Record<string, Feed> = {};
    for (const i of this.graph.inputs) {
      let f: Feed | undefined;
      for (const layer of layers) if ((f = layer[i.name])) break;
      if (!f) throw new Error(`run: input '${i.name}' was not fed`);
      if ('slot' in f) wire[i.name] = { slot: this.rt.slotName(f.slot) };
      else {
        const n = i.shape.reduce((a, b) => a * b, 1);
        if (f.data.length !== n) throw new Error(`run: input '${i.name}' has ${f.data.length} values, expected ${n} for [${i.shape.join(',')}]`);
        wire[i.name] = f;
      }
    }
    const wireStore = Object.fromEntries(Object.entries(store).map(([o, s]) => [o, this.rt.slotName(s)]));
    const moved = new Set<ArrayBuffer>();
    for (const n of opts.transfer ?? []) { const f = wire[n]; if (f && !('slot' in f)) moved.add(f.data.buffer as ArrayBuffer); }
    const done = await this.rt.acquire(this.key);
    try {
      const r = await call<{ outputs: Record<string, HostTensor>; runMs: number }>('run', { key: this.key, feeds: wire, fetch, store: wireStore }, [...moved]);
      this.rt.stats.runs++;
      this.rt.stats.ortMs += r.runMs;
      return r.outputs;
    } finally {
      done();
    }
  }
}

// --- the process-wide worker ---------------------------------------------------------------------
// onnxruntime-node's native addon can be loaded by only one thread per process, so all Runtime
// handles share one worker; a handle is a configuration (EP, threads) plus a namespace for slots.
let worker: Worker | undefined;
const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
let nextCallId = 0;

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./ort-worker.mjs', import.meta.url));
  w.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error));
  });
  w.on('error', (e) => { for (const p of pending.values()) p.reject(e); pending.clear(); worker = undefined; });
  w.on('exit', () => { worker = undefined; });
  w.unref();
  worker = w;
  return w;
}

function call<T = unknown>(type: string, msg: Record<string, unknown> = {}, transfer: ArrayBuffer[] = []): Promise<T> {
  const w = getWorker();
  const id = nextCallId++;
  // The worker keeps the process alive only while a call is in flight.
  if (pending.size === 0) w.ref();
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ id, type, ...msg }, transfer);
  });
}

let nextRuntimeId = 0;

/** A session this handle knows: loaded in the worker while `ready` is set, released (and reloadable) otherwise. */
interface LoadedSession {
  graph: CompiledGraph;
  keep: string[];
  bytes: number;
  ready?: Promise<unknown>;
  session?: Session;
  lastUsed: number;
  busy: number;
}

export class Runtime {
  readonly id = nextRuntimeId++;
  readonly stats = { runs: 0, ortMs: 0, released: 0 };
  private loaded = new Map<string, LoadedSession>();
  private ownSlots = new Set<string>();
  private useCounter = 0;
  readonly ep: ExecutionProvider;
  readonly threads: number;
  readonly sessionBudgetBytes: number;

  constructor(readonly options: RuntimeOptions = {}) {
    this.ep = options.ep ?? 'cpu';
    this.threads = options.threads ?? 0;
    const envMb = Number(process.env.LORAGRAPH_SESSION_BUDGET_MB);
    this.sessionBudgetBytes = options.sessionBudgetBytes ?? (envMb > 0 ? envMb * 2 ** 20 : totalmem() / 2);
  }

  slotName(slot: string) { this.ownSlots.add(slot); return `rt${this.id}/${slot}`; }

  /** Loads (or reuses) the session for a compiled graph. `keep` names outputs that will be stored in slots. */
  async load(graph: CompiledGraph, keep: string[] = []): Promise<Session> {
    const key = `${graph.hash}|${this.ep}|${this.threads}`;
    let e = this.loaded.get(key);
    if (!e) {
      // Inline weights sit in the model bytes and again in ORT's tensors; external ones only in ORT's.
      e = { graph, keep, bytes: graph.bytes.byteLength + graph.initializerBytes, lastUsed: 0, busy: 0 };
      this.loaded.set(key, e);
    }
    const done = await this.acquire(key);
    done();
    return (e.session ??= new Session(this, graph, key));
  }

  /** Makes sure the session is loaded and marks it busy until the returned function is called. */
  async acquire(key: string): Promise<() => void> {
    const e = this.loaded.get(key);
    if (!e) throw new Error(`run: session ${key.slice(0, 12)} was closed with its runtime`);
    e.busy++;
    e.lastUsed = ++this.useCounter;
    try {
      if (!e.ready) {
        const { graph, keep } = e;
        const ready = call('load', { key, holder: this.id, ...(graph.path ? { path: graph.path } : { bytes: graph.bytes }), keep, ep: this.ep, threads: this.threads, deviceId: this.options.deviceId ?? 0, memArena: graph.memArena !== false });
        e.ready = ready;
        ready.catch(() => { if (e.ready === ready) e.ready = undefined; });
        await ready;
        await this.releaseOverBudget();
      } else await e.ready;
    } catch (err) {
      e.busy--;
      throw err;
    }
    return () => { e.busy--; };
  }

  /** The sessions loaded in the worker now (known but released ones excluded), by key. */
  private live(): [string, LoadedSession][] {
    return [...this.loaded.entries()].filter(([, e]) => e.ready);
  }

  /** Releases least recently used idle sessions until the loaded ones fit the budget. */
  private async releaseOverBudget() {
    let total = this.loadedSessions().bytes;
    // On a GPU, tensors kept in slots live in the allocator of the session that made them.
    const releasable = ([, e]: [string, LoadedSession]) => e.busy === 0 && (this.ep === 'cpu' || e.keep.length === 0);
    while (total > this.sessionBudgetBytes) {
      const victim = this.live().filter(releasable).sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      if (!victim) return;
      const [key, e] = victim;
      e.ready = undefined;
      total -= e.bytes;
      this.stats.released++;
      await call('release', { key, holder: this.id });
    }
  }

  /**
   * Releases one session now, so its weights leave memory (a Wan 2.2 expert that is not training); the
   * session stays known and loads again when next run. A busy session is left alone.
   */
  async release(session: Session) {
    const e = this.loaded.get(session.key);
    if (!e?.ready || e.busy) return;
    e.ready = undefined;
    this.stats.released++;
    await call('release', { key: session.key, holder: this.id });
  }

  /** How many sessions this handle has loaded in the worker now, and their estimated bytes. */
  loadedSessions() {
    const live = this.live();
    return { count: live.length, bytes: live.reduce((n, [, e]) => n + e.bytes, 0) };
  }

  put(slots: Record<string, HostTensor>) {
    return call('put', { slots: Object.fromEntries(Object.entries(slots).map(([k, v]) => [this.slotName(k), v])) });
  }
  async get(names: string[]): Promise<Record<string, HostTensor>> {
    if (this.ep !== 'cpu') return this.download(names);
    const r = await call<{ slots: Record<string, HostTensor> }>('get', { slots: names.map((n) => this.slotName(n)) });
    return Object.fromEntries(names.map((n) => [n, r.slots[this.slotName(n)]]));
  }

  // Device-resident tensors are read back by running an identity graph whose outputs land on the CPU
  // (onnxruntime-node cannot read a gpu-buffer tensor directly).
  private async download(names: string[]): Promise<Record<string, HostTensor>> {
    const meta = (await call<{ slots: Record<string, { dtype: DType; shape: number[] }> }>('meta', { slots: names.map((n) => this.slotName(n)) })).slots;
    const ins = names.map((n, i) => input(`in${i}`, meta[this.slotName(n)].shape, meta[this.slotName(n)].dtype));
    const g = compileGraph(ins, Object.fromEntries(ins.map((t, i) => [`out${i}`, t])), { name: 'download' });
    const s = await this.load(g);
    const out = await s.run(Object.fromEntries(names.map((n, i) => [`in${i}`, { slot: n }])));
    return Object.fromEntries(names.map((n, i) => [n, out[`out${i}`]]));
  }
  drop(names: string[]) {
    for (const n of names) this.ownSlots.delete(n);
    return call('drop', { slots: names.map((n) => `rt${this.id}/${n}`) });
  }
  info() { return call<{ sessions: number; slots: number }>('info'); }

  /** Releases this handle's sessions and resident tensors (the shared worker stays). */
  async close() {
    // Device tensors first: they belong to the sessions' allocators.
    await this.drop([...this.ownSlots]);
    const keys = this.live().map(([k]) => k);
    this.loaded.clear();
    for (const key of keys) await call('release', { key, holder: this.id });
  }
}
let shared: Runtime | undefined;
/** The process-wide runtime (CPU unless LORAGRAPH_EP says otherwise). */
export function defaultRuntime(): Runtime {
  if (!shared) {
    const ep = (process.env.LORAGRAPH_EP as ExecutionProvider | undefined) ?? 'cpu';
    const threads = Number(process.env.LORAGRAPH_THREADS ?? 0);
    shared = new Runtime({ ep, threads });
  }
  return shared;
}
