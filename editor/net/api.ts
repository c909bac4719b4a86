// HTTP calls to the server, each answer checked against the shared protocol schemas (server/protocol.ts).
import { z } from 'zod';
import {
  ErrorBody,
  HistoryEntry,
  ObjectInfo,
  PromptResponse,
  QueueSnapshot,
  type NodeErrors,
  type Workflow,
} from '../../server/protocol';
import { authHeaders, token } from './token';

/** A refused request, with the server's per-node errors when it validated a graph. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly nodeErrors: NodeErrors = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function call<S extends z.ZodType>(schema: S, path: string, init: RequestInit = {}): Promise<z.output<S>> {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(`${path}: the server answered ${res.status} with something that is not JSON`, res.status);
  }
  if (!res.ok) {
    const err = ErrorBody.safeParse(body);
    throw new ApiError(err.success ? err.data.error.message : `${path}: HTTP ${res.status}`, res.status, err.success ? err.data.nodeErrors : {});
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ApiError(`${path}: unexpected answer (${parsed.error.issues[0]?.message})`, res.status);
  return parsed.data;
}

// Mirrors GET /api/files in server/routes/editor-support.ts (belongs in server/protocol.ts).
export const PathListing = z.object({ kind: z.string(), entries: z.array(z.object({ path: z.string(), dir: z.boolean() })) });

export const api = {
  objectInfo: () => call(ObjectInfo, 'api/object_info'),
  queue: () => call(QueueSnapshot, 'api/queue'),
  history: (maxItems = 50) => call(z.record(z.string(), HistoryEntry), `api/history?maxItems=${maxItems}`),
  graphs: () => call(z.object({ graphs: z.array(z.string()) }), 'api/graphs'),
  graph: (name: string) => call(z.unknown(), `api/graphs/${encodeURIComponent(name)}`),
  files: (kind: string) => call(PathListing, `api/files?kind=${encodeURIComponent(kind)}`),
  queuePrompt: (workflow: Workflow, opts: { clientId: string; front: boolean }) =>
    call(PromptResponse, 'api/prompt', { method: 'POST', body: JSON.stringify({ prompt: workflow, workflow, clientId: opts.clientId, front: opts.front }) }),
  interrupt: (promptId?: string) => call(z.object({ interrupted: z.boolean() }), 'api/interrupt', { method: 'POST', body: JSON.stringify(promptId ? { promptId } : {}) }),
  cancel: (promptIds: string[]) => call(z.unknown(), 'api/queue', { method: 'POST', body: JSON.stringify({ delete: promptIds }) }),
  deleteHistory: (promptIds: string[]) => call(z.unknown(), 'api/history', { method: 'POST', body: JSON.stringify({ delete: promptIds }) }),
};

/** Adds the token to a URL the browser loads by itself (images, the WebSocket). */
export function withToken(url: string, token: string | null): string {
  if (!token) return url;
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/** The URL an <img> loads for an image the store holds (server files get the token; blob: previews stay). */
export function imageSrc(url: string): string {
  return url.startsWith('api/') ? withToken(url, token) : url;
}
