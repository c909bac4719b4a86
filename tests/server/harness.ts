// Shared test scaffolding: a registry of the fixture node types, a real server on a free loopback port in a temp
// data dir, a real `ws` client that records messages, and small graph builders.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createRegistry } from '../../nodes/registry';
import { createServer, type LoragraphServer, type ServerOptions } from '../../server/app';
import { decodePreviewFrame, ServerMessage, type ApiGraph } from '../../server/protocol';
import * as numberNodes from './fixtures/nodes/number';
import * as outputNodes from './fixtures/nodes/output';
import * as slowNodes from './fixtures/nodes/slow';

export const fixtureNodesDir = join(import.meta.dirname, 'fixtures', 'nodes');
export const testRegistry = () => createRegistry([...Object.values(numberNodes), ...Object.values(slowNodes), ...Object.values(outputNodes)]);

export function tempDir(prefix = 'loragraph-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestServer(opts: Partial<ServerOptions> = {}): Promise<LoragraphServer & { dispose(): Promise<void> }> {
  const dataDir = opts.dataDir ?? tempDir();
  const server = await createServer({ registry: testRegistry(), dataDir, port: 0, editorDir: null, log: () => {}, ...opts });
  return Object.assign(server, {
    async dispose() {
      await server.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

export class TestClient {
  readonly messages: ServerMessage[] = [];
  readonly previews: ReturnType<typeof decodePreviewFrame>[] = [];
  private waiters: (() => void)[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.previews.push(decodePreviewFrame(new Uint8Array(data as Buffer)));
      else this.messages.push(ServerMessage.parse(JSON.parse(String(data))));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static connect(url: string, opts: { clientId?: string; headers?: Record<string, string> } = {}): Promise<TestClient> {
    const wsUrl = `${url.replace(/^http/, 'ws')}/ws${opts.clientId ? `?clientId=${opts.clientId}` : ''}`;
    const ws = new WebSocket(wsUrl, { headers: opts.headers });
    const client = new TestClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  of<T extends ServerMessage['type']>(type: T, promptId?: string): Extract<ServerMessage, { type: T }>[] {
    return this.messages.filter(
      (m): m is Extract<ServerMessage, { type: T }> => m.type === type && (!promptId || (m.data as { promptId?: string }).promptId === promptId),
    );
  }

  /** Resolves once `pred` holds over the messages received so far. */
  async waitFor(pred: (c: TestClient) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > deadline) throw new Error(`timed out; last messages: ${JSON.stringify(this.messages.slice(-5)).slice(0, 800)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Waits for the job's final `executing {node:null}`. */
  finished(promptId: string, timeoutMs?: number): Promise<void> {
    return this.waitFor((c) => c.of('executing', promptId).some((m) => m.data.node === null), timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}

export async function postJson(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function getJson(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, { headers });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body };
}

/** a=NumberSource(a) ─┐
 *                      Add(offset) → ShowNumber
 *  b=NumberSource(b) ─┘        └→ SaveNumberImage      (ids 1..5) */
export function diamondGraph(a = 2, b = 3, offset = 0): ApiGraph {
  return {
    '1': { class_type: 'NumberSource', inputs: { value: a } },
    '2': { class_type: 'NumberSource', inputs: { value: b } },
    '3': { class_type: 'Add', inputs: { a: ['1', 0], b: ['2', 0], offset } },
    '4': { class_type: 'ShowNumber', inputs: { value: ['3', 0] } },
    '5': { class_type: 'SaveNumberImage', inputs: { value: ['3', 0], prefix: 'sum' } },
  };
}

/** NumberSource → SlowCounter(steps, delayMs) → ShowNumber */
export function slowGraph(steps = 20, delayMs = 50, start = 0): ApiGraph {
  return {
    '1': { class_type: 'NumberSource', inputs: { value: start } },
    '2': { class_type: 'SlowCounter', inputs: { start: ['1', 0], steps, delayMs } },
    '3': { class_type: 'ShowNumber', inputs: { value: ['2', 0] } },
  };
}
