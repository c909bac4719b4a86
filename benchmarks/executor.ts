// npm run bench:executor — the executor's own cost: per-node overhead on a graph of 500 trivial nodes, and the
// time from "a widget changed" to "the re-run finished" for a one-node change (in-process and over HTTP + WS).
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { z } from 'zod';
import { defineNode, input, widget } from '../nodes/define';
import { createRegistry } from '../nodes/registry';
import { createServer } from '../server/app';
import { Executor } from '../server/executor/executor';
import { projectPaths } from '../server/paths';
import type { ApiGraph } from '../server/protocol';
import { validateGraph } from '../server/validate';

const Const = defineNode({
  type: 'Const',
  category: 'utils',
  widgets: z.object({ value: widget.float({ default: 0, min: -1e9, max: 1e9 }) }),
  outputs: { value: 'NUMBER' },
  execute: ({ widgets }) => ({ outputs: { value: widgets.value } }),
});
const Add = defineNode({
  type: 'Add',
  category: 'utils',
  inputs: { a: input<number>('NUMBER'), b: input<number>('NUMBER') },
  widgets: z.object({ offset: widget.float({ default: 0, min: -1e9, max: 1e9 }) }),
  outputs: { sum: 'NUMBER' },
  execute: ({ inputs, widgets }) => ({ outputs: { sum: inputs.a + inputs.b + widgets.offset } }),
});
const Show = defineNode({
  type: 'Show',
  category: 'output',
  isOutput: true,
  inputs: { value: input<number>('NUMBER') },
  execute: ({ inputs }) => ({ outputs: {}, ui: { text: [String(inputs.value)] } }),
});
const registry = createRegistry([Const, Add, Show]);

/** 500 nodes: one source, 498 adders each reading the previous node and one halfway back, one output. */
function graph(changedOffset = 0): ApiGraph {
  const g: ApiGraph = { '0': { class_type: 'Const', inputs: { value: 1 } } };
  for (let i = 1; i < 499; i++) {
    g[String(i)] = { class_type: 'Add', inputs: { a: [String(i - 1), 0], b: [String(Math.floor(i / 2)), 0], offset: i === 498 ? changedOffset : 0 } };
  }
  g['499'] = { class_type: 'Show', inputs: { value: ['498', 0] } };
  return g;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dataDir = mkdtempSync(join(tmpdir(), 'loragraph-bench-'));

async function inProcess() {
  const paths = projectPaths(dataDir);
  const noop = () => {};
  const run = async (ex: Executor, api: ApiGraph) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const v = validateGraph(api, registry);
    if (!v.ok) throw new Error(JSON.stringify(v.nodeErrors));
    const t1 = performance.now();
    const r = await ex.run(v.graph, { promptId: 'b', signal: new AbortController().signal, emit: noop });
    const cpu = process.cpuUsage(c0);
    return { validateMs: t1 - t0, runMs: performance.now() - t1, totalMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, executed: r.executed.length };
  };
  // Warm up the JIT, then measure fresh executors (cold cache) and edits on a warm one.
  const ex = new Executor({ paths });
  for (let i = 0; i < 3; i++) {
    ex.cache.clear();
    await run(ex, graph());
  }
  const cold = [];
  for (let i = 0; i < 10; i++) {
    ex.cache.clear();
    cold.push(await run(ex, graph()));
  }
  await run(ex, graph());
  const cached = [], edits = [];
  for (let i = 0; i < 10; i++) cached.push(await run(ex, graph()));
  for (let i = 1; i <= 20; i++) edits.push(await run(ex, graph(i)));
  // What the node bodies themselves cost, called directly in the same order.
  const direct: number[] = [];
  for (let rep = 0; rep < 10; rep++) {
    const t0 = performance.now();
    const vals: number[] = [];
    vals[0] = (await Const.execute({ inputs: {}, widgets: { value: 1 }, ctx: null as never })).outputs.value as number;
    for (let i = 1; i < 499; i++) {
      const r = await Add.execute({ inputs: { a: vals[i - 1], b: vals[Math.floor(i / 2)] }, widgets: { offset: 0 }, ctx: null as never });
      vals[i] = r.outputs.sum as number;
    }
    await Show.execute({ inputs: { value: vals[498] }, widgets: {}, ctx: null as never });
    direct.push(performance.now() - t0);
  }
  const coldRun = median(cold.map((c) => c.runMs));
  const coldTotal = median(cold.map((c) => c.totalMs));
  const directMs = median(direct);
  console.log(`graph: 500 nodes (1 source, 498 adders with 2 inputs each, 1 output)`);
  console.log(`load average now: ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores (wall times suffer under load; CPU time less so)`);
  console.log(`full run, cold cache:        ${coldTotal.toFixed(2)} ms wall, ${median(cold.map((c) => c.cpuMs)).toFixed(2)} ms CPU (validate ${median(cold.map((c) => c.validateMs)).toFixed(2)} ms + execute ${coldRun.toFixed(2)} ms)`);
  console.log(`  executor overhead per node: ${(((coldRun - directMs) / 500) * 1000).toFixed(1)} µs  (node bodies called directly: ${directMs.toFixed(2)} ms in all)`);
  console.log(`  overhead incl. validation:  ${(((coldTotal - directMs) / 500) * 1000).toFixed(1)} µs per node wall, ${((median(cold.map((c) => c.cpuMs)) / 500) * 1000).toFixed(1)} µs CPU`);
  console.log(`same graph again, all cached: ${median(cached.map((c) => c.totalMs)).toFixed(2)} ms, ${cached[0]!.executed} executed`);
  console.log(`one widget changed (node 498): ${median(edits.map((c) => c.totalMs)).toFixed(2)} ms wall / ${median(edits.map((c) => c.cpuMs)).toFixed(2)} ms CPU to re-run, ${edits[0]!.executed} executed`);
  console.log(`  ratio full run / one-node re-run: ${(coldTotal / median(edits.map((c) => c.totalMs))).toFixed(1)}×`);
}

async function overServer() {
  const server = await createServer({ registry, dataDir, port: 0, editorDir: null, log: () => {} });
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
  await new Promise((r) => ws.once('open', r));
  const finished = new Map<string, () => void>();
  ws.on('message', (data, binary) => {
    if (binary) return;
    const m = JSON.parse(String(data));
    if (m.type === 'executing' && m.data.node === null) finished.get(m.data.promptId)?.();
  });
  const submit = async (api: ApiGraph) => {
    const t0 = performance.now();
    let done!: () => void;
    const whenDone = new Promise<void>((r) => (done = r));
    const res = await fetch(`${server.url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: api }) });
    const { promptId } = (await res.json()) as { promptId: string };
    finished.set(promptId, done);
    // The job may finish before the response is read; history then already has it.
    const h = await (await fetch(`${server.url}/api/history/${promptId}`)).json();
    if (!h[promptId]) await whenDone;
    return performance.now() - t0;
  };
  await submit(graph());
  for (let i = 0; i < 5; i++) await submit(graph(1000 + i));
  const times = [];
  for (let i = 0; i < 20; i++) times.push(await submit(graph(2000 + i)));
  console.log(`over HTTP + WS (POST /api/prompt → "executing null"), one widget changed: ${median(times).toFixed(2)} ms median`);
  ws.close();
  await server.close();
}

try {
  await inProcess();
  await overServer();
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
