// /api/view serves what nodes publish from dot-named data folders — `.loragraph/` is npm start's default — and from
// dot-named folders a user picks, while dot-named names inside them, traversal and symlinks out stay refused; and
// /api/upload (busboy) keeps its limits: body size (also without a Content-Length), part count, field length.
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPaths } from '../../server/paths';
import { startTestServer, tempDir } from './harness';

const root = tempDir('lg-view-');
const outside = join(root, 'outside');
let server: Awaited<ReturnType<typeof startTestServer>>;
let png: Buffer;

beforeAll(async () => {
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret.png'), 'TOP-SECRET');
  // The data folder is dot-named, and so is the output folder the user chose instead of <data>/output.
  const paths = projectPaths(join(root, '.loragraph'), { output: join(root, '.my-out') });
  server = await startTestServer({ paths, dataDir: paths.dataDir, uploadLimitBytes: 200 * 1024 });
  png = await sharp({ create: { width: 3, height: 2, channels: 3, background: '#0a0' } }).png().toBuffer();
  writeFileSync(join(paths.temp, 'samples-8-abc.png'), png);
  mkdirSync(join(paths.output, 'star'), { recursive: true });
  writeFileSync(join(paths.output, 'star', 'grid.png'), png);
  writeFileSync(join(paths.input, 'cat.png'), png);
  writeFileSync(join(paths.temp, '.secret.png'), 'HIDDEN');
  symlinkSync(join(paths.temp, '.secret.png'), join(paths.temp, 'to-hidden.png'));
  symlinkSync(join(outside, 'secret.png'), join(paths.temp, 'to-outside.png'));
});
afterAll(async () => {
  await server.dispose();
  rmSync(root, { recursive: true, force: true });
});

const view = async (q: string) => {
  const res = await fetch(`${server.url}/api/view?${q}`);
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
};

describe('/api/view from dot-named folders', () => {
  it('serves temp, output (a folder the user picked) and input files under them', async () => {
    for (const q of ['filename=samples-8-abc.png&type=temp', 'filename=grid.png&subfolder=star&type=output', 'filename=grid.png&subfolder=star', 'filename=cat.png&type=input']) {
      const r = await view(q);
      expect(r.status, q).toBe(200);
      expect(r.type, q).toBe('image/png');
      expect(r.body.equals(png), q).toBe(true);
    }
  });

  it('still refuses dot-named names, traversal, and symlinks to hidden files or out of the folder', async () => {
    for (const q of [
      'filename=.secret.png&type=temp',
      'filename=secret.png&subfolder=.git&type=temp',
      'filename=queue.json&subfolder=../state&type=temp',
      `filename=secret.png&subfolder=${encodeURIComponent(outside)}&type=temp`,
      'filename=to-hidden.png&type=temp',
      'filename=to-outside.png&type=temp',
      'filename=x.png&type=state',
    ]) {
      const r = await view(q);
      expect(r.status, q).toBeGreaterThanOrEqual(400);
      expect(r.status, q).toBeLessThan(500);
      expect(r.body.toString(), q).not.toMatch(/TOP-SECRET|HIDDEN/);
    }
    expect((await view('filename=nothing.png&type=temp')).status).toBe(404);
  });
});

/** A multipart body by hand: fields, then files. */
function multipart(boundary: string, fields: [string, string][], files: [string, string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  for (const [name, filename, data] of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: image/png\r\n\r\n`), data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

/** Posts `body` to /api/upload, in chunks and without a Content-Length when `chunked`. */
function post(body: Buffer, contentType: string, chunked = false): Promise<{ status: number; text: string }> {
  const url = new URL(`${server.url}/api/upload`);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': contentType, ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length }) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    if (chunked) for (let i = 0; i < body.length; i += 8192) req.write(body.subarray(i, i + 8192));
    else req.write(body);
    req.end();
  });
}

describe('/api/upload through busboy', () => {
  const ct = 'multipart/form-data; boundary=XyZ';

  it('stores the image in input/ (under the dot-named data folder) and it can be viewed', async () => {
    const r = await post(multipart('XyZ', [['subfolder', 'pets']], [['image', 'dog.png', png], ['other', 'x.png', png]]), ct);
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ name: 'dog.png', subfolder: 'pets', type: 'input' });
    expect(readFileSync(join(server.paths.input, 'pets', 'dog.png')).equals(png)).toBe(true);
    expect((await view('filename=dog.png&subfolder=pets&type=input')).status).toBe(200);
  });

  it('keeps the limits: body size (also chunked, without a length), parts, field length; says what is wrong', async () => {
    const big = Buffer.alloc(300 * 1024, 7);
    expect((await post(multipart('XyZ', [], [['image', 'big.png', big]]), ct)).status).toBe(413);
    const chunked = await post(multipart('XyZ', [], [['image', 'big.png', Buffer.concat([png, big])]]), ct, true);
    expect(chunked.status, chunked.text).toBe(413);
    const parts = await post(multipart('XyZ', Array.from({ length: 40 }, (_, i) => [`f${i}`, 'v'] as [string, string]), [['image', 'a.png', png]]), ct);
    expect(parts.status).toBe(400);
    expect(parts.text).toContain('too many multipart parts');
    const long = await post(multipart('XyZ', [['subfolder', 'x'.repeat(70_000)]], [['image', 'a.png', png]]), ct);
    expect([long.status, long.text]).toEqual([400, expect.stringContaining('too long')]);
    const noBoundary = await post(Buffer.from('x'), 'multipart/form-data');
    expect([noBoundary.status, noBoundary.text]).toEqual([400, expect.stringContaining('boundary')]);
    const notForm = await post(Buffer.from('{}'), 'application/json');
    expect(notForm.status).toBe(400);
    const truncated = await post(Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc'), ct);
    expect(truncated.status).toBe(400);
    const noFile = await post(multipart('XyZ', [['image', 'not a file']], []), ct);
    expect([noFile.status, noFile.text]).toEqual([400, expect.stringContaining('file field named')]);
    // The server still answers afterwards.
    expect((await view('filename=samples-8-abc.png&type=temp')).status).toBe(200);
  });
});
