// Test scaffolding for the Redis queue: a real redis-server on a free loopback port (its data in a temp folder,
// append-only file synced on every write, so a restart keeps every job), and `loragraph serve --redis` /
// `loragraph worker` as child processes. Everything started here is stopped by stopAll().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../server/paths';

const children = new Set<ChildProcess>();

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves with the output so far once `pattern` appears in the child's stdout/stderr; rejects if it exits first. */
function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => done(new Error(`${what} did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d;
      const m = pattern.exec(out);
      if (m) done(undefined, m);
    };
    const onExit = (code: number | null) => done(new Error(`${what} exited (${code}) before starting:\n${out}`));
    const onError = (err: NodeJS.ErrnoException) =>
      done(new Error(err.code === 'ENOENT' ? `${what}: not installed (scripts/install-system-deps.sh installs redis-server)` : `${what}: ${err.message}`));
    function done(err?: Error, m?: RegExpExecArray) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve(m!);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

export class RedisServer {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'lg-redis-'));
  private constructor(readonly port: number, readonly password: string) {}

  static async start(opts: { password?: string } = {}): Promise<RedisServer> {
    const r = new RedisServer(await freePort(), opts.password ?? '');
    await r.launch();
    return r;
  }

  get url(): string {
    return `redis://${this.password ? `:${encodeURIComponent(this.password)}@` : ''}127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
    if (this.password) args.push('--requirepass', this.password);
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    this.child = child;
    await waitForLine(child, /Ready to accept connections/, 'redis-server', 20_000);
  }

  /** Stops Redis (SIGTERM: it flushes the append-only file) and starts it again on the same port and data. */
  async restart(downMs = 500): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Proc {
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
}

function launch(args: string[], env: Record<string, string>): Proc {
  // bin/loragraph.js runs in this one process (tsx's CLI would put a second process behind it that kill -9 misses).
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'loragraph.js'), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out };
}

/** `loragraph serve --redis` on a free port; resolves with its URL. */
export async function startServeProcess(o: { redisUrl: string; dataDir: string; token: string; nodesDir?: string }): Promise<Proc & { url: string }> {
  const p = launch(['serve', '--port', '0', '--data-dir', o.dataDir, '--redis', o.redisUrl, ...(o.nodesDir ? ['--nodes', o.nodesDir] : [])], { LORAGRAPH_TOKEN: o.token });
  const m = await waitForLine(p.child, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 'loragraph serve');
  return { ...p, url: m[1]! };
}

/** `loragraph worker`; resolves once it takes jobs. Short lock and stalled-check times, so tests see recovery in seconds. */
export async function startWorkerProcess(o: { redisUrl: string; dataDir: string; token: string; name: string; nodesDir?: string; env?: Record<string, string>; lockMs?: number; maxStalls?: number }): Promise<Proc> {
  // The lock must outlast the longest pause of a worker's event loop (loading a model on a busy machine), or a
  // live worker's job is taken for stalled.
  const p = launch(
    ['worker', '--redis', o.redisUrl, '--data-dir', o.dataDir, '--name', o.name, '--lock-ms', String(o.lockMs ?? 4000), '--stalled-check-ms', '1000', ...(o.maxStalls !== undefined ? ['--max-stalls', String(o.maxStalls)] : []), ...(o.nodesDir ? ['--nodes', o.nodesDir] : [])],
    { LORAGRAPH_TOKEN: o.token, ...o.env },
  );
  await waitForLine(p.child, /taking jobs from/, `worker ${o.name}`);
  return p;
}

/** Runs a worker that is expected to refuse to start; resolves with its exit code and output. */
export function runWorkerToExit(o: { redisUrl: string; dataDir: string; token: string; name: string }): Promise<{ code: number | null; output: string }> {
  const p = launch(['worker', '--redis', o.redisUrl, '--data-dir', o.dataDir, '--name', o.name], { LORAGRAPH_TOKEN: o.token });
  return new Promise((resolve) => p.child.once('exit', (code) => resolve({ code, output: p.output() })));
}

export async function killHard(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGKILL');
  await exited;
}

/** Kills every process this harness started (SIGKILL: tests end, nothing to save). */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => { c.once('exit', r); c.kill('SIGKILL'); }) : undefined)));
}
