// Queue and history survive the server process dying: kill -9 during a job, start again, and the finished jobs,
// the queued job and the cut-off job (now marked interrupted) are all still there.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import { fixtureNodesDir, getJson, postJson, slowGraph, tempDir, TestClient } from './harness';

const dataDir = tempDir();
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts `loragraph serve` as a child process on a free port and resolves with its URL. */
function serve(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    join(repoRoot, 'node_modules', '.bin', 'tsx'),
    ['server/cli.ts', 'serve', '--port', '0', '--data-dir', dataDir, '--nodes', fixtureNodesDir],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${out}`)));
  });
}

describe('restart', () => {
  it('keeps queue and history through kill -9 and marks the running job interrupted', async () => {
    const first = await serve();
    const client = await TestClient.connect(first.url);
    const quick = (await postJson(first.url, '/api/prompt', { prompt: slowGraph(1, 0, 7) })).body.promptId as string;
    await client.finished(quick);
    const slow = (await postJson(first.url, '/api/prompt', { prompt: slowGraph(1000, 20, 8) })).body.promptId as string;
    const waiting = (await postJson(first.url, '/api/prompt', { prompt: slowGraph(2, 10, 9) })).body.promptId as string;
    await client.waitFor((c) => c.of('progress', slow).length >= 2);
    client.close();
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const second = await serve();
    // The queued job may start and finish on the new server at any moment. A job leaves the queue only after its
    // history entry is written, so reading the queue first and history second always finds it in one of the two
    // (history first could miss a job that finished between the two reads: in neither list).
    const queueNow = (await getJson(second.url, '/api/queue')).body;
    const history = (await getJson(second.url, '/api/history')).body;
    expect(history[quick]).toMatchObject({ status: 'success', outputs: { '3': { text: ['8'] } } });
    expect(history[slow]).toMatchObject({ status: 'interrupted', reason: 'the server stopped while this job was running' });
    // The queued job survived and runs on the new server.
    const known = [...queueNow.running, ...queueNow.pending].map((j: { promptId: string }) => j.promptId);
    expect(known.includes(waiting) || history[waiting] !== undefined, `queue ${JSON.stringify(queueNow)}; history ${Object.keys(history)}`).toBe(true);
    const late = await TestClient.connect(second.url);
    await late.waitFor(() => true);
    for (let i = 0; i < 100; i++) {
      const h = (await getJson(second.url, `/api/history/${waiting}`)).body;
      if (h[waiting]) {
        expect(h[waiting]).toMatchObject({ status: 'success', outputs: { '3': { text: ['11'] } } });
        break;
      }
      if (i === 99) throw new Error('the queued job never ran after the restart');
      await new Promise((r) => setTimeout(r, 100));
    }
    late.close();
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });
});
