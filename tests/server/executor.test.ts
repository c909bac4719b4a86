// The executor on its own: content-addressed caching, re-running exactly what changed, preview-first order,
// frozen edge values, the memory budget, errors without stacks, interrupts at progress points.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { Executor } from '../../server/executor/executor';
import { projectPaths } from '../../server/paths';
import type { ApiGraph, ExecutionEvent } from '../../server/protocol';
import { validateGraph } from '../../server/validate';
import { executions, resetExecutions } from './fixtures/executions';
import { diamondGraph, slowGraph, tempDir, testRegistry } from './harness';

const registry = testRegistry();
const dataDir = tempDir();
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function valid(api: ApiGraph) {
  const v = validateGraph(api, registry);
  if (!v.ok) throw new Error(JSON.stringify(v.nodeErrors));
  return v.graph;
}

async function run(executor: Executor, api: ApiGraph, signal = new AbortController().signal) {
  const events: ExecutionEvent[] = [];
  const result = await executor.run(valid(api), { promptId: 'p', signal, emit: (e) => events.push(e) });
  return { result, events };
}

describe('executor', () => {
  beforeEach(resetExecutions);

  it('runs a graph, then runs nothing for the same graph and reports every node cached', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir) });
    const first = await run(ex, diamondGraph(2, 3));
    expect(first.result.status).toBe('success');
    expect([...executions].sort()).toEqual(['1', '2', '3', '4', '5']);
    expect(first.result.outputs['4']).toEqual({ text: ['5'] });

    resetExecutions();
    const second = await run(ex, diamondGraph(2, 3));
    expect(executions).toEqual([]);
    expect(second.result.cached).toEqual(['1', '2', '3', '4', '5']);
    expect(second.events.find((e) => e.type === 'execution_cached')?.data).toMatchObject({ nodes: ['1', '2', '3', '4', '5'] });
    // Cached output nodes still report what they show, so a fresh client sees the result.
    expect(second.result.outputs['4']).toEqual({ text: ['5'] });
  });

  it('re-executes exactly the changed node and its descendants', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir) });
    await run(ex, diamondGraph(2, 3, 0));
    resetExecutions();
    await run(ex, diamondGraph(2, 7, 0)); // node 2 changed
    expect([...executions].sort()).toEqual(['2', '3', '4', '5']);
    resetExecutions();
    await run(ex, diamondGraph(2, 7, 1)); // Add's own widget changed
    expect([...executions].sort()).toEqual(['3', '4', '5']);
    resetExecutions();
    const back = await run(ex, diamondGraph(2, 3, 0)); // the first graph is still cached
    expect(executions).toEqual([]);
    expect(back.result.outputs['4']).toEqual({ text: ['5'] });
  });

  it('treats an omitted widget and its default as the same key', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir) });
    const g = diamondGraph(2, 3, 0);
    await run(ex, g);
    resetExecutions();
    const { offset: _omit, ...rest } = g['3']!.inputs;
    await run(ex, { ...g, '3': { class_type: 'Add', inputs: rest } });
    expect(executions).toEqual([]);
  });

  it('bumping a node version invalidates its cached results', async () => {
    const { defineNode } = await import('../../nodes/define');
    const { createRegistry } = await import('../../nodes/registry');
    const mk = (version: number) =>
      defineNode({ type: 'Versioned', category: 'output', isOutput: true, version, execute: () => (executions.push('v'), { outputs: {} }) });
    const ex = new Executor({ paths: projectPaths(dataDir) });
    for (const [version, expected] of [[1, 1], [1, 1], [2, 2]] as const) {
      const v = validateGraph({ '1': { class_type: 'Versioned', inputs: {} } }, createRegistry([mk(version)]));
      if (!v.ok) throw new Error('invalid');
      await ex.run(v.graph, { promptId: 'p', signal: new AbortController().signal, emit: () => {} });
      expect(executions.length).toBe(expected);
    }
  });

  it('runs output nodes as soon as their inputs are ready (previews early)', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir) });
    // Two branches: 1 → 3 (show) and 2 → 4(slow) → 5 (show). Node 3 is ready right after 1 and must not wait.
    const g: ApiGraph = {
      '1': { class_type: 'NumberSource', inputs: { value: 1 } },
      '2': { class_type: 'NumberSource', inputs: { value: 2 } },
      '4': { class_type: 'SlowCounter', inputs: { start: ['2', 0], steps: 1, delayMs: 0 } },
      '5': { class_type: 'ShowNumber', inputs: { value: ['4', 0] } },
      '3': { class_type: 'ShowNumber', inputs: { value: ['1', 0] } },
    };
    await run(ex, g);
    expect(executions.indexOf('3')).toBe(executions.indexOf('1') + 1);
    expect(executions.indexOf('5')).toBe(executions.indexOf('4') + 1);
  });

  it('gives list inputs their values in link order', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir) });
    const { result } = await run(ex, {
      '1': { class_type: 'NumberSource', inputs: { value: 1 } },
      '2': { class_type: 'NumberSource', inputs: { value: 10 } },
      '3': { class_type: 'SumAll', inputs: { values: [['1', 0], ['2', 0], ['1', 0]] } },
      '4': { class_type: 'ShowNumber', inputs: { value: ['3', 0] } },
    });
    expect(result.outputs['4']).toEqual({ text: ['12'] });
  });

  it('freezes values on edges: a node that mutates its input fails and the upstream value is unchanged', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir), logError: () => {} });
    const g: ApiGraph = {
      '1': { class_type: 'NumberSource', inputs: { value: 1 } },
      '2': { class_type: 'MakeList', inputs: { value: ['1', 0] } },
      '3': { class_type: 'MutateList', inputs: { list: ['2', 0] } },
    };
    const { result } = await run(ex, g);
    expect(result.status).toBe('error');
    expect(result.error?.node).toBe('3');
    expect(result.error?.message).toMatch(/not extensible|read.only|frozen/i);
  });

  it('reports an execution error with node, type, message and inputs, and no stack trace', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir), logError: () => {} });
    const { result, events } = await run(ex, {
      '1': { class_type: 'NumberSource', inputs: { value: 4 } },
      '2': { class_type: 'Fail', inputs: { value: ['1', 0], message: 'the dataset folder is empty' } },
    });
    expect(result.status).toBe('error');
    const err = events.find((e) => e.type === 'execution_error')!;
    expect(err.data).toMatchObject({ node: '2', nodeType: 'Fail', message: 'the dataset folder is empty' });
    expect((err.data as { inputs: Record<string, unknown> }).inputs).toMatchObject({ message: 'the dataset folder is empty', value: expect.stringContaining('node 1 (NumberSource)') });
    expect(JSON.stringify(events)).not.toMatch(/\s+at\s+\S+\s+\(|\.ts:\d+/);
    // What ran before the failure stays cached.
    resetExecutions();
    await run(ex, { '1': { class_type: 'NumberSource', inputs: { value: 4 } }, '2': { class_type: 'ShowNumber', inputs: { value: ['1', 0] } } });
    expect(executions).toEqual(['2']);
  });

  it('honours an interrupt at the next progress point and does not cache the interrupted node', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir) });
    const controller = new AbortController();
    const g = slowGraph(200, 10);
    const pending = run(ex, g, controller.signal);
    await new Promise((r) => setTimeout(r, 150));
    const t0 = performance.now();
    controller.abort('stop');
    const { result, events } = await pending;
    expect(performance.now() - t0).toBeLessThan(100);
    expect(result.status).toBe('interrupted');
    expect(result.interruptedAt).toBe('2');
    expect(events.at(-2)).toMatchObject({ type: 'execution_interrupted', data: { node: '2', nodeType: 'SlowCounter', reason: 'stop' } });
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(1);
    resetExecutions();
    await run(ex, slowGraph(3, 0));
    expect(executions).toEqual(['2', '3']); // the source was cached; the counter was not
  });

  it('computes it/s and ETA in progress events', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir) });
    const { events } = await run(ex, slowGraph(8, 60, 100));
    const progress = events.flatMap((e) => (e.type === 'progress' ? [e.data] : []));
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ step: 8, total: 8, etaSeconds: 0, data: { loss: 1 / 8 } });
    expect(last.itPerSec).toBeGreaterThan(8);
    expect(last.itPerSec).toBeLessThan(17); // one step per ≥60 ms
    const mid = progress.find((p) => p.step === 4);
    expect(mid?.etaSeconds).toBeGreaterThan(0.1);
  });

  it('keeps the memory cache within its byte budget, dropping the least recently used', async () => {
    const { MemoryCache } = await import('../../server/executor/memoryCache');
    const cache = new MemoryCache(1000);
    const big = (n: number) => ({ byteSize: () => n });
    cache.set('a', { outputs: [big(400)] });
    cache.set('b', { outputs: [big(400)] });
    cache.get('a'); // a is now more recent than b
    cache.set('c', { outputs: [big(400)] });
    expect(cache.has('a')).toBe(true);
    expect(cache.has('b')).toBe(false);
    expect(cache.has('c')).toBe(true);
    expect(cache.stats().bytes).toBeLessThanOrEqual(1000);
    cache.set('huge', { outputs: [new Float32Array(1000)] });
    expect(cache.has('huge')).toBe(false);
  });

  it('still finishes correctly when the budget is too small to keep anything', async () => {
    const ex = new Executor({ paths: projectPaths(dataDir), cacheBytes: 1 });
    const { result } = await run(ex, diamondGraph(5, 6));
    expect(result.outputs['4']).toEqual({ text: ['11'] });
    resetExecutions();
    await run(ex, diamondGraph(5, 6));
    expect(executions.length).toBe(5); // nothing could be kept
  });

  it('gives each node key a work dir on disk that survives a new executor (the disk tier)', async () => {
    const g: ApiGraph = { '1': { class_type: 'NumberSource', inputs: { value: 9 } }, '2': { class_type: 'WorkDirProbe', inputs: { value: ['1', 0] } } };
    const a = await run(new Executor({ paths: projectPaths(dataDir) }), g);
    const dir = a.result.outputs['2']!.text![0]!;
    expect(dir.startsWith(join(dataDir, 'cache'))).toBe(true);
    expect(readFileSync(join(dir, 'checkpoint.txt'), 'utf8')).toBe('9');
    const b = await run(new Executor({ paths: projectPaths(dataDir) }), g);
    expect(b.result.outputs['2']!.text![0]).toBe(dir);
    expect(existsSync(join(dir, 'checkpoint.txt'))).toBe(true);
  });
});
