// npm run bench:queue — what going through Redis costs a job: enqueue-to-start latency (POST /api/prompt until the
// editor's WebSocket sees execution_start) and per-job overhead (POST until the job is in history) for a job that
// does no work, through the in-process queue and through BullMQ on a real redis-server with a worker, in one run.
// The worker runs in this process so the numbers are the queue's, not a process start's. Needs `redis-server`.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { z } from 'zod';
import { defineNode, input, widget } from '../nodes/define';
import { createRegistry } from '../nodes/registry';
import { createServer, type LoragraphServer } from '../server/app';
import { projectPaths } from '../server/paths';
import { ServerMessage, type ApiGraph } from '../server/protocol';
import { startWorker } from '../server/redis/worker';

const Const = defineNode({
  type: 'Const',
  category: 'utils',
  widgets: z.object({ value: widget.float({ default: 0, min: -1e9, max: 1e9 }) }),
  outputs: { value: 'NUMBER' },
  execute: ({ widgets }) => ({ outputs: { value: widgets.value } }),
});
const Show = defineNode({
  type: 'Show',
  category: 'output',
  isOutput: true,
  inputs: { value: input<number>('NUMBER') },
  execute: ({ inputs }) => ({ outputs: {}, ui: { text: [String(inputs.value)] } }),
});
const registry = createRegistry([Const, Show]);
// A new value each job, so nothing is served from the executor's cache.
const graph = (i: number): ApiGraph => ({ '1': { class_type: 'Const', inputs: { value: i } }, '2': { class_type: 'Show', inputs: { value: ['1', 0] } } });

const JOBS = Number(process.env.BENCH_JOBS ?? 200);
const WARMUP = 10;
const TOKEN = 'bench-token';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Submits jobs one after another; for each, ms until execution_start and until `executing {node: null}`. */
async function measure(server: LoragraphServer): Promise<{ post: number[]; start: number[]; total: number[] }> {
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const seen = new Map<string, { start?: number; end?: number }>();
  let wake: (() => void) | undefined;
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const m = ServerMessage.parse(JSON.parse(String(data)));
    const now = performance.now();
    if (m.type === 'execution_start') (seen.get(m.data.promptId) ?? seen.set(m.data.promptId, {}).get(m.data.promptId)!).start ??= now;
    if (m.type === 'executing' && m.data.node === null) (seen.get(m.data.promptId) ?? seen.set(m.data.promptId, {}).get(m.data.promptId)!).end = now;
    wake?.();
  });
  const post: number[] = [];
  const start: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < WARMUP + JOBS; i++) {
    const t0 = performance.now();
    const res = await fetch(`${server.url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ prompt: graph(i) }) });
    const { promptId } = (await res.json()) as { promptId: string };
    const answered = performance.now() - t0;
    while (seen.get(promptId)?.end === undefined) await new Promise<void>((r) => { wake = r; setTimeout(r, 1000); });
    const s = seen.get(promptId)!;
    if (i >= WARMUP) {
      post.push(answered);
      start.push(s.start! - t0);
      total.push(s.end! - t0);
    }
  }
  ws.close();
  return { post, start, total };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'lg-bench-queue-'));
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      redis.stdout!.on('data', (d) => { out += d; if (/Ready to accept connections/.test(out)) resolve(); });
      redis.once('exit', (code) => reject(new Error(`redis-server exited (${code}); is it installed? (scripts/install-system-deps.sh)`)));
      redis.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}); scripts/install-system-deps.sh installs it`)));
    });
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const quiet = () => {};

    const local = await createServer({ registry, dataDir: join(dir, 'local'), port: 0, editorDir: null, token: TOKEN, log: quiet });
    const inProcess = await measure(local);
    await local.close();

    const remote = await createServer({ registry, dataDir: join(dir, 'shared'), port: 0, editorDir: null, token: TOKEN, redisUrl, log: quiet });
    const worker = await startWorker({ redisUrl, registry, paths: projectPaths(join(dir, 'shared')), token: TOKEN, name: 'bench', log: quiet });
    const viaRedis = await measure(remote);
    await worker.close();
    await remote.close();

    console.log(`cpus=${cpus().length} load=${loadavg()[0]!.toFixed(2)} jobs=${JOBS} (after ${WARMUP} warm-up), each a 2-node graph that does no work`);
    for (const [name, r] of [['in_process', inProcess], ['redis', viaRedis]] as const) {
      console.log(`${name}: post_answered_ms median=${median(r.post).toFixed(2)}  enqueue_to_start_ms median=${median(r.start).toFixed(2)} p90=${p90(r.start).toFixed(2)}  per_job_ms median=${median(r.total).toFixed(2)} p90=${p90(r.total).toFixed(2)}`);
    }
    console.log(`redis_vs_in_process: enqueue_to_start=${(median(viaRedis.start) / median(inProcess.start)).toFixed(1)}x per_job=${(median(viaRedis.total) / median(inProcess.total)).toFixed(1)}x extra_per_job_ms=${(median(viaRedis.total) - median(inProcess.total)).toFixed(2)}`);
  } finally {
    redis.kill('SIGTERM');
    await new Promise((r) => redis.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
