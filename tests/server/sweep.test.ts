// Sweeps: a graph expands into one job per combination of swept values; a training graph gets a shared job that
// caches its datasets' latents with the Train node's VAE; bad sweeps are refused naming the axis; `loragraph run
// --sweep` runs every variant and prints their results; POST /api/prompt queues a Sweep node's variants.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry, type NodeRegistry } from '../../nodes/registry';
import { repoRoot } from '../../server/paths';
import type { HistoryEntry } from '../../server/protocol';
import { expandSweep, parseSweepArgument, sweepJobs, takeSweepNodes } from '../../server/sweep';
import { trainGraph } from '../e2e/fixtures';
import { fixtureNodesDir, getJson, postJson, slowGraph, startTestServer, tempDir, testRegistry } from './harness';

const dir = tempDir();
let real: NodeRegistry;
beforeAll(async () => {
  real = await loadRegistry();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('expanding a sweep', () => {
  it('parses "<node>.<widget>=v1,v2" and refuses anything else', () => {
    expect(parseSweepArgument('Optimizer.learningRate=1e-4, 3e-4,1e-3')).toEqual({ widget: 'Optimizer.learningRate', values: ['1e-4', '3e-4', '1e-3'] });
    expect(() => parseSweepArgument('learningRate=1')).toThrow(/expected "<node title or id>.<widget>=<value>,<value>,…"/);
    expect(() => parseSweepArgument('Optimizer.learningRate=')).toThrow(/expected/);
  });

  it('makes every combination, with values parsed by the widget\'s kind', () => {
    const plan = expandSweep(slowGraph(), testRegistry(), [
      { widget: 'Slow counter.steps', values: ['2', '3'] },
      { widget: '1.value', values: [10, 20] },
    ]);
    expect(plan.shared).toBeNull(); // no Train node: nothing to cache up front
    expect(plan.variants.map((v) => v.settings)).toEqual([
      { 'Slow counter.steps': 2, '1.value': 10 },
      { 'Slow counter.steps': 2, '1.value': 20 },
      { 'Slow counter.steps': 3, '1.value': 10 },
      { 'Slow counter.steps': 3, '1.value': 20 },
    ]);
    expect(plan.variants.map((v) => [v.api['2']!.inputs.steps, v.api['1']!.inputs.value])).toEqual([[2, 10], [2, 20], [3, 10], [3, 20]]);
  });

  it('refuses a sweep naming no node, no widget, or a value of the wrong kind', () => {
    const r = testRegistry();
    expect(() => expandSweep(slowGraph(), r, [{ widget: 'Nobody.steps', values: [1] }])).toThrow(/sweep "Nobody.steps": no node titled or with id "Nobody"/);
    expect(() => expandSweep(slowGraph(), r, [{ widget: 'Slow counter.speed', values: [1] }])).toThrow(/SlowCounter has no widget "speed"/);
    expect(() => expandSweep(slowGraph(), r, [{ widget: 'Slow counter.steps', values: ['many'] }])).toThrow(/"many" is not a number/);
    expect(() => expandSweep(slowGraph(), r, [{ widget: '2.steps', values: Array.from({ length: 17 }, (_, i) => i + 1) }, { widget: '1.value', values: Array.from({ length: 16 }, (_, i) => i) }])).toThrow(/272 jobs; at most 256/);
  });

  it('gives a training sweep a shared job that caches the dataset\'s latents and captions with the Train node\'s VAE and CLIP', () => {
    const plan = expandSweep(trainGraph({ steps: 2 }), real, [{ widget: 'Optimizer.learningRate', values: ['1e-4', '1e-3'] }]);
    const shared = plan.shared!;
    // Load Model and Dataset (not the swept Optimizer, not Train), and a preview so the Dataset node runs.
    expect(Object.values(shared).map((n) => n.class_type).sort()).toEqual(['Dataset', 'LoadModel', 'PreviewImage']);
    expect(shared['2']!.inputs).toMatchObject({ vae: ['1', 2], clip: ['1', 1], cacheLatents: true, cacheTextEmbeddings: true });
    const jobs = sweepJobs(plan, { clientId: 'c' });
    expect(jobs.map((j) => [j.sweep!.index, j.sweep!.shared ?? false])).toEqual([[0, true], [1, false], [2, false]]);
    // Sweeping what the datasets read from (the model) leaves nothing to share.
    expect(expandSweep(trainGraph({ steps: 2 }), real, [{ widget: '1.checkpoint', values: ['a.safetensors', 'b.safetensors'] }]).shared).toBeNull();
  });

  it('takes Sweep nodes out of the graph as axes', () => {
    const g = { ...slowGraph(), '9': { class_type: 'Sweep', inputs: { widget: 'Slow counter.steps', values: '4, 5' } } };
    const { api, axes } = takeSweepNodes(g);
    expect(api['9']).toBeUndefined();
    expect(axes).toEqual([{ widget: 'Slow counter.steps', values: ['4', '5'] }]);
  });
});

describe('sweeps through the CLI and the server', () => {
  it('loragraph run --sweep runs each variant and prints their results', () => {
    const file = join(dir, 'sweep.json');
    writeFileSync(file, JSON.stringify(slowGraph(2, 0, 0)));
    const r = spawnSync(join(repoRoot, 'bin', 'loragraph.js'), ['run', file, '--sweep', 'Slow counter.steps=2,5', '--nodes', fixtureNodesDir, '--data-dir', join(dir, 'data')], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sweep 1\/2: Slow counter\.steps=2[\s\S]*sweep 2\/2: Slow counter\.steps=5/);
    // The second variant reuses the first one's unchanged upstream (the number source).
    expect(r.stderr).toMatch(/sweep 2\/2[\s\S]*cached: Number \[1\]/);
    expect(r.stdout).toMatch(/sweep results:\n {2}Slow counter\.steps=2: success, final loss 0\.5000\n?.*\n? {2}Slow counter\.steps=5: success, final loss 0\.2000/);
  });

  it('POST /api/prompt queues one job per value of a Sweep node, and history keeps their settings', async () => {
    const server = await startTestServer();
    try {
      const g = { ...slowGraph(2, 0, 0), '9': { class_type: 'Sweep', inputs: { widget: 'Slow counter.steps', values: '3,4' } } };
      const r = await postJson(server.url, '/api/prompt', { prompt: g });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const ids = (r.body.sweep.jobs as { promptId: string }[]).map((j) => j.promptId);
      expect(ids).toHaveLength(2);
      await server.queue.idle();
      const h = (await getJson(server.url, '/api/history')).body as Record<string, HistoryEntry>;
      expect(ids.map((id) => [h[id]!.sweep!.settings, h[id]!.outputs['3']!.text, h[id]!.finalLoss])).toEqual([
        [{ 'Slow counter.steps': 3 }, ['3'], 1 / 3],
        [{ 'Slow counter.steps': 4 }, ['4'], 1 / 4],
      ]);
      const bad = await postJson(server.url, '/api/prompt', { prompt: slowGraph(), sweep: [{ widget: 'Nobody.x', values: [1] }] });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/no node titled or with id "Nobody"/);
    } finally {
      await server.dispose();
    }
  });
});
