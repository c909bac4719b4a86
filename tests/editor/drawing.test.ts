// How the canvas draws a large graph, in Debian's Chromium: live state redraws only the nodes it changed
// (canvas/areaRedraw), a canvas drag moves a picture of the scene (canvas/panBlit), and either way what it shows is
// what a full redraw of the same view shows (to the antialiasing of a few edge pixels) — at 100 % and 50 %, across
// re-centrings of the picture, with live state (validation errors) on nodes, and on a high-density screen, where the
// canvas holds a pixel per device pixel and the grid and links cover all of it.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiGraph } from '../../server/protocol';
import { launchBrowser, screenshot, startEditorServer, waitForGraph, type EditorServer } from './harness';

/** 80 Scale nodes, each taking the one laid out before it or, every third, one far back (long links across), and
 *  two Train nodes missing their inputs: running the graph marks them with the server's validation errors. */
function grid(): ApiGraph {
  const api: ApiGraph = {};
  for (let i = 1; i <= 80; i++) {
    const from = i > 10 ? (i % 3 === 0 ? 1 + ((i * 7) % (i - 1)) : i - 10) : null;
    api[String(i)] = { class_type: 'TestScale', inputs: { factor: 1 + (i % 4) * 0.5, ...(from ? { value: [String(from), 0] } : {}) } };
  }
  api['81'] = { class_type: 'TestTrain', inputs: { steps: 5 } };
  api['82'] = { class_type: 'TestTrain', inputs: { steps: 5 } };
  return api;
}

let env: EditorServer;
let browser: Browser;

beforeAll(async () => {
  env = await startEditorServer({ quickstart: grid() });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await env?.dispose();
});

async function open(deviceScaleFactor: number): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 }, deviceScaleFactor });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('[page error]', err.message));
  await page.goto(env.url);
  await waitForGraph(page, 82);
  return page;
}

interface Comparison {
  full: number;
  moved: number;
  partial: number;
  /** Full redraws in the frame after the drag ended. */
  fullAfter: number;
  /** Device pixels whose colour differs by more than 8 in a channel between the two pictures, of `pixels`. */
  differing: number;
  pixels: number;
  /** The largest difference in any channel of any pixel. */
  largest: number;
}

/** Drags the canvas by `steps` (CSS pixels per frame; none: no drag) — with the middle button from the middle of
 *  the view, or with the left button from empty canvas — then compares what is on screen with a full redraw of the
 *  same view (still mid-drag). */
