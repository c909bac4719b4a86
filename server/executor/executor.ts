// Runs a validated graph: plans what must execute (cache keys), executes node by node, keeps results in the
// cache, and reports every step as protocol events. Used by the server's queue and by the headless CLI alike.
import { join } from 'node:path';
import { InterruptedError } from '../../nodes/define';
import { ensureProjectFolders, resolveProjectPath, type ProjectPaths } from '../paths';
import type { ExecutionErrorInfo, ExecutionEvent, PreviewMime, UiOutput } from '../protocol';
import type { ValidGraph, ValidNode } from '../validate';
import { computeCacheKeys, computeFingerprints } from './cacheKey';
import { setExternalDataRoot } from '../../kernels/compile';
import { createNodeContext } from './context';
import { freezePlain } from './freeze';
import { MemoryCache, type CachedResult } from './memoryCache';
import { planRun, topologicalOrder } from './order';

export interface RunHooks {
  promptId: string;
  signal: AbortSignal;
  emit(event: ExecutionEvent): void;
  preview?(node: string, mime: PreviewMime, data: Uint8Array): void;
  /** The graph as submitted (workflow or API form), handed to nodes as ctx.workflow. */
  workflow?: unknown;
}

export interface RunResult {
  status: 'success' | 'error' | 'interrupted';
  executed: string[];
  cached: string[];
  /** ui output per node: executed ones and cached output nodes. */
  outputs: Record<string, UiOutput>;
  error?: ExecutionErrorInfo;
  /** Node that was running when the job was interrupted. */
  interruptedAt?: string | null;
}

export interface ExecutorOptions {
  paths: ProjectPaths;
  /** Memory budget for cached node outputs (default 2 GiB). */
  cacheBytes?: number;
  /** Where full errors (with stacks) go; clients only ever get the message. */
  logError?(message: string, err: unknown): void;
}

export class Executor {
  readonly cache: MemoryCache;
  private readonly paths: ProjectPaths;
  private readonly logError: (message: string, err: unknown) => void;
  private foldersReady: Promise<void> | undefined;

  constructor(opts: ExecutorOptions) {
    this.cache = new MemoryCache(opts.cacheBytes ?? 2 * 1024 ** 3);
    this.paths = opts.paths;
    // Graphs over big checkpoints are written beside the data (same filesystem: weights hard-linked).
    setExternalDataRoot(join(opts.paths.cache, 'onnx'));
    this.logError = opts.logError ?? ((m, e) => console.error(m, e));
  }

