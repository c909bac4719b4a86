// The Redis queue end to end with real processes: a redis-server on a loopback port, `loragraph serve --redis`
// and two `loragraph worker`s. A sweep's jobs spread over both workers and their live events reach an editor's
// WebSocket through the server; a failing job is reported once with its error; a Redis restart loses no job;
// a worker holding the wrong token refuses to start.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../server/protocol';
import { fixtureNodesDir, getJson, postJson, slowGraph, tempDir, TestClient } from './harness';
import { killHard, RedisServer, runWorkerToExit, startServeProcess, startWorkerProcess, stopAll, type Proc } from './redisHarness';

let token = 'test-token-redis-queue';
let auth = { authorization: `Bearer ${token}` };
const dataDir = tempDir('lg-redis-queue-');
let redis: RedisServer;
let server: Proc & { url: string };
let workers: Proc[] = [];
let client: TestClient;

beforeAll(async () => {
  redis = await RedisServer.start({ password: 'pa:ss word' });
  const common = { redisUrl: redis.url, dataDir, token, nodesDir: fixtureNodesDir };
  const [s, ...w] = await Promise.all([
    startServeProcess(common),
    startWorkerProcess({ ...common, name: 'worker-a' }),
    startWorkerProcess({ ...common, name: 'worker-b' }),
  ]);
  server = s;
  workers = w;
  client = await TestClient.connect(server.url, { headers: auth });
}, 120_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  await redis?.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

async function historyOf(ids: string[], timeoutMs = 60_000): Promise<Record<string, HistoryEntry>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = (await getJson(server.url, '/api/history', auth)).body as Record<string, HistoryEntry>;
    if (ids.every((id) => h[id])) return h;
    if (Date.now() > deadline) throw new Error(`jobs not in history after ${timeoutMs} ms: ${ids.filter((id) => !h[id]).join(', ')}\nserver:\n${server.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the Redis queue with two workers', () => {
  it('runs a 3-job sweep on both workers and passes their live events to the editor', async () => {
    const r = await postJson(server.url, '/api/prompt', { prompt: slowGraph(8, 150, 0), sweep: [{ widget: 'Slow counter.steps', values: [8, 9, 10] }] }, auth);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const jobs = r.body.sweep.jobs as { promptId: string; sweep: { index: number; settings: Record<string, unknown> } }[];
    // No Train node, so no shared cache job: three variants.
    expect(jobs.map((j) => j.sweep.settings['Slow counter.steps'])).toEqual([8, 9, 10]);
    const ids = jobs.map((j) => j.promptId);
    const h = await historyOf(ids);
    expect(ids.map((id) => h[id]!.status)).toEqual(['success', 'success', 'success']);
    expect(ids.map((id) => h[id]!.outputs['3']?.text)).toEqual([['8'], ['9'], ['10']]);
    expect(new Set(ids.map((id) => h[id]!.worker))).toEqual(new Set(['worker-a', 'worker-b']));
    expect(h[ids[0]!]!.sweep).toMatchObject({ index: 1, count: 3 });
    // Every job's progress reached the WebSocket, and a status showed which worker ran what.
    for (const id of ids) {
      await client.finished(id);
      expect(client.of('progress', id).length).toBeGreaterThan(0);
    }
    const shownWorkers = client.of('status').flatMap((m) => m.data.queue.running.map((j) => j.worker));
    expect(shownWorkers).toEqual(expect.arrayContaining(['worker-a', 'worker-b']));
    // Finished jobs leave Redis once they are in history.
    expect((await getJson(server.url, '/api/queue', auth)).body).toEqual({ running: [], pending: [] });
  });

  it('reports a failing job with its error and runs it once', async () => {
    const graph = { '1': { class_type: 'NumberSource', inputs: { value: 1 } }, '2': { class_type: 'Fail', inputs: { value: ['1', 0], message: 'no such luck' } } };
    const r = await postJson(server.url, '/api/prompt', { prompt: graph }, auth);
    const id = r.body.promptId as string;
    const h = await historyOf([id]);
    expect(h[id]).toMatchObject({ status: 'error', error: { node: '2', nodeType: 'Fail', message: 'no such luck' } });
    await client.finished(id);
    await new Promise((r) => setTimeout(r, 1500)); // long enough for a retry to have started
    expect(client.of('execution_start', id)).toHaveLength(1);
    expect(client.of('execution_error', id).map((m) => m.data.message)).toEqual(['no such luck']);
  });

  it('interrupts a job on whichever worker runs it and cancels a queued one', async () => {
    const post = async (g: unknown) => (await postJson(server.url, '/api/prompt', { prompt: g }, auth)).body.promptId as string;
    const a = await post(slowGraph(1000, 20, 0));
    const b = await post(slowGraph(1000, 20, 1));
    const c = await post(slowGraph(2, 10, 2));
    await client.waitFor((m) => m.of('progress', a).length > 0 && m.of('progress', b).length > 0, 30_000);
    expect((await postJson(server.url, '/api/queue', { delete: [c] }, auth)).body).toEqual({ deleted: [c] });
    for (const id of [a, b]) expect((await postJson(server.url, '/api/interrupt', { promptId: id }, auth)).body).toEqual({ interrupted: true });
    const h = await historyOf([a, b]);
    for (const id of [a, b]) expect(h[id]).toMatchObject({ status: 'interrupted', reason: 'interrupted by the user' });
    expect(new Set([h[a]!.worker, h[b]!.worker])).toEqual(new Set(['worker-a', 'worker-b']));
    expect(h[c]).toBeUndefined();
    expect(client.of('execution_start', c)).toHaveLength(0);
    expect((await getJson(server.url, '/api/queue', auth)).body).toEqual({ running: [], pending: [] });
  });

  it('loses no job when Redis restarts', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await postJson(server.url, '/api/prompt', { prompt: slowGraph(6, 150, 100 * i) }, auth)).body.promptId);
    await client.waitFor((c) => c.of('progress').some((m) => ids.includes(m.data.promptId)));
    await redis.restart();
    const h = await historyOf(ids, 90_000);
    expect(ids.map((id) => h[id]!.status)).toEqual(['success', 'success', 'success', 'success', 'success']);
    expect(ids.map((id) => h[id]!.outputs['3']?.text?.[0])).toEqual(['6', '106', '206', '306', '406']);
    // And the queue keeps working afterwards.
    const after = (await postJson(server.url, '/api/prompt', { prompt: slowGraph(2, 10, 7) }, auth)).body.promptId as string;
    expect((await historyOf([after]))[after]!.outputs['3']?.text).toEqual(['9']);
  });

  it('refuses a worker whose token is not the server\'s', async () => {
    const r = await runWorkerToExit({ redisUrl: redis.url, dataDir, token: 'some-other-token', name: 'intruder' });
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/token \(LORAGRAPH_TOKEN\) is not the server's/);
  });

  it('after a server restart with another token, old workers hand its jobs back and stop; new ones run them', async () => {
    client.close();
    await killHard(server);
    token = 'a-new-token';
    auth = { authorization: `Bearer ${token}` };
    server = await startServeProcess({ redisUrl: redis.url, dataDir, token, nodesDir: fixtureNodesDir });
    client = await TestClient.connect(server.url, { headers: auth });
    const exits = workers.map((w) => new Promise<number | null>((r) => (w.child.exitCode !== null ? r(w.child.exitCode) : w.child.once('exit', r))));
    const id = (await postJson(server.url, '/api/prompt', { prompt: slowGraph(2, 10, 5) }, auth)).body.promptId as string;
    // Both old workers stop (one may stop on the job, the other on the next job it sees or right away, still idle).
    const first = await Promise.race(exits);
    expect(first).toBe(1);
    expect(workers.some((w) => /token \(LORAGRAPH_TOKEN\) is not the server's[^\n]*; stopping/.test(w.output()))).toBe(true);
    const fresh = await startWorkerProcess({ redisUrl: redis.url, dataDir, token, nodesDir: fixtureNodesDir, name: 'worker-e' });
    workers.push(fresh);
    const h = await historyOf([id]);
    expect(h[id]).toMatchObject({ status: 'success', worker: 'worker-e', outputs: { '3': { text: ['7'] } } });
  });

  it('fails a job whose worker died, past the stall limit, instead of handing it out forever', async () => {
    // Workers that give a dead worker's job no second chance (--max-stalls 0), so one crash decides.
    await Promise.all(workers.map(killHard));
    const common = { redisUrl: redis.url, dataDir, token, nodesDir: fixtureNodesDir, maxStalls: 0 };
    workers = await Promise.all([startWorkerProcess({ ...common, name: 'worker-c' }), startWorkerProcess({ ...common, name: 'worker-d' })]);
    const id = (await postJson(server.url, '/api/prompt', { prompt: { '1': { class_type: 'CrashProcess', inputs: {} } } }, auth)).body.promptId as string;
    const h = await historyOf([id]);
    expect(h[id]).toMatchObject({ status: 'error', error: { message: expect.stringMatching(/stalled/) } });
    expect(workers.filter((w) => w.child.signalCode === 'SIGKILL')).toHaveLength(1);
    // The editor heard that the job ended.
    await client.finished(id);
    expect(client.of('execution_error', id)).toHaveLength(1);
  });
});
