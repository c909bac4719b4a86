// bench:editor — loads a generated 300-node graph into the built editor in Chromium and reports how long the
// load takes and the frames per second while panning by dragging the canvas with the mouse (counted with
// requestAnimationFrame in the page), with and without the editor's moving-picture path, and their ratio.
// Target: ≥ 50 fps. Uses its own small node types so it measures the editor, not the node library.
// BENCH_BASELINE=1 adds an empty canvas; BENCH_PROFILE=1 prints where the page spent its time in each drag.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
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

/** CPU time (user + system, ms) used so far by the processes this one started (Chromium's browser, renderer, GPU
 *  and utility processes): per frame, a cost that does not depend on what else the machine is running. */
function childrenCpuMs(): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the parenthesised command name: state ppid … utime(14) stime(15) (1-based over the whole line).
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(name), { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // The process ended while we looked.
    }
  }
  const mine = new Set([process.pid]);
  let total = 0;
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, st] of stats) {
      if (!mine.has(pid) && mine.has(st.ppid)) {
        mine.add(pid);
        total += st.ticks;
        grew = true;
      }
    }
  }
  return (total * 1000) / 100; // USER_HZ is 100 on Linux
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** The functions the page spent its own time in while panning (V8 sampling profile), largest first. */
function printSelfTime(profile: CpuProfile, top = 15): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!;
    const dt = profile.timeDeltas[i] ?? 0;
    const file = f.url.split('/').pop() ?? '';
    const key = f.url ? `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}` : f.functionName;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`      ${((us / total) * 100).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(5)} ms  ${name}`);
  }
}

async function main() {
  const registry = createRegistry([Source, Step]);
  const workflow = apiToWorkflow(generatedGraph(), registry);
  // BENCH_PROFILE=1: an unminified build (readable names) and a CPU profile of each pan, summarised by self time.
  const profiling = Boolean(process.env.BENCH_PROFILE);
  const editorDir = await buildEditor({ minify: !profiling });
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

    // Pan by dragging the canvas with the middle mouse button for a few seconds, as a user does (it pans wherever it
    // starts; at 100 % this graph leaves no empty canvas for a left-button drag): pointer events on the canvas (down,
    // one move per frame, up), handled by litegraph's own drag code and drawn by the editor as any drag is
    // (canvas/panBlit moves the picture). The events are dispatched in the page, one per frame like a mouse, since
    // input sent over the devtools protocol is acknowledged too slowly to keep up with 60 frames a second here.
    // Every frame counted (requestAnimationFrame) is a frame in which the view moved. Each view is dragged twice: with
    // every frame redrawn in full (the editor without panBlit), and as the editor draws a drag (the picture moved,
    // bands of margin drawn as they come into view).
    const pan = (seconds: number) =>
      page.evaluate(async (secs) => {
        const hook = window.__loragraph!;
        const canvas = document.querySelector<HTMLCanvasElement>('[data-testid=graph-canvas]')!;
        const r = canvas.getBoundingClientRect();
        const spot = { x: r.left + r.width / 2, y: r.top + r.height / 2 };
        const [ax, ay] = [Math.min(500, r.width / 2 - 20), Math.min(250, r.height / 2 - 20)];
        const pointer = (type: string, x: number, y: number, buttons: number) =>
          canvas.dispatchEvent(new PointerEvent(type, { clientX: x, clientY: y, buttons, button: 1, pointerId: 1, pointerType: 'mouse', isPrimary: true, bubbles: true, cancelable: true, composed: true }));
        const before = hook.frames();
        pointer('pointerdown', spot.x, spot.y, 4);
        const frameTimes: number[] = [];
        const start = performance.now();
        let last = start;
        await new Promise<void>((done) => {
          const tick = (now: number) => {
            frameTimes.push(now - last);
            last = now;
            const t = (now - start) / 1000;
            pointer('pointermove', spot.x + ax * Math.sin(t * 1.3), spot.y + ay * Math.sin(t * 0.9), 4);
            if (now - start < secs * 1000) requestAnimationFrame(tick);
            else done();
          };
          requestAnimationFrame(tick);
        });
        const elapsed = performance.now() - start;
        const after = hook.frames();
        pointer('pointerup', spot.x, spot.y, 0);
        const sorted = frameTimes.slice(1).sort((a, b) => a - b);
        return { fps: (frameTimes.length / elapsed) * 1000, elapsed, p95: sorted[Math.floor(sorted.length * 0.95)] ?? 0, full: after.full - before.full, moved: after.moved - before.moved };
      }, seconds);
    const cdp = profiling ? await page.context().newCDPSession(page) : null;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    }
    const drag = async (label: string, movedPixels: boolean) => {
      await page.evaluate((on) => window.__loragraph!.panByMovingPixels(on), movedPixels);
      if (cdp) await cdp.send('Profiler.start');
      const cpu0 = childrenCpuMs();
      const r = await pan(PAN_SECONDS);
      const cpuPerFrame = (childrenCpuMs() - cpu0) / Math.max(1, r.full + r.moved);
      const how = movedPixels ? 'moved picture' : 'full redraws';
      console.log(`  dragging ${label} (${how.padEnd(13)}): ${r.fps.toFixed(1).padStart(4)} fps over ${(r.elapsed / 1000).toFixed(1)} s, p95 frame ${r.p95.toFixed(1).padStart(5)} ms, ${r.full} full + ${r.moved} moved frames, Chromium CPU ${cpuPerFrame.toFixed(1).padStart(4)} ms/frame — target ≥ 50 fps: ${r.fps >= 50 ? 'met' : 'NOT met'}`);
      if (cdp) printSelfTime((await cdp.send('Profiler.stop')).profile as CpuProfile);
      return r.fps;
    };
    const both = async (label: string) => {
      const full = await drag(label, false);
      const moved = await drag(label, true);
      console.log(`    ratio: ${(moved / full).toFixed(2)}× the frame rate of full redraws`);
    };
    console.log(`editor: ${nodes} nodes, ${workflow.links.length} links; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (${cpus().length} cores)`);
    console.log(`  app ready (page load, node library, socket): ${appReady} ms`);
    console.log(`  graph load to first frame:                 ${loadMs.toFixed(0)} ms`);
    console.log('  panning = a middle-button drag: pointer events on the canvas, one move per frame, through litegraph\'s drag handling');
    if (process.env.BENCH_BASELINE) {
      await page.evaluate(() => window.__loragraph!.load(null));
      await drag('empty canvas (baseline)', false);
      await page.evaluate((wf) => window.__loragraph!.load(wf), workflow);
    }
    await page.evaluate(() => window.__loragraph!.geometry()!.zoom(1));
    await both('at 100 % zoom        ');
    await page.evaluate(() => window.__loragraph!.geometry()!.zoom(0.5));
    await both('at 50 % zoom         ');
    await page.evaluate((wf) => window.__loragraph!.load(wf), workflow);
    await both('whole graph in view  ');
    console.log(`  load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await browser.close();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
