// The Train node's sample strip plays video samples in Debian's Chromium: graphs/quickstart-video.json (steps
// shortened: 2 training steps, one per expert, 2 sampler steps) runs on the built-in tiny Wan 2.2 I2V experts
// through the real server; the strip's animated WebP (9 frames at 16 fps) is decoded in the page and the frame
// drawn on the Train node moves on while the graph is idle, as on the Sampler (tests/editor/video-preview.test.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../../nodes/registry';
import { applyOverrides, parseSetArgument } from '../../server/graph/set';
import { workflowToApi } from '../../server/graph/workflow';
import { repoRoot } from '../../server/paths';
import { launchBrowser, openEditor, registry, screenshot, startEditorServer, type EditorServer } from './harness';

const SHIPPED = ['quickstart', 'quickstart-dop', 'quickstart-flux', 'quickstart-video'];
const shipped = (name: string) => JSON.parse(readFileSync(join(repoRoot, 'graphs', `${name}.json`), 'utf8'));

let env: EditorServer;
let browser: Browser;
let page: Page;
let train: string;

beforeAll(async () => {
  const all = await loadRegistry();
  const api0 = workflowToApi(shipped('quickstart-video'), all);
  // The real node types the shipped graphs use, beside the editor tests' own.
  const types = SHIPPED.flatMap((name) => Object.values(workflowToApi(shipped(name), all)).map((n) => n.class_type));
  const nodes = [...new Set(types)].map((t) => all.get(t)!);
  const reg = registry(nodes);
  const idOf = (type: string) => Object.entries(api0).find(([, n]) => n.class_type === type)![0];
  train = idOf('Train');
  const quickstart = applyOverrides(api0, reg, [
    `${train}.steps=2`, `${train}.switchEvery=1`, `${train}.sampleEvery=0`, `${idOf('SamplerSettings')}.steps=2`, `${idOf('Sampler')}.steps=2`,
  ].map(parseSetArgument));
  env = await startEditorServer({ quickstart, nodes });
  browser = await launchBrowser();
  page = await openEditor(browser, env.url, { minNodes: Object.keys(quickstart).length });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await env?.dispose();
});

const images = (id: string) => page.evaluate((n) => (window.__loragraph!.geometry() as any).images(n), id) as Promise<{ url: string; frames: number; frameDrawn: number; durationMs: number }[]>;

describe('the Train node\'s sample strip with a video model', () => {
  it('shows the clips as an animated WebP that plays on the node', async () => {
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction((n) => window.__loragraph!.state().run.nodes[n]?.status === 'done', train, { timeout: 540_000, polling: 1000 });
    const sheets = await page.evaluate((n) => window.__loragraph!.state().run.nodes[n]!.sheets, train);
    expect(sheets.length).toBe(1);
    expect(sheets[0]!.url).toMatch(/filename=train-.*\.webp/);
    expect(sheets[0]!.sheet).toMatchObject({ frames: 9, fps: 16 });
    const clip = async () => (await images(train)).find((i) => /\.webp/.test(i.url));
    await expect.poll(async () => (await clip())?.frames ?? 0, { timeout: 30_000 }).toBe(9);
    expect(Math.abs((await clip())!.durationMs - 9 * 62.5)).toBeLessThanOrEqual(9); // 1000 / 16 ms per frame, whole ms in WebP
    const drawn = new Set<number>();
    for (let i = 0; i < 30; i++) {
      drawn.add((await clip())!.frameDrawn);
      await page.waitForTimeout(40);
    }
    expect(drawn.size).toBeGreaterThanOrEqual(4);
    await screenshot(page, 'video-train-strip');
  }, 600_000);

  // Last: it replaces the page's graph. A shipped layout whose node is shorter than its widgets draws
  // them past the node's body until something redraws it; the editor then holds a taller node than the file.
  // Loading a graph drops the previous graph's results, as opening a file does, once the run has finished (a
  // running job's results stay: after a reload they are this graph's); a stale preview would grow node 2.
  it('the shipped quickstart layouts give every node the height its widgets need', async () => {
    await page.waitForFunction(() => !window.__loragraph!.state().run.running, undefined, { timeout: 300_000, polling: 500 });
    for (const name of SHIPPED) {
      const file = shipped(name) as { nodes: { id: number; type: string; size: [number, number] }[] };
      await page.evaluate(([wf, n]) => window.__loragraph!.load(wf, n), [file, name] as const);
      expect(await page.evaluate(() => Object.keys(window.__loragraph!.state().run.nodes)), name).toEqual([]);
      const held = await page.evaluate(() => window.__loragraph!.workflow()!.nodes.map((n) => ({ id: n.id, size: n.size })));
      for (const n of file.nodes) expect(held.find((h) => h.id === n.id)?.size, `${name}: node ${n.id} (${n.type})`).toEqual(n.size);
    }
  }, 360_000);
});