  async run(graph: ValidGraph, hooks: RunHooks): Promise<RunResult> {
    const { promptId, signal, emit } = hooks;
    // Nodes write into the project folders; make sure they exist once per executor.
    await (this.foldersReady ??= ensureProjectFolders(this.paths));
    const fingerprints = await computeFingerprints(graph, (kind, p) => resolveProjectPath(this.paths, kind, p));
    const keys = computeCacheKeys(graph, topologicalOrder(graph), fingerprints);
    const plan = planRun(graph, (id) => this.cache.has(keys.get(id)!));
    const result: RunResult = { status: 'success', executed: [], cached: plan.cached, outputs: {} };

    // Take the cached values this run reads now, so evictions caused by this run cannot take them away.
    const values = new Map<string, readonly unknown[]>();
    for (const id of plan.feedsExecution) values.set(id, this.cache.get(keys.get(id)!)!.outputs);
    // How many executing nodes still read each node's values; at zero the run lets go of them.
    const readers = new Map<string, number>();
    for (const id of plan.execute) for (const s of graph.nodes.get(id)!.sources) readers.set(s, (readers.get(s) ?? 0) + 1);

    emit({ type: 'execution_start', data: { promptId, timestamp: Date.now() } });
    emit({ type: 'execution_cached', data: { promptId, nodes: plan.cached } });
    for (const id of plan.cachedOutputs) {
      const ui = this.cache.get(keys.get(id)!)?.ui;
      if (ui) {
        result.outputs[id] = ui;
        emit({ type: 'executed', data: { promptId, node: id, output: ui, cached: true } });
      }
    }

    let current: ValidNode | null = null;
    try {
      for (const id of plan.execute) {
        if (signal.aborted) throw new InterruptedError();
        const node = graph.nodes.get(id)!;
        current = node;
        emit({ type: 'executing', data: { promptId, node: id } });
        const key = keys.get(id)!;
        const ctx = createNodeContext({
          nodeId: id,
          nodeType: node.def.type,
          promptId,
          cacheKey: key,
          paths: this.paths,
          signal,
          workflow: hooks.workflow,
          hooks: {
            onProgress: (p) => emit({ type: 'progress', data: p }),
            onWarning: (message) => emit({ type: 'warning', data: { promptId, node: id, message } }),
            onPreview: (mime, data) => hooks.preview?.(id, mime, data),
          },
        });
        const ret = await node.def.execute({ inputs: gatherInputs(node, values), widgets: node.widgets, ctx });
        const outputs = node.def.outputNames.map((name) => {
          if (!ret || typeof ret !== 'object' || !ret.outputs || !(name in ret.outputs)) {
            throw new Error(`${node.def.type}.execute returned no value for its output "${name}"`);
          }
          return freezePlain((ret.outputs as Record<string, unknown>)[name]);
        });
        const cached: CachedResult = { outputs: Object.freeze(outputs), ...(ret.ui ? { ui: freezePlain(ret.ui) } : {}) };
        this.cache.set(key, cached);
        values.set(id, cached.outputs);
        result.executed.push(id);
        for (const s of node.sources) {
          const left = readers.get(s)! - 1;
          readers.set(s, left);
          if (left === 0) values.delete(s);
        }
        if (ret.ui) {
          result.outputs[id] = ret.ui;
          emit({ type: 'executed', data: { promptId, node: id, output: ret.ui, cached: false } });
        }
        current = null;
      }
      emit({ type: 'execution_success', data: { promptId, timestamp: Date.now() } });
    } catch (err) {
      if (err instanceof InterruptedError || signal.aborted) {
        result.status = 'interrupted';
        result.interruptedAt = current?.id ?? null;
        const reason = signal.reason instanceof Error ? signal.reason.message : typeof signal.reason === 'string' ? signal.reason : 'interrupted';
        emit({
          type: 'execution_interrupted',
          data: { promptId, node: current?.id ?? null, nodeType: current?.def.type ?? null, reason },
        });
      } else {
        result.status = 'error';
        const message = err instanceof Error ? err.message : String(err);
        this.logError(`node ${current?.id} (${current?.def.type}) failed:`, err);
        result.error = {
          node: current?.id ?? null,
          nodeType: current?.def.type ?? null,
          message,
          inputs: current ? describeInputs(current, graph) : {},
        };
        emit({ type: 'execution_error', data: { promptId, ...result.error } });
      }
    }
    emit({ type: 'executing', data: { promptId, node: null } });
    return result;
  }
}

function gatherInputs(node: ValidNode, values: Map<string, readonly unknown[]>): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  const read = (l: { node: string; output: number }) => values.get(l.node)![l.output];
  for (const name of Object.keys(node.def.inputs)) {
    const link = node.links[name];
    if (link === undefined) inputs[name] = node.def.inputs[name]!.list ? Object.freeze([]) : undefined;
    else inputs[name] = Array.isArray(link) ? Object.freeze(link.map(read)) : read(link);
  }
  return inputs;
}

/** What the failing node was given, for the error message: its widget values and where each input came from. */
function describeInputs(node: ValidNode, graph: ValidGraph): Record<string, unknown> {
  const out: Record<string, unknown> = { ...node.widgets };
  const from = (l: { node: string; output: number }) => {
    const src = graph.nodes.get(l.node);
    return `node ${l.node} (${src?.def.type}) output "${src?.def.outputNames[l.output]}"`;
  };
  for (const [name, link] of Object.entries(node.links)) out[name] = Array.isArray(link) ? link.map(from) : from(link);
  return out;
}
