// The ONNX Runtime worker: owns the sessions and the resident tensors ("slots": trainable state that
// stays here, or on the GPU, between steps). Plain JS so it loads in any context (tsx, vitest, node)
// without a TypeScript loader. Protocol: see runtime/index.ts.
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

// LORAGRAPH_ORT_LOG: ONNX Runtime's own log level (verbose, info, warning, error, fatal) on stderr. At
// info ORT reports each growth of its memory arena with the request that caused it — how a step's
// memory is found out when it differs from the pre-flight's estimate.
const ORT_LOG_LEVELS = ['verbose', 'info', 'warning', 'error', 'fatal'];
const ortLog = process.env.LORAGRAPH_ORT_LOG;
if (ortLog) {
  if (!ORT_LOG_LEVELS.includes(ortLog)) throw new Error(`LORAGRAPH_ORT_LOG: '${ortLog}' is not one of ${ORT_LOG_LEVELS.join(', ')}`);
  ort.env.logLevel = ortLog;
}

// onnxruntime-node's addon loads in one thread per process, so this one worker serves every Runtime
// handle; each load names its own execution provider and thread count.
/** @type {Map<string, any>} */
const sessions = new Map();
/** @type {Map<string, any>} */
const slots = new Map();

/** @param {{ep: string, threads: number, deviceId: number, memArena?: boolean}} cfg */
function sessionOptions({ ep, threads, deviceId, memArena }) {
  /** @type {any} */
  const o = {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    // Off for sessions that should hand their buffers back after each run (layer offloading).
    enableCpuMemArena: memArena !== false,
    // Off: ORT's memory-pattern planner lays a training step's buffers out about twice as large as
    // their live peak (tiny UNet step, batch 8 at 32×32 latents: 1240 MiB with it, 615 MiB without;
    // no step-time difference measured), and memory is what limits which models train.
    enableMemPattern: false,
  };
  if (threads > 0) o.intraOpNumThreads = threads;
  if (ep === 'cpu') o.executionProviders = ['cpu'];
  else if (ep === 'webgpu') o.executionProviders = ['webgpu', 'cpu'];
  else if (ep === 'cuda') o.executionProviders = [{ name: 'cuda', deviceId }, 'cpu'];
  else throw new Error(`unknown execution provider '${ep}'`);
  return o;
}

/** @param {{dtype: string, shape: number[], data: any}} h */
function toOrt(h) {
  return new ort.Tensor(h.dtype, h.data, h.shape);
}

/** @param {any} t */
async function toHost(t, copy = false) {
  const onCpu = t.location === 'cpu' || t.location === undefined;
  // Replies transfer their buffers; a tensor that stays resident must hand out a copy.
  const data = onCpu ? (copy ? t.data.slice() : t.data) : await t.getData();
  return { dtype: t.type, shape: [...t.dims], data };
}

