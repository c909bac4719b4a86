// `loragraph worker`: takes jobs from the Redis queue and runs them with the same executor as the server,
// publishing every execution event and preview for the server to pass on to the editors. One job at a time
// per worker. A worker that dies mid-job loses its BullMQ lock; after the stalled-job check the job goes back
// to the queue and another worker runs it again, where Train resumes from the checkpoints in the shared data
// folder.
import { hostname } from 'node:os';
import { DelayedError, Queue, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { NodeRegistry } from '../../nodes/registry';
import { Executor } from '../executor/executor';
import { LossTracker } from '../history';
import { ensureProjectFolders, type ProjectPaths } from '../paths';
import { encodePreviewFrame, type ExecutionEvent, type PreviewMime } from '../protocol';
import { validateGraph } from '../validate';
import {
  connectRedis,
  ControlMessage,
  decodeSigned,
  DEFAULT_PREFIX,
  describeRedisUrl,
  encodePreviewMessage,
  JobData,
  jobSignatureValid,
  keysOf,
  QUEUE_NAME,
  sign,
  tokenCheckOf,
  waitForRedis,
  type JobResult,
} from './wire';

export interface WorkerOptions {
  redisUrl: string;
  prefix?: string;
  registry: NodeRegistry;
  paths: ProjectPaths;
  /** The server's access token (LORAGRAPH_TOKEN); null when the server runs without one. */
  token: string | null;
  /** Shown in the editor's queue and history (default host-pid). */
  name?: string;
  /** BullMQ lock duration: how long a dead worker's job stays claimed (default 30 s). */
  lockMs?: number;
  /** How often this worker looks for stalled jobs of dead workers (default 30 s). */
  stalledCheckMs?: number;
  /** Times a job may be given back after its worker died before it fails (default 2). */
  maxStalls?: number;
  log?(message: string): void;
}

export interface RunningWorker {
  readonly name: string;
  /** Resolves with the reason when the worker stops by itself (the server's token changed). */
  readonly stopped: Promise<Error>;
  /** Stops taking jobs. A running job is left to the stalled-job check (another worker resumes it). */
  close(): Promise<void>;
}

export class TokenMismatchError extends Error {
  constructor() {
    super('this worker\'s token (LORAGRAPH_TOKEN) is not the server\'s; set LORAGRAPH_TOKEN to the token the server printed');
    this.name = 'TokenMismatchError';
  }
}

export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  const keys = keysOf(prefix);
  const name = opts.name ?? `${hostname()}-${process.pid}`;
  const log = opts.log ?? ((m: string) => console.error(m));
  const { token, registry, paths } = opts;
  await ensureProjectFolders(paths);

  const publisher = connectRedis(opts.redisUrl, `worker-${name}`);
  const subscriber = connectRedis(opts.redisUrl, `worker-${name}-control`);
  // For looking up other jobs (a sweep's shared job) only.
  const lookup = new Queue(QUEUE_NAME, { connection: publisher, prefix });
  const closeAll = () => Promise.allSettled([publisher.quit(), subscriber.quit()]);
  try {
    await waitForRedis(publisher, opts.redisUrl);
    await checkToken(publisher, keys.tokenCheck, token);
  } catch (err) {
    await lookup.close();
    await closeAll();
    throw err;
  }

  const executor = new Executor({ paths, logError: (m, e) => log(`${m} ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`) });
  const running = new Map<string, AbortController>();

  await subscriber.subscribe(keys.control);
  subscriber.on('message', (_channel, message) => {
    const parsed = ControlMessage.safeParse(decodeSigned(token, message));
    if (!parsed.success) return;
    for (const [promptId, controller] of running) {
      if (!parsed.data.promptId || parsed.data.promptId === promptId) controller.abort(parsed.data.reason);
    }
  });

  const publish = (event: ExecutionEvent) => {
    const text = JSON.stringify(event);
    publisher.publish(keys.events, JSON.stringify({ worker: name, event: text, signature: sign(token, `${name}\n${text}`) })).catch(() => {});
  };
  const preview = (node: string, mime: PreviewMime, data: Uint8Array) => {
    publisher.publish(keys.previews, encodePreviewMessage(token, encodePreviewFrame(node, mime, data))).catch(() => {});
  };

  const processor = async (job: Job, lockToken?: string): Promise<JobResult> => {
    const parsed = JobData.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`job ${job.id} is not a loragraph job: ${parsed.error.issues[0]?.message}`);
    const data = parsed.data;
    if (!jobSignatureValid(token, data)) {
      if ((await publisher.get(keys.tokenCheck)) !== tokenCheckOf(token)) {
        // The server holds another token now (restarted without LORAGRAPH_TOKEN?): the job is fine, this worker is
        // not. Give the job back for workers that have the token, and stop.
        await job.moveToWait(lockToken);
        stopBecause(new TokenMismatchError());
        throw new WaitingError();
      }
      throw new UnrecoverableError(`job ${data.promptId} was not signed with this server's token; not running it`);
    }
    // A sweep variant whose shared job has not finished steps aside (delayed a moment) instead of holding this
    // worker: the shared job may be waiting for a free worker itself.
    if (data.after && !(await finished(lookup, data.after))) {
      await job.moveToDelayed(Date.now() + 500, lockToken);
      throw new DelayedError();
    }
    const controller = new AbortController();
    running.set(data.promptId, controller);
    try {
      const startedAt = Date.now();
      const done = (r: Omit<JobResult, 'worker' | 'startedAt' | 'endedAt'>): JobResult => ({ ...r, worker: name, startedAt, endedAt: Date.now() });
      // Validate where the job runs: node files and data folders may differ from the server's.
      const v = validateGraph(data.prompt, registry, { paths });
      if (!v.ok) {
        const error = { node: null, nodeType: null, message: `on worker ${name}: ${v.error.message}`, inputs: {} };
        publish({ type: 'execution_start', data: { promptId: data.promptId, timestamp: Date.now() } });
        publish({ type: 'execution_error', data: { promptId: data.promptId, ...error } });
        publish({ type: 'executing', data: { promptId: data.promptId, node: null } });
        return done({ status: 'error', executed: [], cached: [], outputs: {}, error });
      }
      log(`loragraph worker ${name}: running job #${data.number} (${data.promptId})`);
      const loss = new LossTracker();
      const emit = (e: ExecutionEvent) => {
        loss.see(e);
        publish(e);
      };
      const result = await executor.run(v.graph, { promptId: data.promptId, signal: controller.signal, emit, preview, workflow: data.workflow ?? data.prompt });
      const reason = controller.signal.reason;
      const finalLoss = loss.final(result.outputs);
      return done({
        ...(finalLoss !== undefined ? { finalLoss } : {}),
        status: result.status,
        executed: result.executed,
        cached: result.cached,
        outputs: result.outputs,
        ...(result.error ? { error: result.error } : {}),
        ...(result.status === 'interrupted' ? { reason: typeof reason === 'string' ? reason : 'interrupted' } : {}),
      });
    } finally {
      running.delete(data.promptId);
    }
  };

  const worker = new Worker(QUEUE_NAME, processor, {
    connection: publisher.duplicate(),
    prefix,
    name,
    concurrency: 1,
    lockDuration: opts.lockMs ?? 30_000,
    stalledInterval: opts.stalledCheckMs ?? 30_000,
    maxStalledCount: opts.maxStalls ?? 2,
    // Finished jobs stay until the server has written them to its history (it removes them then).
    removeOnComplete: { count: 10_000 },
    removeOnFail: { count: 10_000 },
  });
  worker.on('error', (err) => log(`loragraph worker ${name}: ${err.message}`));
  await worker.waitUntilReady();
  log(`loragraph worker ${name}: taking jobs from ${describeRedisUrl(opts.redisUrl)} (data in ${paths.dataDir})`);

  let closing: Promise<void> | undefined;
  let stopBecause: (reason: Error) => void = () => {};
  const stopped = new Promise<Error>((resolve) => {
    stopBecause = (reason) => {
      log(`loragraph worker ${name}: ${reason.message}; stopping`);
      resolve(reason);
      void handle.close();
    };
  });
  const handle: RunningWorker = {
    name,
    stopped,
    close() {
      closing ??= (async () => {
        // force: do not wait for the running job; its lock lapses and the stalled-job check gives it to another worker.
        await worker.close(true);
        await lookup.close();
        await closeAll();
      })();
      return closing;
    },
  };
  return handle;
}

/** Fails fast when the server stored a token check that this worker's token does not match. */
async function checkToken(redis: Redis, key: string, token: string | null): Promise<void> {
  const stored = await redis.get(key);
  if (stored !== null && stored !== tokenCheckOf(token)) throw new TokenMismatchError();
}

/** Whether a job is finished (completed, failed, or already written to history and removed). */
async function finished(queue: Queue, id: string): Promise<boolean> {
  const job = await queue.getJob(id);
  if (!job) return true;
  const state = await job.getState();
  return state === 'completed' || state === 'failed' || state === 'unknown';
}
