// The server's side of the Redis queue (`loragraph serve --redis URL`): puts jobs on a BullMQ queue for
// `loragraph worker` processes, passes the workers' live events and previews on to the editors, mirrors the
// queue for snapshots, and writes each finished job to history (then removes it from Redis, so history stays
// the one record). Jobs live in Redis, not in this process: a server restart interrupts nothing.
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { finalLoss, type HistoryStore } from '../history';
import { decodePreviewFrame, ServerMessage, type ExecutionEvent, type HistoryEntry, type JobSummary, type PreviewMime, type QueueSnapshot } from '../protocol';
import type { EnqueueInput, Job, JobQueue } from '../queue';
import {
  connectRedis,
  decodePreviewMessage,
  DEFAULT_PREFIX,
  encodeSigned,
  JobData,
  JobResult,
  keysOf,
  LiveEnvelope,
  QUEUE_NAME,
  safeJson,
  signJob,
  tokenCheckOf,
  verify,
  waitForRedis,
  type ControlMessage,
} from './wire';

export interface RedisQueueOptions {
  redisUrl: string;
  prefix?: string;
  /** The server's access token; workers must hold the same one. */
  token: string | null;
  history: HistoryStore;
  onEvent(event: ExecutionEvent): void;
  onPreview(node: string, mime: PreviewMime, data: Uint8Array): void;
  onChange(): void;
  log(message: string): void;
}

// A safety net beside BullMQ's events: finished jobs are collected and the mirror refreshed at least this often.
const SWEEP_MS = 2000;

export class RedisJobQueue implements JobQueue {
  private readonly prefix: string;
  private readonly keys: ReturnType<typeof keysOf>;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private mirror: QueueSnapshot = { running: [], pending: [] };
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private collecting: Promise<void> | undefined;
  private collectAgain = false;
  private closed = false;
  private readonly rejectedWorkers = new Set<string>();

  constructor(private readonly opts: RedisQueueOptions) {
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.keys = keysOf(this.prefix);
    this.redis = connectRedis(opts.redisUrl, 'server');
    this.subscriber = connectRedis(opts.redisUrl, 'server-live');
    this.queue = new Queue(QUEUE_NAME, { connection: this.redis, prefix: this.prefix });
    this.events = new QueueEvents(QUEUE_NAME, { connection: this.redis.duplicate(), prefix: this.prefix });
    for (const r of [this.redis, this.subscriber]) r.on('error', () => {}); // ioredis reconnects by itself; errors are logged once below
    this.redis.on('reconnecting', () => opts.log('loragraph: Redis connection lost; reconnecting…'));
    this.redis.on('ready', () => {
      if (this.closed) return;
      // After a Redis restart: say again which token workers must hold, and catch up on what finished meanwhile.
      void this.redis.set(this.keys.tokenCheck, tokenCheckOf(opts.token)).catch(() => {});
      this.kick();
    });
  }

