// The runtime: ONNX Runtime sessions in a worker thread (ORT's run blocks the thread it runs on),
// cached by graph hash, with resident "slots" for state that stays put between training steps.
import { Worker } from 'node:worker_threads';
import type { CompiledGraph } from '../compile';
import type { HostTensor } from '../tensor';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';

export interface RuntimeOptions {
  ep?: ExecutionProvider;
  /** ORT intra-op threads; 0 = ORT's default (all cores). Fixed threads + fixed seed = bit-identical CPU runs. */
  threads?: number;
  deviceId?: number;
}

/** A feed is a host tensor, or the name of a slot holding a resident tensor. */
export type Feed = HostTensor | { slot: string };

export interface RunOptions {
  /** Outputs to copy back to the host. Defaults to every output not stored. */
  fetch?: string[];
  /** Outputs kept resident: output name → slot name. */
  store?: Record<string, string>;
}

export class Session {
  constructor(private rt: Runtime, readonly graph: CompiledGraph) {}

  async run(feeds: Record<string, Feed>, opts: RunOptions = {}): Promise<Record<string, HostTensor>> {
    const store = opts.store ?? {};
    const fetch = opts.fetch ?? this.graph.outputs.map((o) => o.name).filter((n) => !(n in store));
    for (const i of this.graph.inputs) {
      const f = feeds[i.name];
      if (!f) throw new Error(`run: input '${i.name}' was not fed`);
      if (!('slot' in f)) {
        const n = i.shape.reduce((a, b) => a * b, 1);
        if (f.data.length !== n) throw new Error(`run: input '${i.name}' has ${f.data.length} values, expected ${n} for [${i.shape.join(',')}]`);
      }
    }
    const r = await this.rt.call<{ outputs: Record<string, HostTensor>; runMs: number }>('run', { key: this.graph.hash, feeds, fetch, store });
    this.rt.stats.runs++;
    this.rt.stats.ortMs += r.runMs;
    return r.outputs;
  }

  release() { return this.rt.call('release', { key: this.graph.hash }); }
}

export class Runtime {
  private worker: Worker;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private loaded = new Map<string, Promise<Session>>();
  readonly stats = { runs: 0, ortMs: 0 };

  constructor(readonly options: RuntimeOptions = {}) {
    this.worker = new Worker(new URL('./ort-worker.mjs', import.meta.url), {
      workerData: { ep: options.ep ?? 'cpu', threads: options.threads ?? 0, deviceId: options.deviceId ?? 0 },
    });
    this.worker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    this.worker.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
    this.worker.unref();
  }

  call<T = unknown>(type: string, msg: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        resolve: (v) => { this.settle(); resolve(v); },
        reject: (e) => { this.settle(); reject(e); },
      });
      this.worker.postMessage({ id, type, ...msg });
    });
  }

  // The worker only keeps the process alive while a call is in flight.
  private settle() { if (this.pending.size === 0) this.worker.unref(); }

  /** Loads (or reuses) the session for a compiled graph. `keep` names outputs that will be stored in slots. */
  load(graph: CompiledGraph, keep: string[] = []): Promise<Session> {
    let s = this.loaded.get(graph.hash);
    if (!s) {
      s = this.call('load', { key: graph.hash, bytes: graph.bytes, keep }).then(() => new Session(this, graph));
      s.catch(() => this.loaded.delete(graph.hash));
      this.loaded.set(graph.hash, s);
    }
    return s;
  }

  put(slots: Record<string, HostTensor>) { return this.call('put', { slots }); }
  async get(names: string[]): Promise<Record<string, HostTensor>> {
    return (await this.call<{ slots: Record<string, HostTensor> }>('get', { slots: names })).slots;
  }
  drop(names: string[]) { return this.call('drop', { slots: names }); }
  info() { return this.call<{ ep: string; threads: number; sessions: number; slots: number }>('info'); }

  async close() { await this.worker.terminate(); }
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
