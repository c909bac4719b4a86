// Training end to end with the real nodes: through `loragraph run` (kill -9 mid-run, then run again:
// it resumes and ends with the same weights as an uninterrupted run; save-every keeps N checkpoints),
// and through a live server (chained Train nodes: changing the second re-runs only the second).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { loadRegistry } from '../../nodes/registry';
import { createServer } from '../../server/app';
import { dataDirWithRandomTiny, trainGraph } from './fixtures';

let dataDir: string;
beforeAll(async () => { dataDir = await dataDirWithRandomTiny(); });
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const bin = join(repoRoot, 'bin', 'loragraph.js');
function cli(data: string, file: string, ...set: string[]) {
  return spawnSync(bin, ['run', file, '--data-dir', data, ...set.flatMap((s) => ['--set', s])], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
}
const loraTensors = async (data: string) => (await loadSafetensors(join(data, 'output', 'e2e.safetensors'))).tensors;
const checkpointsIn = (data: string) => readdirSync(join(data, 'cache')).filter((d) => d.startsWith('Train')).flatMap((d) => {
  const c = join(data, 'cache', d, 'checkpoints');
  return existsSync(c) ? readdirSync(c) : [];
});

describe('training through the CLI', () => {
  it('a run killed mid-training resumes from its checkpoint and ends with the weights of an uninterrupted run', async () => {
    const file = join(dataDir, 'train.json');
    writeFileSync(file, JSON.stringify(trainGraph({ steps: 12, saveEvery: 3 })));
    // Uninterrupted, in its own data folder (same model file).
    const clean = await dataDirWithRandomTiny();
    const a = cli(clean, file);
    expect(a.status, a.stderr).toBe(0);
    expect(checkpointsIn(clean).sort()).toEqual(['step-00000009.safetensors', 'step-00000012.safetensors']); // maxSavesToKeep 2
    // Periodic LoRA files beside them, as ai-toolkit names them.
    expect(readdirSync(join(clean, 'output', 'my-lora')).sort()).toEqual(['my-lora_000000009.safetensors', 'my-lora_000000012.safetensors']);
    // Killed once a mid-run checkpoint exists.
    const child = spawn(bin, ['run', file, '--data-dir', dataDir], { cwd: repoRoot, stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        let found = false;
        // Only a finished checkpoint (not its temporary file) counts.
        try { found = checkpointsIn(dataDir).some((f) => /^step-0000000[36]\.safetensors$/.test(f)); } catch { /* cache not made yet */ }
        if (found) { clearInterval(poll); child.kill('SIGKILL'); resolve(); }
        else if (Date.now() - t0 > 240_000) { clearInterval(poll); child.kill('SIGKILL'); reject(new Error('no checkpoint appeared')); }
      }, 200);
    });
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(join(dataDir, 'output', 'e2e.safetensors'))).toBe(false);
    const b = cli(dataDir, file);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr + b.stdout, b.stderr + b.stdout).toMatch(/resumed from/);
    const ta = await loraTensors(clean), tb = await loraTensors(dataDir);
    expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
    for (const [k, v] of ta) expect(Buffer.from(tb.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), k).toBe(true);
    rmSync(clean, { recursive: true, force: true });
  });

  it('each optimizer trains', () => {
    const file = join(dataDir, 'opt.json');
    for (const optimizer of ['AdamW8bit', 'Adafactor', 'Lion', 'Prodigy', 'SGD']) {
      writeFileSync(file, JSON.stringify(trainGraph({ steps: 2, optimizer, lr: optimizer === 'Prodigy' ? 1 : 1e-3 })));
      const r = cli(dataDir, file);
      expect(r.status, `${optimizer}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toMatch(/Train A \[5\] .*2\/2/);
    }
  });

  it('with EMA on, Save LoRA can write the EMA or the raw weights, and they differ', async () => {
    const file = join(dataDir, 'ema.json');
    writeFileSync(file, JSON.stringify(trainGraph({ steps: 4, ema: true })));
    expect(cli(dataDir, file).status).toBe(0);
    const ema = await loraTensors(dataDir);
    const meta = (await loadSafetensors(join(dataDir, 'output', 'e2e.safetensors'))).metadata;
    expect(meta.ss_steps).toBe('4');
    expect(JSON.parse(meta.loragraph_workflow)['5'].class_type).toBe('Train');
    const raw = cli(dataDir, file, '6.useEma=false');
    expect(raw.status, raw.stderr).toBe(0);
    const plain = await loraTensors(dataDir);
    const key = [...ema.keys()].find((k) => k.endsWith('lora_up.weight'))!;
    expect(Buffer.from(plain.get(key)!.data.buffer).equals(Buffer.from(ema.get(key)!.data.buffer))).toBe(false);
  });
});

describe('chained Train nodes on a live server', () => {
  it('changing the second Train node re-runs only it', async () => {
    const registry = await loadRegistry();
    const server = await createServer({ registry, dataDir, port: 0, editorDir: null, log: () => {} });
    try {
      const post = async (graph: unknown) => {
        const r = await fetch(`${server.url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: graph }) });
        const body = await r.json() as { promptId: string };
        for (;;) {
          const h = await (await fetch(`${server.url}/api/history/${body.promptId}`)).json() as Record<string, { status: string; executed: string[]; cached: string[] }>;
          const e = h[body.promptId] ?? (h as unknown as { status: string; executed: string[] });
          if (e && (e as { status?: string }).status && (e as { status: string }).status !== 'running') return e as { status: string; executed: string[]; cached: string[] };
          await new Promise((r) => setTimeout(r, 300));
        }
      };
      const first = await post(trainGraph({ steps: 4, secondSteps: 3 }));
      expect(first.status).toBe('success');
      expect(first.executed).toEqual(expect.arrayContaining(['5', '8']));
      const second = await post(trainGraph({ steps: 4, secondSteps: 3, secondLr: 2e-4 }));
      expect(second.status).toBe('success');
      expect(second.executed.sort()).toEqual(['6', '7', '8']);
      expect(second.cached).toEqual(expect.arrayContaining(['1', '2', '3', '4', '5']));
    } finally {
      await server.close();
    }
  });
});
