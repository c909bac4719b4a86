// What the server and its workers agree on when jobs go through Redis: the BullMQ queue's name, the keys and
// pub/sub channels beside it, the shapes of a job and its result, and the signatures (HMAC with the server's
// access token) that let a worker trust a job and the server trust a worker's live events.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { canonicalJson } from '../executor/cacheKey';
import { ApiGraph, ExecutionErrorInfo, JobStatus, SweepInfo, UiOutput } from '../protocol';

/** The BullMQ queue every server and worker of one deployment shares. */
export const QUEUE_NAME = 'jobs';
/** BullMQ's key prefix; keys are `<prefix>:jobs:*`, our own keys `<prefix>:live:*`. */
export const DEFAULT_PREFIX = 'loragraph';

export const keysOf = (prefix: string) => ({
  events: `${prefix}:live:events`,
  previews: `${prefix}:live:previews`,
  control: `${prefix}:live:control`,
  nextNumber: `${prefix}:live:next-number`,
  tokenCheck: `${prefix}:live:token-check`,
});

/** A Redis connection that retries forever (BullMQ's blocking commands need that) and waits out restarts. */
export function connectRedis(url: string, role: string): Redis {
  if (!/^rediss?:\/\//.test(url)) throw new Error(`--redis ${describeRedisUrl(url)}: expected redis://[:password@]host:port[/db] or rediss://…`);
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    connectionName: `loragraph-${role}`,
    // Reconnect quickly after a Redis restart; never give up.
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
  });
  // Connection errors are followed by reconnects; waitForRedis and the 'reconnecting' log say what matters.
  redis.on('error', () => {});
  return redis;
}

/** Resolves once the connection is ready; after `timeoutMs` fails with what went wrong (refused, wrong password). */
export function waitForRedis(redis: Redis, url: string, timeoutMs = 15_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError = '';
    const onError = (err: Error) => (lastError = err.message);
    const onReady = () => done();
    const timer = setTimeout(() => done(new Error(`cannot reach Redis at ${describeRedisUrl(url)}${lastError ? `: ${lastError}` : ''} (is it running, and is the password in the URL right?)`)), timeoutMs);
    function done(err?: Error) {
      clearTimeout(timer);
      redis.off('error', onError);
      redis.off('ready', onReady);
      if (err) reject(err);
      else resolve();
    }
    redis.on('error', onError);
    redis.on('ready', onReady);
  });
}

/** The URL without its password, for logs and errors. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

// ---- signatures -------------------------------------------------------------------------------------------

/** HMAC-SHA256 of `text` under the access token; '' when the server runs without a token (loopback only). */
export function sign(token: string | null, text: string | Uint8Array): string {
  return token ? createHmac('sha256', token).update(text).digest('hex') : '';
}

export function verify(token: string | null, text: string | Uint8Array, signature: string): boolean {
  const expected = sign(token, text);
  if (expected.length !== signature.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
}

/** What the server stores for workers to compare their token with before they take any job. */
export const tokenCheckOf = (token: string | null) => (token ? sign(token, 'loragraph worker token check') : 'no-token');

// ---- jobs and results -------------------------------------------------------------------------------------

export const JobData = z.object({
  promptId: z.string(),
  number: z.number(),
  prompt: ApiGraph,
  workflow: z.unknown().optional(),
  clientId: z.string().optional(),
  createdAt: z.number(),
  sweep: SweepInfo.optional(),
  /** A job that must finish first (a sweep's shared job, whose disk caches this one reads). */
  after: z.string().optional(),
  /** sign(token, canonicalJson of everything above). */
  signature: z.string(),
});
export type JobData = z.infer<typeof JobData>;

export const signJob = (token: string | null, data: Omit<JobData, 'signature'>): JobData => ({ ...data, signature: sign(token, canonicalJson(data)) });

export function jobSignatureValid(token: string | null, data: JobData): boolean {
  const { signature, ...rest } = data;
  return verify(token, canonicalJson(rest), signature);
}

/** A job's return value: the executor's result plus who ran it and when. */
export const JobResult = z.object({
  status: JobStatus,
  executed: z.array(z.string()),
  cached: z.array(z.string()),
  outputs: z.record(z.string(), UiOutput),
  error: ExecutionErrorInfo.optional(),
  reason: z.string().optional(),
  worker: z.string(),
  startedAt: z.number(),
  endedAt: z.number(),
  finalLoss: z.number().optional(),
});
export type JobResult = z.infer<typeof JobResult>;

// ---- live messages ----------------------------------------------------------------------------------------

/** A worker's execution event on the events channel: `{ worker, event, signature }`, event as the WS sends it. */
export const LiveEnvelope = z.object({ worker: z.string().max(200), event: z.string(), signature: z.string() });

export const ControlMessage = z.object({
  type: z.literal('interrupt'),
  /** Absent: every running job. */
  promptId: z.string().optional(),
  reason: z.string(),
});
export type ControlMessage = z.infer<typeof ControlMessage>;

/** Signed JSON text for the control channel. */
export const encodeSigned = (token: string | null, value: unknown) => {
  const text = JSON.stringify(value);
  return JSON.stringify({ text, signature: sign(token, text) });
};

export function decodeSigned(token: string | null, message: string): unknown {
  const outer = z.object({ text: z.string(), signature: z.string() }).safeParse(safeJson(message));
  if (!outer.success || !verify(token, outer.data.text, outer.data.signature)) return undefined;
  return safeJson(outer.data.text);
}

/** Preview frames on the previews channel: one byte of signature length, the signature, the WS preview frame. */
export function encodePreviewMessage(token: string | null, frame: Uint8Array): Buffer {
  const signature = Buffer.from(sign(token, frame), 'utf8');
  return Buffer.concat([Buffer.from([signature.length]), signature, frame]);
}

export function decodePreviewMessage(token: string | null, message: Buffer): Uint8Array | undefined {
  if (message.length < 1) return undefined;
  const n = message[0]!;
  const frame = message.subarray(1 + n);
  return verify(token, frame, message.subarray(1, 1 + n).toString('utf8')) ? frame : undefined;
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
