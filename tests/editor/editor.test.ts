// The editor end to end in Debian's Chromium against a real server with Train/Sampler/Dataset-shaped test nodes:
// opening the quickstart, running it with live progress, samples and the loss chart, re-running only what changed,
// editing through the node search and real drags, refused links, save/open round trips, server validation errors
// on nodes, widgets greyed out for another model family, and a page reload in the middle of training.
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiToWorkflow } from '../../server/graph/workflow';
import type { Workflow } from '../../server/protocol';
import { launchBrowser, openEditor, quickstartApi, registry, screenshot, startEditorServer, waitForGraph, type EditorServer } from './harness';

let env: EditorServer;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  env = await startEditorServer();
  browser = await launchBrowser();
  page = await openEditor(browser, env.url, { minNodes: 4 });
});
afterAll(async () => {
  await browser?.close();
  await env?.dispose();
});

const state = () => page.evaluate(() => window.__loragraph!.state());
const workflow = () => page.evaluate(() => window.__loragraph!.workflow()!) as Promise<Workflow>;
const geometry = <K extends string>(fn: K, ...args: unknown[]) =>
  page.evaluate(([f, a]) => (window.__loragraph!.geometry() as any)[f as string](...(a as unknown[])), [fn, args] as const) as Promise<any>;

const hintText = () => page.getByTestId('hint').textContent({ timeout: 200 }).catch(() => '');

async function drag(from: { x: number; y: number }, to: { x: number; y: number }) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 5 });
  await page.mouse.move(to.x, to.y, { steps: 5 });
  await page.mouse.up();
}

async function waitIdle(timeout = 30_000) {
  await page.waitForFunction(() => {
    const s = window.__loragraph!.state();
    return !s.run.running && s.queue.running.length === 0 && s.queue.pending.length === 0;
  }, undefined, { timeout });
}

/** Opens a workflow through the toolbar's file picker, as a user would. */
async function openThroughPicker(wf: Workflow, name: string) {
  await page.locator('[data-testid=open-file]').setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(wf)) });
  await page.waitForFunction((n) => window.__loragraph!.state().graphName === n, name.replace(/\.json$/, ''));
}