const handlers = {
  /** @param {{key: string, holder: number, bytes?: Uint8Array, path?: string, keep?: string[], ep: string, threads: number, deviceId: number, memArena?: boolean}} m */
  async load(m) {
    // Runtime handles with the same graph share one session; it is released when its last holder lets go.
    const known = sessions.get(m.key);
    if (known) {
      known.holders.add(m.holder);
      return { cached: true, inputs: known.session.inputNames, outputs: known.session.outputNames };
    }
    const opts = sessionOptions(m);
    // Outputs that go back into slots stay on the device with the WebGPU EP.
    if (m.ep !== 'cpu' && m.keep?.length) opts.preferredOutputLocation = Object.fromEntries(m.keep.map((n) => [n, 'gpu-buffer']));
    const s = await ort.InferenceSession.create(m.path ?? m.bytes, opts);
    sessions.set(m.key, { session: s, holders: new Set([m.holder]) });
    return { cached: false, inputs: s.inputNames, outputs: s.outputNames };
  },
  /** @param {{key: string, holder: number}} m */
  async release(m) {
    const known = sessions.get(m.key);
    if (!known) return {};
    known.holders.delete(m.holder);
    if (known.holders.size === 0) { sessions.delete(m.key); await known.session.release(); }
    return {};
  },
  /**
   * @param {{key: string, feeds: Record<string, any>, fetch: string[], store: Record<string, string>}} m
   * feeds: name → host tensor, or {slot} to feed a resident tensor. store: output name → slot name.
   */
  async run(m) {
    const s = sessions.get(m.key)?.session;
    if (!s) throw new Error(`no session loaded for ${m.key.slice(0, 12)}`);
    /** @type {Record<string, any>} */
    const feeds = {};
    for (const [name, v] of Object.entries(m.feeds)) {
      if (v && typeof v.slot === 'string') {
        const t = slots.get(v.slot);
        if (!t) throw new Error(`input '${name}': slot '${v.slot}' is empty`);
        feeds[name] = t;
      } else feeds[name] = toOrt(v);
    }
    const wanted = [...new Set([...m.fetch, ...Object.keys(m.store)])];
    const t0 = performance.now();
    const out = await s.run(feeds, wanted);
    const runMs = performance.now() - t0;
    /** @type {Record<string, any>} */
    const result = {};
    for (const name of m.fetch) result[name] = await toHost(out[name], name in m.store);
    const replaced = [];
    for (const [name, slot] of Object.entries(m.store)) {
      const prev = slots.get(slot);
      slots.set(slot, out[name]);
      if (prev && prev !== out[name]) replaced.push(prev);
    }
    // The run is over, so a replaced tensor is garbage unless another slot still holds it (GPU buffers
    // must be freed explicitly).
    const live = new Set(slots.values());
    for (const t of replaced) if (!live.has(t) && t.dispose) t.dispose();
    return { outputs: result, runMs };
  },
  /** @param {{slots: Record<string, any>}} m */
  async put(m) {
    for (const [slot, h] of Object.entries(m.slots)) slots.set(slot, toOrt(h));
    return {};
  },
  /** Dtype, shape and location of resident tensors. @param {{slots: string[]}} m */
  async meta(m) {
    /** @type {Record<string, any>} */
    const r = {};
    for (const slot of m.slots) {
      const t = slots.get(slot);
      if (!t) throw new Error(`slot '${slot}' is empty`);
      r[slot] = { dtype: t.type, shape: [...t.dims], location: t.location ?? 'cpu' };
    }
    return { slots: r };
  },
  /** @param {{slots: string[]}} m */
  async get(m) {
    /** @type {Record<string, any>} */
    const r = {};
    for (const slot of m.slots) {
      const t = slots.get(slot);
      if (!t) throw new Error(`slot '${slot}' is empty`);
      r[slot] = await toHost(t, true);
    }
    return { slots: r };
  },
  /** @param {{slots: string[]}} m */
  async drop(m) {
    for (const slot of m.slots) { const t = slots.get(slot); if (t?.dispose) t.dispose(); slots.delete(slot); }
    return {};
  },
  async info() {
    return { sessions: sessions.size, slots: slots.size, versions: ort.env.versions };
  },
};

parentPort?.on('message', async (msg) => {
  const { id, type } = msg;
  try {
    const h = /** @type {any} */ (handlers)[type];
    if (!h) throw new Error(`unknown message '${type}'`);
    const result = await h(msg);
    const transfer = [];
    for (const o of Object.values(result.outputs ?? result.slots ?? {})) {
      const buf = /** @type {any} */ (o).data?.buffer;
      if (buf instanceof ArrayBuffer && !transfer.includes(buf)) transfer.push(buf);
    }
    // Transferring output buffers avoids a copy; ORT's CPU outputs own their buffers.
    try { parentPort?.postMessage({ id, ok: true, result }, transfer); }
    catch { parentPort?.postMessage({ id, ok: true, result }); }
  } catch (e) {
    parentPort?.postMessage({ id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