  async start(): Promise<void> {
    await waitForRedis(this.redis, this.opts.redisUrl);
    await this.queue.waitUntilReady();
    await this.redis.set(this.keys.tokenCheck, tokenCheckOf(this.opts.token));
    await this.subscriber.subscribe(this.keys.events, this.keys.previews);
    this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onLive(channel.toString(), message));
    for (const e of ['added', 'waiting', 'active', 'delayed', 'removed', 'stalled', 'drained'] as const) this.events.on(e, () => this.refresh());
    this.events.on('completed', () => this.kick());
    this.events.on('failed', () => this.kick());
    this.events.on('stalled', ({ jobId }) => this.opts.log(`loragraph: job ${jobId}'s worker stopped answering; the job goes back to the queue`));
    this.events.on('error', () => {});
    await this.events.waitUntilReady();
    this.timer = setInterval(() => this.kick(), SWEEP_MS);
    this.kick();
  }

  async enqueue(inputs: EnqueueInput[]): Promise<Job[]> {
    if (inputs.length === 0) return [];
    const last = await this.redis.incrby(this.keys.nextNumber, inputs.length);
    const createdAt = Date.now();
    const shared = inputs.find((i) => i.sweep?.shared);
    const ids = inputs.map(() => randomUUID());
    const sharedId = shared ? ids[inputs.indexOf(shared)] : undefined;
    const jobs: Job[] = inputs.map((input, i) => ({
      promptId: ids[i]!,
      number: last - inputs.length + 1 + i,
      prompt: input.prompt,
      createdAt,
      ...(input.workflow !== undefined ? { workflow: input.workflow } : {}),
      ...(input.clientId ? { clientId: input.clientId } : {}),
      ...(input.sweep ? { sweep: input.sweep } : {}),
    }));
    const front = inputs[0]?.front === true;
    // LIFO adds put each job first: add in reverse so the batch keeps its order at the front.
    const order = front ? [...jobs].reverse() : jobs;
    for (const job of order) {
      const after = sharedId && job.promptId !== sharedId ? sharedId : undefined;
      const data = signJob(this.opts.token, { ...job, ...(after ? { after } : {}) });
      // One attempt: a job that fails is reported with its error, never retried; a worker that dies is handled by
      // BullMQ's stalled-job check (maxStalledCount on the workers).
      await this.queue.add('graph', data, { jobId: job.promptId, attempts: 1, lifo: front, removeOnComplete: false, removeOnFail: false });
    }
    this.refresh();
    return jobs;
  }

  snapshot(): QueueSnapshot {
    return structuredClone(this.mirror);
  }

  runningId(): string | null {
    return this.mirror.running[0]?.promptId ?? null;
  }

  async delete(ids: string[]): Promise<string[]> {
    const removed: string[] = [];
    for (const id of ids) {
      const job = await this.queue.getJob(id);
      if (!job) continue;
      const state = await job.getState();
      if (state === 'waiting' || state === 'prioritized' || state === 'delayed' || state === 'waiting-children') {
        await job.remove();
        removed.push(id);
      }
    }
    if (removed.length) this.refresh();
    return removed;
  }

  async clear(): Promise<void> {
    await this.queue.drain(true);
    this.refresh();
  }

  async interrupt(promptId?: string, reason = 'interrupted by the user'): Promise<boolean> {
    const running = this.mirror.running.map((j) => j.promptId);
    if (promptId ? !running.includes(promptId) : running.length === 0) return false;
    const message: ControlMessage = { type: 'interrupt', reason, ...(promptId ? { promptId } : {}) };
    await this.redis.publish(this.keys.control, encodeSigned(this.opts.token, message));
    return true;
  }

  /** Lets go of Redis. Jobs keep running on the workers; a restarted server picks up their results. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await Promise.allSettled([this.refreshing, this.collecting]);
    await this.events.close().catch(() => {});
    await this.queue.close().catch(() => {});
    this.subscriber.disconnect();
    this.redis.disconnect();
  }

  async idle(): Promise<void> {
    for (;;) {
      const counts = await this.queue.getJobCounts('waiting', 'active', 'prioritized', 'delayed', 'completed', 'failed');
      if (Object.values(counts).every((n) => n === 0)) return;
      this.kick();
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // ---- live events from the workers ----------------------------------------------------------------------

  private onLive(channel: string, message: Buffer): void {
    if (channel === this.keys.previews) {
      const frame = decodePreviewMessage(this.opts.token, message);
      if (!frame) return this.reject('a preview');
      try {
        const p = decodePreviewFrame(frame);
        this.opts.onPreview(p.node, p.mime, p.image);
      } catch {
        /* a malformed frame is dropped */
      }
      return;
    }
    const envelope = LiveEnvelope.safeParse(safeJson(message.toString('utf8')));
    if (!envelope.success) return;
    const { worker, event, signature } = envelope.data;
    if (!verify(this.opts.token, `${worker}\n${event}`, signature)) return this.reject(`worker ${worker}`);
    const parsed = ServerMessage.safeParse(safeJson(event));
    if (!parsed.success || parsed.data.type === 'status' || parsed.data.type === 'error' || parsed.data.type === 'pong') return;
    const e = parsed.data as ExecutionEvent;
    if (e.type === 'execution_start') this.markRunning(e.data.promptId, worker);
    this.opts.onEvent(e);
  }

  private reject(who: string): void {
    if (this.rejectedWorkers.has(who)) return;
    this.rejectedWorkers.add(who);
    this.opts.log(`loragraph: ignoring live events from ${who}: not signed with this server's token`);
  }

  /** Shows the worker on the running job at once, before the next refresh reads it from Redis. */
  private markRunning(promptId: string, worker: string): void {
    const pending = this.mirror.pending.find((j) => j.promptId === promptId);
    const running = this.mirror.running.find((j) => j.promptId === promptId);
    if (running) running.worker = worker;
    else if (pending) {
      this.mirror.pending = this.mirror.pending.filter((j) => j !== pending);
      this.mirror.running.push({ ...pending, worker });
    }
    this.opts.onChange();
  }

  // ---- mirror and history ----------------------------------------------------------------------------------

  private kick(): void {
    this.refresh();
    this.collect();
  }

  /** Reads the waiting and active jobs into the mirror that snapshot() returns; one read at a time. */
  private refresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          const [active, waiting] = await Promise.all([
            this.queue.getJobs(['active'], 0, -1, true),
            // Delayed: sweep variants waiting for their shared job.
            this.queue.getJobs(['waiting', 'prioritized', 'delayed'], 0, -1, true),
          ]);
          const next: QueueSnapshot = { running: active.map(summaryOf).filter(isSome), pending: waiting.map(summaryOf).filter(isSome) };
          if (JSON.stringify(next) !== JSON.stringify(this.mirror)) {
            this.mirror = next;
            this.opts.onChange();
          }
        } while (this.refreshAgain && !this.closed);
      } catch {
        /* Redis is away; the next event or sweep tries again */
      } finally {
        this.refreshing = undefined;
      }
    })();
  }

  /** Writes finished jobs to history and removes them from Redis; one pass at a time. */
  private collect(): void {
    if (this.closed) return;
    if (this.collecting) {
      this.collectAgain = true;
      return;
    }
    this.collecting = (async () => {
      try {
        do {
          this.collectAgain = false;
          const [completed, failed] = await Promise.all([this.queue.getJobs(['completed'], 0, 99, true), this.queue.getJobs(['failed'], 0, 99, true)]);
          for (const job of completed) await this.record(job, true);
          for (const job of failed) await this.record(job, false);
          if (completed.length === 100 || failed.length === 100) this.collectAgain = true;
        } while (this.collectAgain && !this.closed);
      } catch {
        /* Redis is away; the next event or sweep tries again */
      } finally {
        this.collecting = undefined;
      }
    })();
  }

  private async record(job: BullJob, completed: boolean): Promise<void> {
    const data = JobData.safeParse(job.data);
    if (!data.success) {
      await job.remove();
      return;
    }
    const d = data.data;
    const result = JobResult.safeParse(job.returnvalue);
    const base = {
      promptId: d.promptId,
      number: d.number,
      prompt: d.prompt,
      ...(d.workflow !== undefined ? { workflow: d.workflow } : {}),
      createdAt: d.createdAt,
      ...(d.sweep ? { sweep: d.sweep } : {}),
    };
    let entry: HistoryEntry;
    if (completed && result.success) {
      const r = result.data;
      const loss = r.finalLoss ?? finalLoss(r.outputs);
      entry = {
        ...base,
        status: r.status,
        startedAt: r.startedAt,
        endedAt: r.endedAt,
        outputs: r.outputs,
        executed: r.executed,
        cached: r.cached,
        worker: r.worker,
        ...(r.error ? { error: r.error } : {}),
        ...(r.reason ? { reason: r.reason } : {}),
        ...(loss !== undefined ? { finalLoss: loss } : {}),
      };
    } else {
      // Failed outside the executor (its errors come back as results): a forged job, or a worker that died too often.
      const message = job.failedReason || 'the job ended without a result';
      const error = { node: null, nodeType: null, message, inputs: {} };
      entry = {
        ...base,
        status: 'error',
        startedAt: job.processedOn ?? null,
        endedAt: job.finishedOn ?? Date.now(),
        outputs: {},
        executed: [],
        cached: [],
        error,
        ...(job.processedBy ? { worker: job.processedBy } : {}),
      };
      // The worker may be gone: tell the editors the job ended, so nobody waits for it.
      this.opts.onEvent({ type: 'execution_error', data: { promptId: d.promptId, ...error } });
      this.opts.onEvent({ type: 'executing', data: { promptId: d.promptId, node: null } });
    }
    this.opts.history.add(entry);
    await job.remove();
    this.refresh();
    this.opts.onChange();
  }
}

function summaryOf(job: BullJob): JobSummary | undefined {
  const parsed = JobData.safeParse(job.data);
  if (!parsed.success) return undefined;
  const d = parsed.data;
  return {
    promptId: d.promptId,
    number: d.number,
    createdAt: d.createdAt,
    nodeCount: Object.keys(d.prompt).length,
    ...(d.clientId ? { clientId: d.clientId } : {}),
    ...(job.processedBy ? { worker: job.processedBy } : {}),
    ...(d.sweep ? { sweep: d.sweep } : {}),
  };
}

const isSome = <T>(v: T | undefined): v is T => v !== undefined;