describe('editor', () => {
  it('opens on the quickstart graph with widgets from the node library', async () => {
    const wf = await workflow();
    expect(wf.nodes.map((n) => n.type).sort()).toEqual(['TestDataset', 'TestLoadModel', 'TestSampler', 'TestTrain']);
    expect(wf.links).toHaveLength(3);
    const s = await state();
    expect(s.graphName).toBe('quickstart');
    expect(s.pathChoices.models).toEqual(['other.safetensors', 'tiny.safetensors']);
    expect(s.connection).toBe('open');
    await screenshot(page, '01-quickstart');
  });

  it('runs it: progress on Train, the loss chart fills, samples appear on the Sampler and enlarge on click', async () => {
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => (window.__loragraph!.state().run.nodes['3']?.progress?.step ?? 0) >= 5, undefined, { timeout: 20_000 });
    const mid = await state();
    expect(mid.run.nodes['3']!.status).toBe('executing');
    expect(mid.run.nodes['3']!.progress!.total).toBe(30);
    expect(mid.run.nodes['3']!.loss.length).toBeGreaterThan(0);
    await expect.poll(() => page.locator('[data-testid=loss-chart-3] .loss-chart').getAttribute('data-points').then(Number)).toBeGreaterThan(3);
    await expect.poll(() => page.locator('[data-testid=loss-chart-3] canvas').count()).toBeGreaterThan(0);
    await screenshot(page, '02-training');

    await page.waitForFunction(() => (window.__loragraph!.state().run.nodes['4']?.previews.length ?? 0) >= 2, undefined, { timeout: 20_000 });
    await screenshot(page, '03-samples-arriving');
    await waitIdle();
    const done = await state();
    expect(done.run.nodes['4']!.images).toHaveLength(4);
    expect(done.run.nodes['4']!.images[0]).toMatch(/^api\/view\?filename=sample_/);
    expect(done.run.nodes['2']!.images).toHaveLength(3); // the dataset's grid
    expect(done.run.nodes['3']!.loss.map((p) => p.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    for (const id of ['1', '2', '3', '4']) expect(done.run.nodes[id]!.status).toBe('done');
    await screenshot(page, '04-finished');

    // The image really loaded from the server, and clicking it on the node opens it large.
    const img = await geometry('image', '4', 1);
    await page.mouse.click(img.x, img.y);
    const lightbox = page.locator('[data-testid=lightbox] img');
    await expect.poll(() => lightbox.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBe(32);
    await screenshot(page, '05-lightbox');
    await page.locator('[data-testid=lightbox]').click();
  });

  it('after one Sampler widget changes, only the Sampler executes; the rest show as cached', async () => {
    const seed = await geometry('widget', '4', 'seed');
    await page.mouse.click(seed.right - 2, seed.y); // the ▶ arrow: seed + 1
    await expect.poll(async () => (await workflow()).nodes.find((n) => n.id === 4)!.widgets_values).toEqual(['a red star', 8, 4]);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => window.__loragraph!.state().run.nodes['4']?.status === 'executing');
    await waitIdle();
    const s = await state();
    expect(['1', '2', '3'].map((id) => s.run.nodes[id]!.status)).toEqual(['cached', 'cached', 'cached']);
    expect(s.run.nodes['4']!.status).toBe('done');
    await page.getByRole('button', { name: 'History' }).click();
    await expect.poll(async () => (await state()).history.length).toBe(2);
    const [latest] = (await state()).history;
    expect(latest!.executed).toEqual(['4']);
    expect([...latest!.cached].sort()).toEqual(['1', '2', '3']);
    await expect.poll(() => page.locator('[data-testid=history-panel] img').count()).toBeGreaterThanOrEqual(8);
    await screenshot(page, '06-cached-rerun');
    await page.getByRole('button', { name: 'History' }).click();
  });

  it('adds a node from the search box, connects it, disconnects it, and refuses an invalid link with a hint', async () => {
    const spot = await geometry('emptySpot');
    await page.mouse.dblclick(spot.x, spot.y);
    const search = page.getByPlaceholder('Search nodes…');
    await search.waitFor();
    await search.fill('sampl');
    await expect.poll(() => page.locator('.node-search-detail h3').textContent()).toBe('Sampler');
    expect(await page.locator('.node-search-detail').textContent()).toContain('what to draw'); // a widget tooltip
    await search.press('Enter');
    await expect.poll(async () => (await workflow()).nodes.length).toBe(5);
    const added = (await workflow()).nodes.find((n) => ![1, 2, 3, 4].includes(Number(n.id)))!;
    expect(added.type).toBe('TestSampler');
    const id = String(added.id);

    // Train.training → new Sampler.training: a valid link.
    await drag(await geometry('slot', '3', 'output', 0), await geometry('slot', id, 'input', 0));
    await expect.poll(async () => (await workflow()).links.filter((l) => String(l[3]) === id)).toHaveLength(1);
    await screenshot(page, '07-connected');

    // Pull the link off the input and let go on empty canvas: disconnected.
    await drag(await geometry('slot', id, 'input', 0), await geometry('emptySpot'));
    await expect.poll(async () => (await workflow()).links.filter((l) => String(l[3]) === id)).toHaveLength(0);

    // Load Model's MODEL into the Sampler's TRAINING input: refused, with a hint naming both types.
    await drag(await geometry('slot', '1', 'output', 0), await geometry('slot', id, 'input', 0));
    await expect.poll(() => hintText()).toContain('Cannot connect MODEL');
    expect(await hintText()).toContain('TRAINING');
    expect((await workflow()).links.filter((l) => String(l[3]) === id)).toHaveLength(0);
    await screenshot(page, '08-refused-link');

    // Undo steps back through disconnect, connect and add; redo brings the node back.
    await page.mouse.click(spot.x, spot.y);
    const linksTo = async () => (await workflow()).links.filter((l) => String(l[3]) === id).length;
    await page.keyboard.press('Control+z');
    await expect.poll(linksTo).toBe(1);
    await page.keyboard.press('Control+z');
    await expect.poll(linksTo).toBe(0);
    expect((await workflow()).nodes).toHaveLength(5);
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await workflow()).nodes.length).toBe(4);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(async () => (await workflow()).nodes.length).toBe(5);
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await workflow()).nodes.length).toBe(4);
  });

  it('saves the graph to a file and opens it again (file picker and drag-and-drop): identical JSON', async () => {
    const downloading = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Save' }).click();
    const download = await downloading;
    expect(download.suggestedFilename()).toBe('quickstart.json');
    const saved = readFileSync((await download.path())!, 'utf8');
    const before = await workflow();

    await page.getByRole('button', { name: 'New' }).click();
    await expect.poll(async () => (await workflow()).nodes.length).toBe(0);
    await page.locator('[data-testid=open-file]').setInputFiles({ name: 'roundtrip.json', mimeType: 'application/json', buffer: Buffer.from(saved) });
    await waitForGraph(page, 4);
    expect(`${JSON.stringify(await workflow(), null, 2)}\n`).toBe(saved);
    expect(await workflow()).toEqual(before);

    await page.getByRole('button', { name: 'New' }).click();
    await page.evaluate((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'dropped.json', { type: 'application/json' }));
      const target = document.querySelector('.graph-canvas')!;
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, saved);
    await waitForGraph(page, 4);
    expect(`${JSON.stringify(await workflow(), null, 2)}\n`).toBe(saved);
    expect((await state()).graphName).toBe('dropped');
  });

  it('a graph with a missing input shows the server’s error on that node', async () => {
    const api = quickstartApi();
    delete (api['4']!.inputs as Record<string, unknown>).training;
    await openThroughPicker(apiToWorkflow(api, registry()), 'missing-input.json');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await expect.poll(() => hintText()).toContain('required input "training"');
    const s = await state();
    expect(Object.keys(s.run.validation)).toEqual(['4']);
    expect(s.run.validation['4']!.errors).toEqual([{ field: 'training', message: 'required input "training" (TRAINING) is not connected' }]);
    await screenshot(page, '09-missing-input');
  });

  it('a node grows to show its samples at 128 px or more and pushes the nodes it would cover aside', async () => {
    const api = quickstartApi(5, 10);
    api['5'] = { class_type: 'TestScale', inputs: { factor: 1 }, _meta: { title: 'below' } };
    api['6'] = { class_type: 'TestScale', inputs: { factor: 2 }, _meta: { title: 'further below' } };
    api['7'] = { class_type: 'TestScale', inputs: { factor: 3 }, _meta: { title: 'beside' } };
    const wf = apiToWorkflow(api, registry());
    const place = (id: number, x: number, y: number) => {
      const n = wf.nodes.find((m) => m.id === id)!;
      n.pos = [x, y];
    };
    place(4, 720, 40); // the Sampler, 300 × 160
    place(5, 720, 260); // right under it (300 × 160 as well)
    place(6, 720, 480); // under that one
    place(7, 1030, 40); // beside it, 10 px away: already that close, and the Sampler does not grow sideways
    await openThroughPicker(wf, 'crowded.json');
    const before = await workflow();
    const tidy = async () => {
      const ids = await geometry('nodeIds');
      const boxes = await Promise.all(ids.map((id: string) => geometry('box', id)));
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const a = boxes[i], b = boxes[j];
          const overlap = a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
          expect(overlap, `nodes ${ids[i]} and ${ids[j]} overlap`).toBe(false);
        }
      }
    };
    await tidy();
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => window.__loragraph!.state().run.nodes['4']?.status === 'done', undefined, { timeout: 30_000 });
    await waitIdle();
    await expect.poll(async () => (await geometry('images', '4')).filter((i: { complete: boolean }) => i.complete).length).toBe(4);
    const imgs = await geometry('images', '4');
    expect(imgs).toHaveLength(4);
    for (const img of imgs) {
      expect(img.naturalWidth).toBe(32);
      expect(img.nodeWidth).toBeGreaterThanOrEqual(128); // 32 px squares enlarged by whole pixels
    }
    const after = await workflow();
    const pos = (wf: Workflow, id: number) => wf.nodes.find((n) => n.id === id)!.pos as [number, number];
    expect(pos(after, 5)[1]).toBeGreaterThan(pos(before, 5)[1]);
    expect(pos(after, 6)[1]).toBeGreaterThan(pos(before, 6)[1]);
    expect(pos(after, 7)).toEqual(pos(before, 7));
    await tidy();
    await screenshot(page, '10-grown-and-pushed');
  });

  it('greys out a widget its model family does not use, with the reason as its tooltip, and keeps its value in the graph', async () => {
    const api = quickstartApi(3, 10);
    api['1'] = { class_type: 'TestLoadModel', inputs: { checkpoint: 'other.safetensors', clipSkip: 2 } };
    await openThroughPicker(apiToWorkflow(api, registry()), 'flux-graph.json');
    // Before a run the family is not known: every widget is live.
    expect((await geometry('widget', '1', 'clipSkip')).disabled).toBe(false);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitIdle();
    // Load Model reported FLUX.2: SD's clip skip is greyed out, and its tooltip says why.
    await expect.poll(async () => (await geometry('widget', '1', 'clipSkip')).disabled).toBe(true);
    expect((await geometry('widget', '1', 'checkpoint')).disabled).toBe(false);
    const clipSkip = await geometry('widget', '1', 'clipSkip');
    await page.mouse.move(clipSkip.x, clipSkip.y - 3);
    await page.mouse.move(clipSkip.x, clipSkip.y);
    await expect.poll(() => page.locator('.tooltip').textContent({ timeout: 500 }).catch(() => '')).toContain('clipSkip: not used by FLUX.2 [klein] models (only sd1)');
    await screenshot(page, '12-family-greyed-out');
    // Greyed out, not dropped: the saved graph keeps the value.
    expect((await workflow()).nodes.find((n) => n.id === 1)!.widgets_values).toEqual(['other.safetensors', 2]);

    // The same graph on an SD checkpoint: clip skip is live.
    api['1'] = { class_type: 'TestLoadModel', inputs: { checkpoint: 'tiny.safetensors', clipSkip: 2 } };
    await openThroughPicker(apiToWorkflow(api, registry()), 'sd-graph.json');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitIdle();
    await expect.poll(async () => (await state()).run.nodes['1']?.family?.id).toBe('sd1');
    expect((await geometry('widget', '1', 'clipSkip')).disabled).toBe(false);
  });

  it('reloading the page in the middle of training shows the progress again, and so does a dropped socket', async () => {
    await openThroughPicker(apiToWorkflow(quickstartApi(150, 50), registry()), 'long-train.json');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => (window.__loragraph!.state().run.nodes['3']?.progress?.step ?? 0) >= 10, undefined, { timeout: 20_000 });
    await page.reload();
    await waitForGraph(page, 4);
    expect((await state()).graphName).toBe('long-train'); // remembered across the reload
    await page.waitForFunction(() => {
      const n = window.__loragraph!.state().run.nodes['3'];
      return n?.status === 'executing' && (n.progress?.step ?? 0) > 10;
    }, undefined, { timeout: 10_000 });
    const stepAfterReload = (await state()).run.nodes['3']!.progress!.step;
    await expect.poll(async () => (await state()).run.nodes['3']!.progress!.step).toBeGreaterThan(stepAfterReload + 5);
    expect((await state()).run.nodes['1']!.status).toBe('cached');
    await screenshot(page, '11-after-reload');

    await page.evaluate(() => window.__loragraph!.dropConnection());
    await expect.poll(async () => (await state()).connection).toBe('open');
    const stepAfterDrop = (await state()).run.nodes['3']!.progress!.step;
    await expect.poll(async () => (await state()).run.nodes['3']!.progress!.step).toBeGreaterThan(stepAfterDrop);
    await page.getByRole('button', { name: 'Interrupt' }).click();
    await waitIdle();
    expect((await state()).run.nodes['3']!.status).toBe('interrupted');
  });
});

describe('editor with an access token', () => {
  it('takes ?token= from the URL, keeps it for the tab, and uses it for HTTP and the WebSocket', async () => {
    const secured = await startEditorServer({ token: 'sesame-123' });
    try {
      expect((await fetch(`${secured.url}/api/object_info`)).status).toBe(401);
      const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
      const p = await context.newPage();
      await p.goto(`${secured.url}/?token=sesame-123`);
      await waitForGraph(p, 4);
      expect(new URL(p.url()).searchParams.has('token')).toBe(false); // not left in the address bar
      await p.waitForFunction(() => window.__loragraph!.state().connection === 'open');
      // The address bar no longer has the token; a reload works from the tab's sessionStorage (API, WebSocket) and
      // the cookie the first load set (the page's own files).
      await p.reload();
      await waitForGraph(p, 4);
      await p.waitForFunction(() => window.__loragraph!.state().connection === 'open');
      expect(Object.keys((await p.evaluate(() => window.__loragraph!.state().objectInfo))!)).toContain('TestTrain');
      await context.close();
    } finally {
      await secured.dispose();
    }
  });
});
