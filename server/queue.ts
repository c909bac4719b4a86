// The job queue as the server and its routes see it (JobQueue), and the embedded default behind it: the
// in-process queue. Jobs belong to the server (not to a socket), run one at a time, can be put first, cancelled
// while queued or interrupted while running. Pending and running jobs are kept on disk (state/queue.json); a job
// found running at start-up was cut off by a crash and goes to history as interrupted. The Redis queue
// (server/redis/serverQueue.ts) implements the same interface with workers on other processes and machines.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { NodeRegistry } from '../nodes/registry';
import { readJson, writeJsonAtomic } from './atomicJson';
import type { Executor, RunResult } from './executor/executor';
import type { HistoryStore } from './history';
import { LossTracker } from './history';
import { ApiGraph, type ExecutionEvent, type JobSummary, type PreviewMime, type QueueSnapshot, type SweepInfo } from './protocol';
import { validateGraph } from './validate';
import type { ProjectPaths } from './paths';

export interface Job {
  promptId: string;
  number: number;
  prompt: ApiGraph;
  workflow?: unknown;
  clientId?: string;
  createdAt: number;
  sweep?: SweepInfo;
}

export interface EnqueueInput {
  prompt: ApiGraph;
  workflow?: unknown;
  clientId?: string;
  front?: boolean;
  sweep?: SweepInfo;
}

/** What the server and its routes need from a queue; the in-process and the Redis queue both provide it. */
export interface JobQueue {
  /** Starts working through the queue (call once the server is ready to broadcast). */
  start(): Promise<void>;
  /** Adds jobs in order (one, or a sweep's jobs); with `front`, the first of them runs next. */
  enqueue(inputs: EnqueueInput[]): Promise<Job[]>;
  snapshot(): QueueSnapshot;
  /** The running job (the first, when several workers run jobs). */
  runningId(): string | null;
  /** Removes queued jobs (a running job is interrupted instead). Returns the ids removed. */
  delete(ids: string[]): Promise<string[]>;
  clear(): Promise<void>;
  /** Interrupts the running job with this id, or every running job without one. */
  interrupt(promptId?: string, reason?: string): Promise<boolean>;
  /** Interrupts (in-process) or lets go of (Redis) running jobs and stops taking new ones. */
  stop(): Promise<void>;
  /** Resolves when nothing is running or queued (for tests and the CLI). */
  idle(): Promise<void>;
}

interface QueueFile {
  nextNumber: number;
  running: Job | null;
  pending: Job[];
}

export interface QueueOptions {
  stateDir: string;
  /** Project folders, for checking path widgets when a job starts. */
  paths?: ProjectPaths;
  registry: NodeRegistry;
  executor: Executor;
  history: HistoryStore;
  onEvent(event: ExecutionEvent): void;
  onPreview(node: string, mime: PreviewMime, data: Uint8Array): void;
  /** The queue changed (job added, started, finished, removed). */
  onChange(): void;
}

export const summary = (job: Job): JobSummary => ({
  promptId: job.promptId,
  number: job.number,
  createdAt: job.createdAt,
  nodeCount: Object.keys(job.prompt).length,
  ...(job.clientId ? { clientId: job.clientId } : {}),
  ...(job.sweep ? { sweep: job.sweep } : {}),
});

export class InProcessQueue implements JobQueue {
  private pending: Job[] = [];
  private running: { job: Job; controller: AbortController; done: Promise<void>; startedAt: number } | null = null;
  private nextNumber = 1;
  private readonly file: string;
  private stopped = false;

  constructor(private readonly opts: QueueOptions) {
    this.file = join(opts.stateDir, 'queue.json');
    const saved = readJson<QueueFile>(this.file, { nextNumber: 1, running: null, pending: [] });
    this.nextNumber = Number.isInteger(saved.nextNumber) ? saved.nextNumber : 1;
    this.pending = (Array.isArray(saved.pending) ? saved.pending : []).filter((j) => j && typeof j.promptId === 'string' && ApiGraph.safeParse(j.prompt).success);
    if (saved.running && typeof saved.running.promptId === 'string') {
      const job = saved.running;
      opts.history.add({
        promptId: job.promptId,
        number: job.number,
        prompt: job.prompt,
        ...(job.workflow !== undefined ? { workflow: job.workflow } : {}),
        status: 'interrupted',
        reason: 'the server stopped while this job was running',
        createdAt: job.createdAt,
        startedAt: null,
        endedAt: Date.now(),
        outputs: {},
        executed: [],
        cached: [],
      });
    }
    this.save();
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.kick();
  }

