// Bad input never crashes the server or leaks internals: thousands of malformed /api/prompt bodies and WebSocket
// frames each get a 4xx with a message; path traversal on /api/view and /api/upload is refused; beyond loopback
// every request needs the token.
import fc from 'fast-check';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiGraph } from '../../server/protocol';
import { diamondGraph, getJson, postJson, startTestServer, tempDir, TestClient } from './harness';

let server: Awaited<ReturnType<typeof startTestServer>>;
let url: string;
let outside: string;
beforeAll(async () => {
  server = await startTestServer();
  url = server.url;
  outside = tempDir('loragraph-outside-');
  writeFileSync(join(outside, 'secret.txt'), 'TOP-SECRET');
  symlinkSync(outside, join(server.paths.output, 'escape'));
  symlinkSync(join(outside, 'secret.txt'), join(server.paths.output, 'secret-link.txt'));
  writeFileSync(join(server.paths.output, 'fine.txt'), 'fine');
});
afterAll(async () => server.dispose());

const STACK = /\n\s+at |\bat .+\.(ts|js):\d+|node_modules|\/work\//;

function expectClientError(status: number, body: string, what: string) {
  expect(status, `${what} → ${status} ${body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(status, what).toBeLessThan(500);
  const parsed = JSON.parse(body);
  expect(typeof parsed.error.message, what).toBe('string');
  expect(parsed.error.message.length).toBeGreaterThan(0);
  expect(body, what).not.toMatch(STACK);
}

/** A graph made invalid in one of many ways; every mutation is one that must be refused. */
const invalidGraph: fc.Arbitrary<unknown> = fc
  .tuple(
    fc.constantFrom('1', '2', '3', '4', '5'),
    fc.oneof(
      fc.record({ kind: fc.constant('classType'), value: fc.oneof(fc.string(), fc.jsonValue()) }),
      fc.record({ kind: fc.constant('widget'), value: fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.double({ min: 101, max: 1e300 }), fc.double({ min: 0.01, max: 0.99 }), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.object()) }),
      fc.record({ kind: fc.constant('link'), value: fc.tuple(fc.string({ maxLength: 4 }).filter((s) => !['1', '2', '3', '4', '5'].includes(s)), fc.nat(5)) }),
      fc.record({ kind: fc.constant('badLinkShape'), value: fc.oneof(fc.string(), fc.integer(), fc.array(fc.integer(), { minLength: 3 }), fc.constant(null)) }),
      fc.record({ kind: fc.constant('inputs'), value: fc.oneof(fc.string(), fc.integer(), fc.array(fc.jsonValue())) }),
      fc.record({ kind: fc.constant('noOutputs'), value: fc.constant(null) }),
      fc.record({ kind: fc.constant('cycle'), value: fc.constant(null) }),
      fc.record({ kind: fc.constant('extraField'), value: fc.string({ minLength: 1 }).filter((s) => !['a', 'b', 'offset', 'value', 'prefix', '__proto__'].includes(s)) }),
    ),
  )
  .map(([id, m]) => {
    const g: Record<string, any> = diamondGraph();
    switch (m.kind) {
      case 'classType':
        if (typeof m.value === 'string' && ['NumberSource', 'Add', 'ShowNumber', 'SaveNumberImage'].includes(m.value)) g['3'].class_type = 'Nope';
        else g[id].class_type = m.value;
        break;
      case 'widget':
        g['3'].inputs.offset = m.value;
        break;
      case 'link':
        g['3'].inputs.a = m.value;
        break;
      case 'badLinkShape':
        g['4'].inputs.value = m.value;
        break;
      case 'inputs':
        g[id].inputs = m.value;
        break;
      case 'noOutputs':
        delete g['4'];
        delete g['5'];
        break;
      case 'cycle':
        g['1'] = { class_type: 'Add', inputs: { a: ['3', 0] } };
        break;
      case 'extraField':
        g[id].inputs[m.value as string] = 1;
        break;
    }
    return g;
  });

const malformedBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }), // mostly not JSON at all
  fc.jsonValue().map((v) => JSON.stringify(v)), // JSON of the wrong shape
  invalidGraph.map((g) => JSON.stringify({ prompt: g })),
  fc.record({ prompt: fc.jsonValue(), clientId: fc.jsonValue(), front: fc.jsonValue() }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  invalidGraph.map((g) => JSON.stringify({ prompt: { nodes: [g] } })), // broken workflows
  fc.constant('{"prompt":' + '['.repeat(5000)),
);

// node:http with a keep-alive agent: several times cheaper per request than fetch, which matters for 10,000 of them.
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
afterAll(() => agent.destroy());
function rawPost(path: string, body: string, contentType = 'application/json'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('malformed input', () => {
  it('answers 10,000 malformed /api/prompt bodies with a 4xx JSON message and keeps working', async () => {
    const bodies = fc.sample(malformedBody, { numRuns: 10_000, seed: 42 });
    let done = 0;
    const worker = async () => {
      while (done < bodies.length) {
        const body = bodies[done++]!;
        const { status, text } = await rawPost('/api/prompt', body);
        expectClientError(status, text, body.slice(0, 200));
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect((await getJson(url, '/api/queue')).body).toEqual({ running: [], pending: [] });
    // Still alive and still correct.
    const ok = await postJson(url, '/api/prompt', { prompt: diamondGraph() });
    expect(ok.status).toBe(200);
    await server.queue.idle();
  }, 120_000);

  it('answers malformed bodies on the other JSON routes with 4xx', async () => {
    for (const [path, body] of [
      ['/api/queue', '{"delete":"all"}'],
      ['/api/queue', '{"clear":false}'],
      ['/api/queue', 'nope'],
      ['/api/history', '{"delete":[1,2]}'],
      ['/api/interrupt', '{"promptId":5}'],
      ['/api/prompt', JSON.stringify({ prompt: diamondGraph(), front: 'yes' })],
    ] as const) {
      const { status, text } = await rawPost(path, body);
      expectClientError(status, text, `${path} ${body}`);
    }
    const tooBig = await rawPost('/api/prompt', JSON.stringify({ prompt: { x: 'a'.repeat(17 * 1024 * 1024) } }));
    expect(tooBig.status).toBe(413);
  });

  it('answers malformed WebSocket frames with an error message and keeps the connection', async () => {
    const client = await TestClient.connect(url);
    const frames = fc.sample(
      fc.oneof(
        fc.string({ maxLength: 100 }).map((s) => ({ data: s as string | Uint8Array, binary: false })),
        fc.jsonValue().map((v) => ({ data: JSON.stringify(v) as string | Uint8Array, binary: false })),
        fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: b as string | Uint8Array, binary: true })),
        fc.record({ type: fc.string(), data: fc.jsonValue() }).map((v) => ({ data: JSON.stringify(v) as string | Uint8Array, binary: false })),
      ),
      { numRuns: 1000, seed: 7 },
    );
    for (const f of frames) client.ws.send(f.data, { binary: f.binary });
    await client.waitFor((c) => c.of('error').length === frames.length, 20_000);
    for (const m of client.of('error')) {
      expect(m.data.status).toBe(400);
      expect(JSON.stringify(m)).not.toMatch(STACK);
    }
    client.ws.send(JSON.stringify({ type: 'ping' }));
    await client.waitFor((c) => c.of('pong').length === 1);
    // An oversized frame closes that socket (1009), and only that one.
    const closed = new Promise<number>((r) => client.ws.once('close', (code) => r(code)));
    client.ws.send('x'.repeat(128 * 1024));
    expect(await closed).toBe(1009);
    const other = await TestClient.connect(url);
    other.ws.send(JSON.stringify({ type: 'ping' }));
    await other.waitFor((c) => c.of('pong').length === 1);
    other.close();
  });
});

describe('path confinement', () => {
  it('serves a file inside the output folder', async () => {
    const res = await fetch(`${url}/api/view?filename=fine.txt&type=output`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('fine');
  });

  it('refuses every traversal attempt on /api/view', async () => {
    const attempts = [
      'filename=../package.json',
      'filename=..%2F..%2Fpackage.json',
      'filename=%2Fetc%2Fpasswd',
      'filename=secret.txt&subfolder=..%2F..%2F' + encodeURIComponent(outside.slice(1)),
      'filename=secret.txt&subfolder=' + encodeURIComponent(outside),
      'filename=passwd&subfolder=%2Fetc',
      'filename=package.json&subfolder=..',
      'filename=package.json&subfolder=a%2F..%2F..%2F..',
      'filename=..%5C..%5Cpackage.json',
      'filename=package.json&subfolder=..%5C..',
      'filename=fine.txt%00.png',
      'filename=secret.txt&subfolder=escape',
      'filename=secret-link.txt',
      'filename=..',
      'filename=.',
      'filename=queue.json&subfolder=..%2Fstate',
      'filename=fine.txt&type=..',
      'filename=fine.txt&type=state',
      'filename[]=a&filename[]=b',
      'filename=x&subfolder[a]=b',
      'filename=C:%5CWindows%5Cwin.ini',
      'filename=win.ini&subfolder=C:%5CWindows',
    ];
    for (const q of attempts) {
      const res = await fetch(`${url}/api/view?${q}`);
      const text = await res.text();
      expectClientError(res.status, text, q);
      expect(text).not.toContain('TOP-SECRET');
    }
  });

  it('refuses random traversal-shaped names on /api/view', async () => {
    const seg = fc.constantFrom('..', '.', '', 'escape', 'a', '%2e%2e', '..%2f', '/', '\\', '\0', 'secret.txt', outside);
    const names = fc.sample(fc.tuple(fc.array(seg, { maxLength: 4 }), fc.array(seg, { maxLength: 4 })), { numRuns: 400, seed: 3 });
    for (const [a, b] of names) {
      const filename = [...a, 'secret.txt'].join('/');
      const subfolder = b.join('/');
      const res = await fetch(`${url}/api/view?filename=${encodeURIComponent(filename)}&subfolder=${encodeURIComponent(subfolder)}`);
      const text = await res.text();
      expect(text).not.toContain('TOP-SECRET');
      if (res.status !== 200) expectClientError(res.status, text, `${filename} | ${subfolder}`);
    }
  });

  async function upload(fields: Record<string, string>, file: { name: string; data: Uint8Array } | null) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    if (file) form.append('image', new Blob([new Uint8Array(file.data)]), file.name);
    const res = await fetch(`${url}/api/upload`, { method: 'POST', body: form });
    return { status: res.status, text: await res.text() };
  }

  it('uploads an image into input/ and refuses traversal, non-images and oversize files', async () => {
    const png = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#f00' } }).png().toBuffer();
    const ok = await upload({}, { name: 'cat.png', data: png });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toEqual({ name: 'cat.png', subfolder: '', type: 'input' });
    expect(existsSync(join(server.paths.input, 'cat.png'))).toBe(true);
    const again = await upload({ subfolder: 'pets' }, { name: 'cat.png', data: png });
    expect(JSON.parse(again.text)).toEqual({ name: 'cat.png', subfolder: 'pets', type: 'input' });
    const dup = await upload({ subfolder: 'pets' }, { name: 'cat.png', data: png });
    expect(JSON.parse(dup.text).name).toBe('cat (1).png');

    mkdirSync(join(server.paths.input, 'pets'), { recursive: true });
    symlinkSync(outside, join(server.paths.input, 'out-link'));
    for (const [fields, name] of [
      [{}, '../evil.png'],
      [{}, '..\\evil.png'],
      [{}, '/tmp/evil.png'],
      [{}, '.hidden.png'],
      [{ subfolder: '../..' }, 'evil.png'],
      [{ subfolder: outside }, 'evil.png'],
      [{ subfolder: 'pets/../../..' }, 'evil.png'],
      [{ subfolder: 'out-link' }, 'evil.png'],
      [{ type: 'output' }, 'evil.png'],
      [{ type: '../state' }, 'evil.png'],
    ] as [Record<string, string>, string][]) {
      const r = await upload(fields, { name, data: png });
      expectClientError(r.status, r.text, `${JSON.stringify(fields)} ${name}`);
    }
    expect(existsSync(join(outside, 'evil.png'))).toBe(false);
    expect(existsSync(join(server.paths.dataDir, 'evil.png'))).toBe(false);

    const notImage = await upload({}, { name: 'x.png', data: new TextEncoder().encode('#!/bin/sh\nrm -rf /') });
    expect(notImage.status).toBe(415);
    const none = await upload({}, null);
    expectClientError(none.status, none.text, 'no file');
    const huge = await upload({}, { name: 'big.png', data: new Uint8Array(33 * 1024 * 1024).fill(7) });
    expect(huge.status).toBe(413);
    const garbage = await rawPost('/api/upload', '--x\r\nnonsense', 'multipart/form-data; boundary=x');
    expectClientError(garbage.status, garbage.text, 'garbage multipart');
  });
});

describe('access control', () => {
  it('requires the token on every request and the WebSocket upgrade when listening beyond loopback', async () => {
    const open = await startTestServer({ host: '0.0.0.0', token: undefined });
    try {
      expect(open.token).toMatch(/^[\w-]{20,}$/);
      const base = `http://127.0.0.1:${open.port}`;
      for (const path of ['/api/object_info', '/api/queue', '/api/view?filename=x', '/', '/api/system_stats']) {
        const res = await fetch(`${base}${path}`);
        expect(res.status, path).toBe(401);
      }
      expect((await postJson(base, '/api/prompt', { prompt: diamondGraph() })).status).toBe(401);
      expect((await fetch(`${base}/api/queue`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${base}/api/queue`, { headers: { authorization: `Bearer ${open.token}` } })).status).toBe(200);
      const viaQuery = await fetch(`${base}/api/queue?token=${open.token}`);
      expect(viaQuery.status).toBe(200);
      const cookie = viaQuery.headers.get('set-cookie')!.split(';')[0]!;
      expect((await fetch(`${base}/api/queue`, { headers: { cookie } })).status).toBe(200);
      await expect(TestClient.connect(base)).rejects.toThrow(/401/);
      const ws = await TestClient.connect(`${base}`, { headers: { authorization: `Bearer ${open.token}` } });
      await ws.waitFor((c) => c.of('status').length === 1);
      ws.close();
    } finally {
      await open.dispose();
    }
  });

  it('on loopback refuses other Host names (DNS rebinding) and cross-site origins', async () => {
    const raw = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: server.port, path: '/api/queue', headers }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await raw({ host: `localhost:${server.port}` })).toBe(200);
    expect(await raw({ host: `evil.example:${server.port}` })).toBe(403);
    expect(await raw({ host: `127.0.0.1:${server.port}`, origin: 'https://evil.example' })).toBe(403);
    expect(await raw({ host: `127.0.0.1:${server.port}`, origin: `http://localhost:5173` })).toBe(200);
  });
});

export type { ApiGraph };
