// The loragraph server: wires the registry, executor, queue and history to the HTTP routes and the WebSocket hub,
// enforces who may connect, serves the built editor, and listens (loopback unless told otherwise).
import express from 'express';
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import type { NodeRegistry } from '../nodes/registry';
import { checkAccess, generateToken, isLoopback, TOKEN_COOKIE } from './auth';
import { Executor } from './executor/executor';
import { HistoryStore } from './history';
import { errorHandler, HttpError } from './httpErrors';
import { LiveJobState } from './liveState';
import { ensureProjectFolders, projectPaths, repoRoot, type ProjectPaths } from './paths';
import type { ExecutionEvent, PreviewMime } from './protocol';
import { InProcessQueue, type JobQueue } from './queue';
import { RedisJobQueue } from './redis/serverQueue';
import { fileRoutes } from './routes/files';
import { editorSupportRoutes } from './routes/editor-support';
import { importRoutes } from './routes/import';
import { jobRoutes } from './routes/jobs';
import { ClientHub } from './ws';

export interface ServerOptions {
  registry: NodeRegistry;
  /** Project data dir (default .loragraph/ in the repo, or $LORAGRAPH_DATA_DIR). Ignored when `paths` is given. */
  dataDir?: string;
  paths?: ProjectPaths;
  /** Default 127.0.0.1. Any other address requires a token. */
  host?: string;
  /** Default 8188; 0 picks a free port. */
  port?: number;
  /** Access token. Beyond loopback: default $LORAGRAPH_TOKEN, else generated. On loopback: required only if given. */
  token?: string | null;
  /** Memory budget of the node output cache in bytes (default 2 GiB). */
  cacheBytes?: number;
  /** Upload size limit in bytes (default 32 MiB). */
  uploadLimitBytes?: number;
  /** Built editor to serve at / (default editor/dist when it exists; null: none). */
  editorDir?: string | null;
  /** Example graphs listed by /api/graphs (default graphs/). */
  graphsDir?: string;
  /** Put jobs on a BullMQ queue in this Redis (redis://[:password@]host:port) for `loragraph worker` processes,
   *  instead of running them in this process. Requires a token (workers present it). */
  redisUrl?: string;
  /** BullMQ key prefix, so several deployments can share one Redis (default "loragraph"). */
  redisPrefix?: string;
  /** Server log lines and failures with stacks (default console.error). */
  log?(message: string, err?: unknown): void;
}

export interface LoragraphServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  readonly paths: ProjectPaths;
  readonly http: Server;
  readonly app: express.Express;
  readonly queue: JobQueue;
  readonly history: HistoryStore;
  readonly executor: Executor;
  readonly hub: ClientHub;
  /** Interrupts a running job (recorded as interrupted), closes sockets and stops listening. */
  close(): Promise<void>;
}

export class PortInUseError extends Error {
  constructor(readonly host: string, readonly port: number) {
    super(`port ${port} on ${host} is already in use (another loragraph or ComfyUI running?) — choose another with --port`);
    this.name = 'PortInUseError';
  }
}

function packageVersion(): string {
  try {
    return JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export async function createServer(opts: ServerOptions): Promise<LoragraphServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8188;
  const log = opts.log ?? ((m: string, e?: unknown) => (e === undefined ? console.error(m) : console.error(m, e)));
  // Workers on other machines act for this server: with Redis a token is always needed, as beyond loopback.
  const token = opts.token ?? (isLoopback(host) && !opts.redisUrl ? null : process.env.LORAGRAPH_TOKEN || generateToken());
  const paths = opts.paths ?? projectPaths(opts.dataDir);
  await ensureProjectFolders(paths);

  const executor = new Executor({ paths, cacheBytes: opts.cacheBytes, logError: log });
  const history = new HistoryStore(paths.state);
  const live = new LiveJobState();
  let queue!: JobQueue;
  const hub = new ClientHub(() => ({ queue: queue.snapshot(), exec: live.current() }));
  const onEvent = (e: ExecutionEvent) => {
    live.apply(e);
    hub.broadcast(e);
  };
  const onPreview = (node: string, mime: PreviewMime, data: Uint8Array) => hub.preview(node, mime, data);
  const onChange = () => hub.broadcastStatus();
  queue = opts.redisUrl
    ? new RedisJobQueue({ redisUrl: opts.redisUrl, prefix: opts.redisPrefix, token, history, onEvent, onPreview, onChange, log })
    : new InProcessQueue({ stateDir: paths.state, paths, registry: opts.registry, executor, history, onEvent, onPreview, onChange });

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    const access = checkAccess(req, { token });
    if (!access.ok) return next(new HttpError(access.status, access.message, 'unauthorized'));
    if (access.setCookie && token) {
      res.cookie(TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/' });
    }
    next();
  });
  const json = express.json({ limit: '16mb', type: (req) => !String(req.headers['content-type'] ?? '').startsWith('multipart/') });
  const api = express.Router();
  api.use((req, res, next) => (req.method === 'POST' && req.path !== '/upload' ? json(req, res, next) : next()));
  api.use(jobRoutes({ registry: opts.registry, queue, history, executor, paths, version: packageVersion() }));
  api.use(
    fileRoutes({
      paths,
      graphsDir: opts.graphsDir ?? join(repoRoot, 'graphs'),
      uploadLimitBytes: opts.uploadLimitBytes ?? 32 * 1024 * 1024,
    }),
  );
  api.use(editorSupportRoutes({ paths }));
  api.use(importRoutes({ registry: opts.registry, paths }));
  api.use((req) => {
    throw new HttpError(404, `no API route ${req.method} ${req.path}`, 'not_found');
  });
  app.use('/api', api);

  const editorDir = opts.editorDir === undefined ? join(repoRoot, 'editor', 'dist') : opts.editorDir;
  if (editorDir && existsSync(join(editorDir, 'index.html'))) {
    app.use(express.static(resolve(editorDir), { index: 'index.html' }));
    app.get('/{*rest}', (_req, res) => res.sendFile(join(resolve(editorDir), 'index.html')));
  } else {
    app.get('/', (_req, res) => res.type('text/plain').send('loragraph server — the editor is not built (npm run build:editor); the API is at /api\n'));
  }
  app.use((req) => {
    throw new HttpError(404, `not found: ${req.method} ${req.path}`, 'not_found');
  });
  app.use(errorHandler(log));

  const http = createHttpServer(app);
  http.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const refuse = (status: number, message: string) => {
      socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 401 ? 'Unauthorized' : 'Forbidden'}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ error: { type: 'unauthorized', message } })}`);
    };
    if (path !== '/ws') return refuse(404, 'the WebSocket lives at /ws');
    const access = checkAccess(req, { token });
    if (!access.ok) return refuse(access.status, access.message);
    hub.wss.handleUpgrade(req, socket, head, (ws) => hub.wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolvePromise, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(host, port) : err.code === 'EADDRNOTAVAIL' ? new Error(`cannot listen on ${host}: no such address on this machine`) : err);
    };
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      resolvePromise();
    });
  });
  const address = http.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  try {
    await queue.start();
  } catch (err) {
    await queue.stop();
    http.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${boundPort}`,
    host,
    port: boundPort,
    token,
    paths,
    http,
    app,
    queue,
    history,
    executor,
    hub,
    close() {
      closing ??= (async () => {
        await queue.stop();
        hub.close();
        http.closeAllConnections();
        await new Promise<void>((r) => http.close(() => r()));
      })();
      return closing;
    },
  };
}
