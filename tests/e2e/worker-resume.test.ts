// Training on the Redis queue with the real nodes: `loragraph serve --redis` and two `loragraph worker`s over one
// data folder (the shared-folder deployment). A learning-rate sweep runs on both workers and its shared job
// writes the latent cache once; a worker killed with -9 mid-training loses its job to the other worker, which
// resumes from the last checkpoint and ends with the weights of an uninterrupted run.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { repoRoot } from '../../server/paths';
import type { HistoryEntry } from '../../server/protocol';
import { getJson, postJson, TestClient } from '../server/harness';
import { killHard, RedisServer, startServeProcess, startWorkerProcess, stopAll, type Proc } from '../server/redisHarness';
import { dataDirWithRandomTiny, trainGraph } from './fixtures';

const token = 'test-token-worker-resume';
const auth = { authorization: `Bearer ${token}` };
// One ORT thread per process: two workers share the machine, and a fixed count keeps runs bit-identical.
const env = { LORAGRAPH_THREADS: '1' };
let dataDir: string;
let redis: RedisServer;
let server: Proc & { url: string };
const workers: Record<string, Proc> = {};
let client: TestClient;

beforeAll(async () => {
  dataDir = await dataDirWithRandomTiny();
  redis = await RedisServer.start();
  const common = { redisUrl: redis.url, dataDir, token };
  const [s, a, b] = await Promise.all([
    startServeProcess(common),
    startWorkerProcess({ ...common, name: 'gpu-1', env, lockMs: 10_000 }),
    startWorkerProcess({ ...common, name: 'gpu-2', env, lockMs: 10_000 }),
  ]);
  server = s;
  workers['gpu-1'] = a;
  workers['gpu-2'] = b;
  client = await TestClient.connect(server.url, { headers: auth });
}, 120_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  await redis?.dispose();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function historyOf(ids: string[], timeoutMs = 240_000): Promise<Record<string, HistoryEntry>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = (await getJson(server.url, '/api/history', auth)).body as Record<string, HistoryEntry>;
    if (ids.every((id) => h[id])) return h;
    if (Date.now() > deadline) throw new Error(`not finished: ${ids.filter((id) => !h[id]).join(', ')}\n${Object.entries(workers).map(([n, w]) => `${n}:\n${w.output().slice(-1500)}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** name → [inode, mtime] of every file in the latent and text-embedding caches. */
function cacheFiles(): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of ['latent-cache', 'text-embedding-cache']) for (const [k, v] of filesIn(join(dataDir, 'temp', name))) out.set(`${name}${k}`, v);
  return out;
}

function filesIn(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = statSync(p);
        out.set(p.slice(dir.length), `${st.ino}:${st.mtimeMs}`);
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'loragraph.js'), ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

const checkpointsIn = (data: string) => readdirSync(join(data, 'cache')).filter((d) => d.startsWith('Train')).flatMap((d) => {
  const c = join(data, 'cache', d, 'checkpoints');
  return existsSync(c) ? readdirSync(c) : [];
});

describe('training on two workers', () => {
  it('a learning-rate sweep runs on both workers, shows each job\'s loss, and caches latents and captions once', async () => {
    const r = await postJson(server.url, '/api/prompt', { prompt: trainGraph({ steps: 2 }), sweep: [{ widget: 'Optimizer.learningRate', values: [1e-4, 3e-4, 1e-3] }] }, auth);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const jobs = r.body.sweep.jobs as { promptId: string; sweep: { shared?: boolean; settings: Record<string, unknown> } }[];
    expect(jobs.map((j) => j.sweep.shared ?? false)).toEqual([true, false, false, false]);
    const [shared, ...variants] = jobs.map((j) => j.promptId);
    // The shared job's latents, as they are when it finishes.
    await client.finished(shared!, 240_000);
    const afterShared = cacheFiles();
    expect([...afterShared.keys()].some((k) => k.startsWith('latent-cache/'))).toBe(true);
    expect([...afterShared.keys()].some((k) => k.startsWith('text-embedding-cache/'))).toBe(true);
    const h = await historyOf(variants);
    expect(variants.map((id) => h[id]!.status)).toEqual(['success', 'success', 'success']);
    expect(variants.map((id) => h[id]!.sweep!.settings['Optimizer.learningRate'])).toEqual([1e-4, 3e-4, 1e-3]);
    expect(new Set([shared, ...variants].map((id) => h[id]!.worker))).toEqual(new Set(['gpu-1', 'gpu-2']));
    for (const id of variants) expect(h[id]!.finalLoss).toBeTypeOf('number');
    // What a worker wrote (the loss chart) is served by the server from the shared data folder.
    const image = Object.values(h[variants[0]!]!.outputs).flatMap((o) => o.images ?? [])[0]!;
    const view = await fetch(`${server.url}/api/view?${new URLSearchParams({ filename: image.filename, subfolder: image.subfolder ?? '', type: image.type })}`, { headers: auth });
    expect(view.status).toBe(200);
    expect(Buffer.from(await view.arrayBuffer()).subarray(1, 4).toString()).toBe('PNG');
    // Same files, never rewritten: the variants read the shared job's latents and embeddings instead of encoding their own.
    expect(cacheFiles()).toEqual(afterShared);
  }, 300_000);

  it('a worker killed with -9 mid-training: the other resumes the job and ends with the weights of an uninterrupted run', async () => {
    const graph = trainGraph({ steps: 9, saveEvery: 3 });
    // The uninterrupted run, in its own data folder, meanwhile (not blocking this process: the WebSocket reads on).
    const clean = await dataDirWithRandomTiny();
    const file = join(clean, 'train.json');
    writeFileSync(file, JSON.stringify(graph));
    const reference = runCli(['run', file, '--data-dir', clean]);

    const id = (await postJson(server.url, '/api/prompt', { prompt: graph }, auth)).body.promptId as string;
    // Kill whichever worker runs it once it has written a mid-run checkpoint.
    let victim: string | undefined;
    const t0 = Date.now();
    while (!victim) {
      const running = client.of('status').flatMap((m) => m.data.queue.running).find((j) => j.promptId === id && j.worker);
      const ready = running && checkpointsIn(dataDir).some((f) => /^step-0000000[36]\.safetensors$/.test(f));
      if (ready) victim = running.worker;
      else if (Date.now() - t0 > 240_000) throw new Error('no checkpoint appeared');
      else await new Promise((r) => setTimeout(r, 100));
    }
    await killHard(workers[victim]!);
    const h = await historyOf([id]);
    const ref = await reference;
    expect(ref.code, ref.output).toBe(0);
    expect(h[id]!.status, JSON.stringify(h[id]!.error)).toBe('success');
    expect(h[id]!.worker).not.toBe(victim);
    // The second start resumed (Train warns so), and it was the same job the first worker had.
    expect(client.of('execution_start', id)).toHaveLength(2);
    expect(client.of('warning', id).map((m) => m.data.message).join('\n')).toMatch(/resumed from the checkpoint at step [36]/);
    const ta = (await loadSafetensors(join(clean, 'output', 'e2e.safetensors'))).tensors;
    const tb = (await loadSafetensors(join(dataDir, 'output', 'e2e.safetensors'))).tensors;
    expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
    for (const [k, v] of ta) expect(Buffer.from(tb.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), k).toBe(true);
    rmSync(clean, { recursive: true, force: true });
  }, 300_000);
});