  async enqueue(inputs: EnqueueInput[]): Promise<Job[]> {
    const jobs = inputs.map((input): Job => ({
      promptId: randomUUID(),
      number: this.nextNumber++,
      prompt: input.prompt,
      createdAt: Date.now(),
      ...(input.workflow !== undefined ? { workflow: input.workflow } : {}),
      ...(input.clientId ? { clientId: input.clientId } : {}),
      ...(input.sweep ? { sweep: input.sweep } : {}),
    }));
    if (inputs[0]?.front) this.pending.unshift(...jobs);
    else this.pending.push(...jobs);
    this.save();
    this.opts.onChange();
    this.kick();
    return jobs;
  }

  snapshot(): QueueSnapshot {
    return { running: this.running ? [summary(this.running.job)] : [], pending: this.pending.map(summary) };
  }

  runningId(): string | null {
    return this.running?.job.promptId ?? null;
  }

  async delete(ids: string[]): Promise<string[]> {
    const set = new Set(ids);
    const removed = this.pending.filter((j) => set.has(j.promptId)).map((j) => j.promptId);
    this.pending = this.pending.filter((j) => !set.has(j.promptId));
    if (removed.length) {
      this.save();
      this.opts.onChange();
    }
    return removed;
  }

  async clear(): Promise<void> {
    this.pending = [];
    this.save();
    this.opts.onChange();
  }

  async interrupt(promptId?: string, reason = 'interrupted by the user'): Promise<boolean> {
    if (!this.running || (promptId && this.running.job.promptId !== promptId)) return false;
    this.running.controller.abort(reason);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const r = this.running;
    if (r) {
      r.controller.abort('the server stopped');
      await r.done;
    }
  }

  async idle(): Promise<void> {
    while (this.running) await this.running.done;
  }

  private kick(): void {
    if (this.running || this.stopped || this.pending.length === 0) return;
    const job = this.pending.shift()!;
    const controller = new AbortController();
    const startedAt = Date.now();
    const slot = { job, controller, startedAt, done: Promise.resolve() };
    this.running = slot;
    this.save();
    this.opts.onChange();
    const loss = new LossTracker();
    slot.done = this.execute(job, controller.signal, loss)
      .then((result) => this.finish(job, startedAt, result, loss.final(result.outputs)))
      .catch((err) => {
        console.error(`job ${job.promptId} failed outside any node:`, err);
        this.finish(job, startedAt, {
          status: 'error',
          executed: [],
          cached: [],
          outputs: {},
          error: { node: null, nodeType: null, message: 'internal error while running the job', inputs: {} },
        });
      })
      .finally(() => {
        this.running = null;
        this.save();
        this.opts.onChange();
        this.kick();
      });
  }

  private async execute(job: Job, signal: AbortSignal, loss: LossTracker): Promise<RunResult> {
    // Jobs may have waited through a restart or a change of node files: validate at the moment they run.
    const v = validateGraph(job.prompt, this.opts.registry, { paths: this.opts.paths });
    if (!v.ok) {
      const error = { node: null, nodeType: null, message: v.error.message, inputs: {} };
      this.opts.onEvent({ type: 'execution_error', data: { promptId: job.promptId, ...error } });
      return { status: 'error', executed: [], cached: [], outputs: {}, error };
    }
    return this.opts.executor.run(v.graph, {
      promptId: job.promptId,
      signal,
      emit: (e) => {
        loss.see(e);
        this.opts.onEvent(e);
      },
      preview: this.opts.onPreview,
      workflow: job.workflow ?? job.prompt,
    });
  }

  private finish(job: Job, startedAt: number, result: RunResult, finalLoss?: number): void {
    this.opts.history.add({
      promptId: job.promptId,
      number: job.number,
      prompt: job.prompt,
      ...(job.workflow !== undefined ? { workflow: job.workflow } : {}),
      status: result.status,
      createdAt: job.createdAt,
      startedAt,
      endedAt: Date.now(),
      outputs: result.outputs,
      executed: result.executed,
      cached: result.cached,
      ...(result.error ? { error: result.error } : {}),
      ...(job.sweep ? { sweep: job.sweep } : {}),
      ...(finalLoss !== undefined ? { finalLoss } : {}),
      ...(result.status === 'interrupted' ? { reason: this.running?.controller.signal.reason?.toString() ?? 'interrupted' } : {}),
    });
  }

  private save(): void {
    const data: QueueFile = { nextNumber: this.nextNumber, running: this.running?.job ?? null, pending: this.pending };
    writeJsonAtomic(this.file, data);
  }
}
