// The WebSocket side: every client gets every job's events (jobs belong to the server), a `status` with the live
// state on connect, and binary preview frames. Client frames are validated; bad ones get an `error` reply.
import { randomUUID } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { ClientMessage, encodePreviewFrame, type LiveState, type PreviewMime, type ServerMessage } from './protocol';

// A client this far behind on previews is skipped for previews until it catches up; events are never dropped.
const PREVIEW_BACKLOG_BYTES = 8 * 1024 * 1024;

export class ClientHub {
  readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private clients = new Map<WebSocket, string>();

  constructor(private readonly liveState: () => LiveState) {
    this.wss.on('connection', (ws, req) => {
      const requested = new URL(req.url ?? '/', 'http://x').searchParams.get('clientId');
      const sid = requested && /^[\w-]{1,100}$/.test(requested) ? requested : randomUUID();
      this.clients.set(ws, sid);
      ws.on('close', () => this.clients.delete(ws));
      ws.on('error', () => this.clients.delete(ws));
      ws.on('message', (data, isBinary) => this.onMessage(ws, data, isBinary));
      this.send(ws, { type: 'status', data: { ...this.liveState(), sid } });
    });
  }

  private onMessage(ws: WebSocket, data: unknown, isBinary: boolean): void {
    if (isBinary) return this.send(ws, { type: 'error', data: { status: 400, message: 'binary frames are not accepted' } });
    let parsed: unknown;
    try {
      parsed = JSON.parse(String(data));
    } catch {
      return this.send(ws, { type: 'error', data: { status: 400, message: 'frames must be JSON' } });
    }
    const msg = ClientMessage.safeParse(parsed);
    if (!msg.success) {
      return this.send(ws, { type: 'error', data: { status: 400, message: 'unknown message; clients may send {"type":"ping"}' } });
    }
    if (msg.data.type === 'ping') this.send(ws, { type: 'pong', data: { timestamp: Date.now() } });
  }

  private send(ws: WebSocket, message: ServerMessage): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  broadcast(message: ServerMessage): void {
    const text = JSON.stringify(message);
    for (const ws of this.clients.keys()) if (ws.readyState === WebSocket.OPEN) ws.send(text);
  }

  broadcastStatus(): void {
    const live = this.liveState();
    for (const [ws, sid] of this.clients) this.send(ws, { type: 'status', data: { ...live, sid } });
  }

  preview(node: string, mime: PreviewMime, data: Uint8Array): void {
    const frame = encodePreviewFrame(node, mime, data);
    for (const ws of this.clients.keys()) {
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < PREVIEW_BACKLOG_BYTES) ws.send(frame, { binary: true });
    }
  }

  close(): void {
    for (const ws of this.clients.keys()) ws.terminate();
    this.wss.close();
  }
}
