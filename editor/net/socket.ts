// The live connection: opens /ws, feeds every server message and preview frame into the store, and reconnects by
// itself with backoff after a drop. The server's `status` on each (re)connect restores the running job's state.
import { decodePreviewFrame, ServerMessage } from '../../server/protocol';
import { editorStore } from '../state/editor';
import { applyPreview, applyServerMessage } from '../state/run';
import { withToken } from './api';
import { token } from './token';

export const clientId = sessionStorage.getItem('loragraph.clientId') ?? crypto.randomUUID();
sessionStorage.setItem('loragraph.clientId', clientId);

export interface LiveConnection {
  close(): void;
  /** Drops the socket as a network failure would (tests and the "reconnect" button use it). */
  drop(): void;
}

export function connectLive(opts: { onJobFinished(): void; onReconnected(): void }): LiveConnection {
  let ws: WebSocket | null = null;
  let closed = false;
  let delay = 250;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let everOpened = false;

  const open = () => {
    const base = new URL('ws', window.location.href);
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    base.searchParams.set('clientId', clientId);
    const socket = new WebSocket(withToken(base.toString(), token));
    socket.binaryType = 'arraybuffer';
    ws = socket;
    socket.onopen = () => {
      delay = 250;
      editorStore.set((s) => ({ ...s, connection: 'open' }));
      if (everOpened) opts.onReconnected();
      everOpened = true;
    };
    socket.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        try {
          const frame = decodePreviewFrame(new Uint8Array(ev.data));
          const url = URL.createObjectURL(new Blob([frame.image as BlobPart], { type: frame.mime }));
          editorStore.set((s) => {
            const { run, dropped } = applyPreview(s.run, frame.node, url);
            for (const d of dropped) URL.revokeObjectURL(d);
            return { ...s, run };
          });
        } catch (err) {
          console.warn('loragraph: bad preview frame', err);
        }
        return;
      }
      let parsed;
      try {
        parsed = ServerMessage.safeParse(JSON.parse(String(ev.data)));
      } catch {
        return;
      }
      if (!parsed.success) {
        console.warn('loragraph: unknown server message', parsed.error.issues[0]);
        return;
      }
      const msg = parsed.data;
      editorStore.set((s) => ({
        ...s,
        run: applyServerMessage(s.run, msg),
        queue: msg.type === 'status' ? msg.data.queue : s.queue,
      }));
      if (msg.type === 'executing' && msg.data.node === null) opts.onJobFinished();
    };
    socket.onclose = () => {
      if (ws !== socket) return;
      ws = null;
      if (closed) return;
      editorStore.set((s) => ({ ...s, connection: 'reconnecting' }));
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    };
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      ws?.close();
    },
    drop() {
      ws?.close(4000, 'dropped');
    },
  };
}