function drawAndCompare(page: Page, steps: [number, number][], button: 'middle' | 'left' = 'middle'): Promise<Comparison> {
  return page.evaluate(async ([moves, which]) => {
    const hook = window.__loragraph!;
    const canvas = document.querySelector<HTMLCanvasElement>('[data-testid=graph-canvas]')!;
    const ctx = canvas.getContext('2d')!;
    const frame = () => new Promise((r) => requestAnimationFrame(() => r(null)));
    const r = canvas.getBoundingClientRect();
    const start = which === 'left' ? hook.geometry()!.emptySpot() : { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    let x = Math.round(start.x), y = Math.round(start.y);
    const [button, buttons] = which === 'left' ? [0, 1] : [1, 4];
    const pointer = (type: string, pressed: number) =>
      canvas.dispatchEvent(new PointerEvent(type, { clientX: x, clientY: y, buttons: pressed, button, pointerId: 1, pointerType: 'mouse', isPrimary: true, bubbles: true }));
    await frame();
    const before = hook.frames();
    if (moves.length) pointer('pointerdown', buttons);
    for (const [dx, dy] of moves) {
      x += dx;
      y += dy;
      pointer('pointermove', buttons);
      await frame();
    }
    const after = hook.frames();
    const moved = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    hook.panByMovingPixels(false);
    await frame();
    await frame();
    const redrawn = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    hook.panByMovingPixels(true);
    await frame();
    await frame();
    if (moves.length) {
      // Moved twice more (the first frame after a redraw is whole), then let go: the frame after is a full redraw.
      for (const step of [1, 1]) {
        x += step;
        pointer('pointermove', buttons);
        await frame();
      }
    }
    const beforeUp = hook.frames();
    if (moves.length) pointer('pointerup', 0);
    await frame();
    await frame();
    const fullAfter = hook.frames().full - beforeUp.full;
    let differing = 0, largest = 0;
    for (let i = 0; i < moved.length; i += 4) {
      let d = 0;
      for (let c = 0; c < 4; c++) d = Math.max(d, Math.abs(moved[i + c]! - redrawn[i + c]!));
      if (d > 8) differing++;
      largest = Math.max(largest, d);
    }
    return { full: after.full - before.full, moved: after.moved - before.moved, partial: after.partial - before.partial, fullAfter, differing, pixels: moved.length / 4, largest };
  }, [steps, button] as const);
}

/** The same picture but for the antialiasing of a few edge pixels (Skia rasterises a long curve drawn into a band
 *  of the picture a shade differently from the same curve drawn whole, by up to ~50 levels on a few hundred pixels).
 *  A band out of place by a pixel differs on 0.5–2 % of the pixels by up to ~240 levels; a link missing from a band
 *  by ~130 levels. */
function expectSamePicture(r: Comparison): void {
  expect(r.differing / r.pixels).toBeLessThan(1e-3);
  expect(r.largest).toBeLessThan(64);
}

/** Right and down, then back left past the start and up: well beyond the picture's margin both ways. */
const path: [number, number][] = [
  ...Array.from({ length: 30 }, (): [number, number] => [23, 7]),
  ...Array.from({ length: 40 }, (): [number, number] => [-29, -11]),
];

describe('drawing a large graph', () => {
  it('redraws only the nodes whose live state changed, and shows what a full redraw shows', async () => {
    const page = await open(1);
    await page.evaluate(() => window.__loragraph!.geometry()!.zoom(0.5));
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const before = await page.evaluate(() => window.__loragraph!.frames());
    // The server refuses the run: two nodes get red outlines and error boxes, nothing else changes.
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => Object.keys(window.__loragraph!.state().run.validation).length === 2, undefined, { timeout: 20_000 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const after = await page.evaluate(() => window.__loragraph!.frames());
    expect(after.partial - before.partial).toBeGreaterThanOrEqual(1);
    expect(after.full - before.full).toBe(0);
    const r = await drawAndCompare(page, []);
    expect(r.differing).toBe(0);
    await screenshot(page, 'drawing-validation-errors');
    await page.context().close();
  });

  it('moves the picture while dragging and shows what a full redraw shows, at 100 % and 50 %', async () => {
    const page = await open(1);
    // Two nodes carry live state (red outlines, error boxes) while it is panned.
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => Object.keys(window.__loragraph!.state().run.validation).length === 2, undefined, { timeout: 20_000 });

    for (const zoom of [1, 0.5]) {
      await page.evaluate((z) => window.__loragraph!.geometry()!.zoom(z), zoom);
      const r = await drawAndCompare(page, path);
      // One full frame when the drag starts; every other frame is the picture moved.
      expect(r.full).toBeLessThanOrEqual(2);
      expect(r.moved).toBeGreaterThanOrEqual(path.length - 2);
      expect(r.fullAfter).toBe(1);
      expectSamePicture(r);
    }
    // Dragging empty canvas with the left button is the same drag to litegraph, and draws the same way.
    const left = await drawAndCompare(page, path.slice(0, 20), 'left');
    expect(left.moved).toBeGreaterThanOrEqual(18);
    expectSamePicture(left);
    await screenshot(page, 'drawing-after-drag');
    await page.context().close();
  });

  it('on a high-density screen fills the whole canvas at device resolution and pans as exactly', async () => {
    const page = await open(2);
    const size = await page.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>('[data-testid=graph-canvas]')!;
      const ctx = c.getContext('2d')!;
      // The bottom-right corner is empty canvas: the grid background must reach it (opaque).
      const corner = ctx.getImageData(c.width - 4, c.height - 4, 1, 1).data[3];
      return { width: c.width, height: c.height, cssWidth: c.clientWidth, cssHeight: c.clientHeight, corner };
    });
    expect(size.width).toBe(size.cssWidth * 2);
    expect(size.height).toBe(size.cssHeight * 2);
    expect(size.corner).toBe(255);
    await page.evaluate(() => window.__loragraph!.geometry()!.zoom(1));
    const r = await drawAndCompare(page, path.slice(0, 40));
    expect(r.moved).toBeGreaterThanOrEqual(38);
    expectSamePicture(r);
    await screenshot(page, 'drawing-hidpi');
    await page.context().close();
  });
});
