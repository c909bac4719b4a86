// The server end to end over real HTTP and a real WebSocket client: running, caching, re-running what changed,
// events shared by every client, live state for late joiners, interrupt, queue priorities and history.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ObjectInfo } from '../../server/protocol';
import { executions, resetExecutions } from './fixtures/executions';
import { diamondGraph, getJson, postJson, slowGraph, startTestServer, TestClient } from './harness';

let server: Awaited<ReturnType<typeof startTestServer>>;
let url: string;
beforeAll(async () => {
  server = await startTestServer();
  url = server.url;
});
afterAll(async () => server.dispose());
beforeEach(resetExecutions);

async function queue(prompt: unknown, extra: Record<string, unknown> = {}) {
  const res = await postJson(url, '/api/prompt', { prompt, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.promptId as string;
}

describe('server', () => {
  it('serves /api/object_info generated from the node declarations', async () => {
    const { status, body } = await getJson(url, '/api/object_info');
    expect(status).toBe(200);
    const info = ObjectInfo.parse(body);
    expect(info.SlowCounter).toMatchObject({
      title: 'Slow counter',
      category: 'training',
      inputs: [{ name: 'start', type: 'NUMBER', optional: true, list: false }],
      outputs: [{ name: 'count', type: 'NUMBER' }],
      widgets: [
        { name: 'steps', kind: 'int', default: 5, min: 1, max: 100000, step: 1 },
        { name: 'delayMs', kind: 'int', default: 20, min: 0, max: 10000 },
      ],
    });
    expect(info.NumberSource!.widgets[0]).toMatchObject({ kind: 'float', tooltip: 'the number', default: 1 });
    expect(info.MakeList!.widgets[0]).toMatchObject({ kind: 'combo', options: ['copy', 'mutate'], default: 'copy' });
    expect(info.SumAll!.inputs[0]).toMatchObject({ list: true });
    expect(info.ShowNumber!.isOutput).toBe(true);
  });

  it('runs a graph and tells a client everything: start, cached, executing, executed with the image, preview frames', async () => {
    const client = await TestClient.connect(url);
    const id = await queue(diamondGraph(20, 30));
    await client.finished(id);
    const types = client.messages.filter((m) => 'promptId' in (m.data as object) && (m.data as { promptId: string }).promptId === id).map((m) => m.type);
    expect(types[0]).toBe('execution_start');
    expect(types[1]).toBe('execution_cached');
    expect(types).toContain('execution_success');
    expect(client.of('executing', id).map((m) => m.data.node)).toEqual(expect.arrayContaining(['1', '2', '3', '4', '5', null]));
    const shown = client.of('executed', id).find((m) => m.data.node === '4')!;
    expect(shown.data.output).toEqual({ text: ['50'] });
    const saved = client.of('executed', id).find((m) => m.data.node === '5')!.data.output.images![0]!;
    const img = await fetch(`${url}/api/view?filename=${saved.filename}&type=output`);
    expect(img.status).toBe(200);
    expect(img.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await img.arrayBuffer()).equals(readFileSync(join(server.paths.output, saved.filename)))).toBe(true);
    expect(client.previews).toHaveLength(1);
    expect(client.previews[0]).toMatchObject({ node: '5', mime: 'image/png' });
    const history = (await getJson(url, `/api/history/${id}`)).body[id];
    expect(history).toMatchObject({ status: 'success', outputs: { '4': { text: ['50'] } } });
    client.close();
  });

  it('runs the same graph again without executing anything, and re-runs exactly what a widget change touches', async () => {
    const client = await TestClient.connect(url);
    const g = diamondGraph(1, 2, 3);
    await client.finished(await queue(g));
    expect(executions.length).toBe(5);

    resetExecutions();
    const again = await queue(g);
    await client.finished(again);
    expect(executions).toEqual([]);
    expect(client.of('execution_cached', again)[0]!.data.nodes).toEqual(['1', '2', '3', '4', '5']);
    expect(client.of('executing', again).map((m) => m.data.node)).toEqual([null]);

    resetExecutions();
    const changed = await queue(diamondGraph(1, 2, 4)); // Add's offset
    await client.finished(changed);
    expect([...executions].sort()).toEqual(['3', '4', '5']);
    expect(client.of('execution_cached', changed)[0]!.data.nodes).toEqual(['1', '2']);
    expect(client.of('executing', changed).map((m) => m.data.node).filter(Boolean).sort()).toEqual(['3', '4', '5']);
    client.close();
  });

  it('accepts the editor workflow format on /api/prompt', async () => {
    const client = await TestClient.connect(url);
    const wf = {
      nodes: [
        { id: 10, type: 'NumberSource', widgets_values: [41] },
        { id: 11, type: 'Add', inputs: [{ name: 'a', link: 1 }], widgets_values: [1] },
        { id: 12, type: 'ShowNumber', inputs: [{ name: 'value', link: 2 }] },
      ],
      links: [[1, 10, 0, 11, 0, 'NUMBER'], [2, 11, 0, 12, 0, 'NUMBER']],
    };
    const id = await queue(wf);
    await client.finished(id);
    expect(client.of('executed', id)[0]!.data).toMatchObject({ node: '12', output: { text: ['42'] } });
    expect((await getJson(url, `/api/history/${id}`)).body[id].workflow).toEqual(wf);
    client.close();
  });

  it('answers an invalid graph with per-node, per-field errors and queues nothing', async () => {
    const g = diamondGraph();
    g['3']!.inputs.offset = 1000;
    const res = await postJson(url, '/api/prompt', { prompt: g });
    expect(res.status).toBe(400);
    expect(res.body.error.type).toBe('invalid_prompt');
    expect(res.body.nodeErrors['3'].errors).toEqual([{ field: 'offset', message: expect.stringMatching(/<=100/) }]);
    expect((await getJson(url, '/api/queue')).body).toEqual({ running: [], pending: [] });
  });

  it('sends the same events to two clients', async () => {
    const [a, b] = await Promise.all([TestClient.connect(url), TestClient.connect(url)]);
    const id = await queue(slowGraph(4, 10, 500));
    await Promise.all([a.finished(id), b.finished(id)]);
    const strip = (c: TestClient) => c.messages.filter((m) => m.type !== 'status').map((m) => JSON.stringify(m));
    expect(strip(a)).toEqual(strip(b));
    expect(a.of('progress', id).length).toBeGreaterThanOrEqual(2);
    a.close();
    b.close();
  });

  it('gives a client that connects mid-job the current node, its progress and the outputs so far', async () => {
    const watcher = await TestClient.connect(url);
    const g = slowGraph(40, 25, 1000);
    g['4'] = { class_type: 'ShowNumber', inputs: { value: ['1', 0] } }; // an early output, shown before the slow node
    const id = await queue(g);
    await watcher.waitFor((c) => c.of('progress', id).some((m) => m.data.step >= 3));
    const late = await TestClient.connect(url, { clientId: 'late-joiner' });
    await late.waitFor((c) => c.of('status').length > 0);
    const status = late.of('status')[0]!.data;
    expect(status.sid).toBe('late-joiner');
    expect(status.queue.running.map((j) => j.promptId)).toEqual([id]);
    expect(status.exec).toMatchObject({ promptId: id, node: '2', outputs: { '4': { text: ['1000'] } } });
    expect(status.exec!.progress!.step).toBeGreaterThanOrEqual(3);
    expect(status.exec!.progress!.total).toBe(40);
    // …and then follows the job like everyone else.
    await late.finished(id);
    expect(late.of('executed', id).find((m) => m.data.node === '3')!.data.output).toEqual({ text: ['1040'] });
    watcher.close();
    late.close();
  });

  it('interrupts the running job within a progress step and records it', async () => {
    const client = await TestClient.connect(url);
    const id = await queue(slowGraph(500, 20, 2000));
    await client.waitFor((c) => c.of('progress', id).length > 0);
    const t0 = Date.now();
    expect((await postJson(url, '/api/interrupt', {})).body).toEqual({ interrupted: true });
    await client.finished(id);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(client.of('execution_interrupted', id)[0]!.data).toMatchObject({ node: '2', nodeType: 'SlowCounter' });
    const entry = (await getJson(url, `/api/history/${id}`)).body[id];
    expect(entry).toMatchObject({ status: 'interrupted', reason: 'interrupted by the user' });
    expect((await postJson(url, '/api/interrupt', {})).body).toEqual({ interrupted: false });
    client.close();
  });

  it('queues with priorities, cancels a queued job, and keeps jobs running without any client', async () => {
    const blocker = await queue(slowGraph(10, 30, 3000));
    const a = await queue(slowGraph(1, 0, 3100));
    const b = await queue(slowGraph(1, 0, 3200));
    const c = await queue(slowGraph(1, 0, 3300), { front: true });
    const snap = (await getJson(url, '/api/queue')).body;
    expect(snap.running.map((j: { promptId: string }) => j.promptId)).toEqual([blocker]);
    expect(snap.pending.map((j: { promptId: string }) => j.promptId)).toEqual([c, a, b]);
    expect((await postJson(url, '/api/queue', { delete: [a] })).body).toEqual({ deleted: [a] });
    await server.queue.idle();
    await new Promise((r) => setTimeout(r, 50));
    await server.queue.idle();
    const history = (await getJson(url, '/api/history')).body;
    expect(history[a]).toBeUndefined();
    expect(history[b].status).toBe('success');
    expect(history[c].status).toBe('success');
    expect(history[c].startedAt).toBeLessThan(history[b].startedAt);
    expect((await getJson(url, '/api/prompt')).body).toEqual({ queueRemaining: 0, running: null });
  });

  it('reports an execution error to clients and in history without a stack trace', async () => {
    const client = await TestClient.connect(url);
    const id = await queue({ '1': { class_type: 'NumberSource', inputs: {} }, '2': { class_type: 'Fail', inputs: { value: ['1', 0], message: 'no images in datasets/cats' } } });
    await client.finished(id);
    const err = client.of('execution_error', id)[0]!.data;
    expect(err).toMatchObject({ node: '2', nodeType: 'Fail', message: 'no images in datasets/cats', inputs: { message: 'no images in datasets/cats' } });
    const entry = (await getJson(url, `/api/history/${id}`)).body[id];
    expect(entry.status).toBe('error');
    expect(JSON.stringify(entry) + JSON.stringify(client.messages)).not.toMatch(/\n\s+at /);
    client.close();
  });

  it('answers ping, lists graphs and system stats', async () => {
    const client = await TestClient.connect(url);
    client.ws.send(JSON.stringify({ type: 'ping' }));
    await client.waitFor((c) => c.of('pong').length === 1);
    const stats = (await getJson(url, '/api/system_stats')).body;
    expect(stats.system.protocol).toBe(1);
    expect(stats.cache.entries).toBeGreaterThan(0);
    expect((await getJson(url, '/api/graphs')).status).toBe(200);
    expect((await getJson(url, '/api/graphs/..%2Fpackage')).status).toBe(400);
    expect((await getJson(url, '/api/nothing-here')).status).toBe(404);
    client.close();
  });

  it('names the port when it is already taken', async () => {
    await expect(startTestServer({ port: server.port })).rejects.toThrow(`port ${server.port} on 127.0.0.1 is already in use`);
  });
});

describe('editor support', () => {
  it('lists a project folder for path widgets and refuses unknown kinds', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(join(server.paths.models, 'sd15'), { recursive: true });
    writeFileSync(join(server.paths.models, 'sd15', 'tiny.safetensors'), '');
    const { status, body } = await getJson(url, '/api/files?kind=models');
    expect(status).toBe(200);
    expect(body.entries).toEqual(expect.arrayContaining([{ path: 'sd15', dir: true }, { path: 'sd15/tiny.safetensors', dir: false }]));
    expect((await getJson(url, '/api/files?kind=..')).status).toBe(400);
    // LoRA widgets list models/ and, prefixed, output/ where trained files land.
    mkdirSync(join(server.paths.output, 'star'), { recursive: true });
    writeFileSync(join(server.paths.output, 'star', 'star_000000080.safetensors'), '');
    const loras = (await getJson(url, '/api/files?kind=lora')).body;
    expect(loras.entries).toEqual(expect.arrayContaining([{ path: 'sd15/tiny.safetensors', dir: false }, { path: 'output/star/star_000000080.safetensors', dir: false }]));
  });
});
