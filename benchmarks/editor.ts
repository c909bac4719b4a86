// bench:editor — loads a generated 300-node graph into the built editor in Chromium and reports how long the
// load takes and the frames per second while panning (counted with requestAnimationFrame in the page).
// Target: ≥ 50 fps. Uses its own small node types so it measures the editor, not the node library.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { z } from 'zod';
import { defineNode, input, widget } from '../nodes/define';
import { createRegistry } from '../nodes/registry';
import { createServer } from '../server/app';
import { apiToWorkflow } from '../server/graph/workflow';
import type { ApiGraph } from '../server/protocol';
import { buildEditor, CHROMIUM_ARGS } from '../tests/editor/harness';

const NODES = 300;
const PAN_SECONDS = 3;

const Source = defineNode({
  type: 'BenchSource',
  category: 'bench',
  widgets: z.object({ path: widget.path({ kind: 'models', default: 'm.safetensors' }), scale: widget.float({ default: 1, min: 0, max: 10 }) }),
  outputs: { value: 'LATENT' },
  execute: () => ({ outputs: { value: 0 } }),
});
const Step = defineNode({
  type: 'BenchStep',
  category: 'bench',
  inputs: { a: input('LATENT'), b: input('LATENT', { optional: true }) },
  widgets: z.object({
    steps: widget.int({ default: 20, min: 1, max: 1000 }),
    rate: widget.float({ default: 0.0001, min: 0, max: 1, step: 0.00001 }),
    mode: widget.combo(['fast', 'slow', 'exact']),
    prompt: widget.text({ default: 'a red star on a blue background', multiline: true }),
    enabled: widget.toggle({ default: true }),
  }),
  outputs: { value: 'LATENT' },
  execute: () => ({ outputs: { value: 0 } }),
});

/** 20 sources, then 280 steps each fed by one or two earlier nodes: a wide, deep graph like a big training setup. */
function generatedGraph(): ApiGraph {
  const api: ApiGraph = {};
  for (let i = 1; i <= 20; i++) api[String(i)] = { class_type: 'BenchSource', inputs: {} };
  for (let i = 21; i <= NODES; i++) {
    const a = String(i - 20);
    const b = String(1 + ((i * 7) % (i - 1)));
    api[String(i)] = { class_type: 'BenchStep', inputs: { a: [a, 0], b: [b, 0], steps: i } };
  }
  return api;
}

async function main() {
  const registry = createRegistry([Source, Step]);
  const workflow = apiToWorkflow(generatedGraph(), registry);
  const editorDir = await buildEditor();
  const dataDir = mkdtempSync(join(tmpdir(), 'loragraph-bench-editor-'));
  const server = await createServer({ registry, dataDir, port: 0, editorDir, graphsDir: join(dataDir, 'graphs'), log: () => {} });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    // tsx names inner functions through a __name helper that the page does not have.
    await page.addInitScript('window.__name = (f) => f');
    const t0 = Date.now();
    await page.goto(server.url);
    await page.waitForFunction(() => window.__loragraph?.ready());
    const appReady = Date.now() - t0;

    // Load: from handing the graph over until the second frame after it is drawn.
    const loadMs = await page.evaluate(async (wf) => {
      const start = performance.now();
      window.__loragraph!.load(wf);
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return performance.now() - start;
    }, workflow);
    const nodes = await page.evaluate(() => window.__loragraph!.workflow()!.nodes.length);

    // Pan for a few seconds, moving the view every frame, and count frames: at 100 % (how people work) and zoomed
    // out to see the whole graph (every node and link drawn each frame).
    const pan = (seconds: number) =>
      page.evaluate(async (secs) => {
        const geo = window.__loragraph!.geometry()!;
        const frameTimes: number[] = [];
        const start = performance.now();
        let last = start;
        await new Promise<void>((done) => {
          const tick = (now: number) => {
            frameTimes.push(now - last);
            last = now;
            const t = (now - start) / 1000;
            geo.pan(-12 * Math.cos(t * 1.3), -6 * Math.sin(t * 0.9));
            if (now - start < secs * 1000) requestAnimationFrame(tick);
            else done();
          };
          requestAnimationFrame(tick);
        });
        const elapsed = performance.now() - start;
        const sorted = frameTimes.slice(1).sort((a, b) => a - b);
        return { fps: (frameTimes.length / elapsed) * 1000, elapsed, p95: sorted[Math.floor(sorted.length * 0.95)] ?? 0 };
      }, seconds);
    const report = (label: string, r: { fps: number; elapsed: number; p95: number }) =>
      console.log(`  panning ${label}: ${r.fps.toFixed(1)} fps over ${(r.elapsed / 1000).toFixed(1)} s (p95 frame ${r.p95.toFixed(1)} ms) — target ≥ 50 fps: ${r.fps >= 50 ? 'met' : 'NOT met'}`);
    console.log(`editor: ${nodes} nodes, ${workflow.links.length} links`);
    console.log(`  app ready (page load, node library, socket): ${appReady} ms`);
    console.log(`  graph load to first frame:                 ${loadMs.toFixed(0)} ms`);
    await page.evaluate(() => window.__loragraph!.geometry()!.zoom(1));
    report('at 100 % zoom        ', await pan(PAN_SECONDS));
    if (process.env.BENCH_BASELINE) {
      await page.evaluate(() => window.__loragraph!.load(null));
      report('empty canvas (baseline)', await pan(PAN_SECONDS));
      await page.evaluate((wf) => window.__loragraph!.load(wf), workflow);
    }
    await page.evaluate(() => window.__loragraph!.geometry()!.zoom(0.5));
    report('at 50 % zoom         ', await pan(PAN_SECONDS));
    await page.evaluate((wf) => window.__loragraph!.load(wf), workflow);
    report('whole graph in view  ', await pan(PAN_SECONDS));
  } finally {
    await browser.close();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
