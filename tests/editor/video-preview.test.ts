// A video sample playing on a Sampler node in Debian's Chromium: the real Sampler node renders clips from a test-only
// video model (tests/nodes/video-probe-family.ts, a bar moving one column per latent frame) through the real preview
// pipeline; the node shows the animated WebP grid it publishes, the editor decodes its frames (WebCodecs) and draws
// the one due — the frame drawn and the canvas pixels change while nothing else happens — and the lightbox plays it.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineNode } from '../../nodes/define';
import { samplerNode } from '../../nodes/sampler';
import { videoProbeValues } from '../nodes/video-probe-family';
import { launchBrowser, openEditor, screenshot, startEditorServer, type EditorServer } from './harness';

const VideoModel = defineNode({
  type: 'TestVideoModel',
  title: 'Load Video Model',
  category: 'loaders',
  description: 'A probe video model (test only).',
  widgets: z.object({}),
  outputs: { model: 'MODEL', clip: 'CLIP', vae: 'VAE' },
  execute() {
    const { model, clip, vae } = videoProbeValues();
    return { outputs: { model, clip, vae } };
  },
});

let env: EditorServer;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  env = await startEditorServer({
    nodes: [VideoModel, samplerNode],
    quickstart: {
      '1': { class_type: 'TestVideoModel', inputs: {} },
      '2': { class_type: 'Sampler', inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], prompts: 'a bar --d 0\na bar --d 3', steps: 2, sampler: 'euler', fps: 8 } },
    },
  });
  browser = await launchBrowser();
  page = await openEditor(browser, env.url, { minNodes: 2 });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await env?.dispose();
});

const geometry = <K extends string>(fn: K, ...args: unknown[]) =>
  page.evaluate(([f, a]) => (window.__loragraph!.geometry() as any)[f as string](...(a as unknown[])), [fn, args] as const) as Promise<any>;

/** The red channel of the canvas across the first tile's row of columns (one value per latent column). */
async function tileRow(img: { x: number; y: number; tiles: { x: number; y: number; width: number; height: number }[] }): Promise<string> {
  return page.evaluate((t) => {
    const canvas = document.querySelector('[data-testid=graph-canvas]') as HTMLCanvasElement;
    const r = canvas.getBoundingClientRect();
    const k = canvas.width / r.width;
    const ctx = canvas.getContext('2d')!;
    const cols: number[] = [];
    for (let c = 0; c < 8; c++) {
      const x = (t.x + (c + 0.5) * (t.width / 8) - r.left) * k, y = (t.y + t.height / 2 - r.top) * k;
      cols.push(ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data[0]! > 128 ? 1 : 0);
    }
    return cols.join('');
  }, img.tiles[0]!);
}

describe('video previews in the editor', () => {
  it('a Sampler\'s animated WebP plays on the node: decoded frames, the drawn frame and the pixels move on', async () => {
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => window.__loragraph!.state().run.nodes['2']?.status === 'done', undefined, { timeout: 60_000 });
    const sheet = (await page.evaluate(() => window.__loragraph!.state().run.nodes['2']!.sheets))[0]!;
    expect(sheet.url).toMatch(/filename=samples-2-.*\.webp/);
    expect(sheet.sheet).toMatchObject({ frames: 9, fps: 8 });
    // Loaded by the browser as an image, and decoded as a clip of 9 frames of 125 ms.
    await expect.poll(async () => (await geometry('images', '2'))[0]?.frames ?? 0, { timeout: 15_000 }).toBe(9);
    // The node grew by its sample sheet below the framed view: pan up by dragging the empty canvas, as a user would.
    const spot = await geometry('emptySpot', { x: 1350, y: 600 });
    await page.mouse.move(spot.x, spot.y);
    await page.mouse.down();
    await page.mouse.move(spot.x, spot.y - 300, { steps: 8 });
    await page.mouse.up();
    const [img] = await geometry('images', '2');
    expect(img.tiles[0].y + img.tiles[0].height).toBeLessThan(900);
    expect(img.complete).toBe(true);
    expect(img.naturalWidth).toBeGreaterThan(0);
    expect(img.durationMs).toBe(9 * 125);
    expect(img.tiles).toHaveLength(2);
    // With the graph idle, the node keeps drawing new frames: the frame drawn and the bar's column change.
    const drawn = new Set<number>(), rows = new Set<string>();
    for (let i = 0; i < 30; i++) {
      drawn.add((await geometry('images', '2'))[0].frameDrawn);
      rows.add(await tileRow(img));
      await page.waitForTimeout(60);
    }
    expect(drawn.size).toBeGreaterThanOrEqual(4);
    // Latent frames 0, 1, 2 put the bar in columns 0, 1, 2 of the first tile (seed 0).
    for (const row of ['10000000', '01000000', '00100000']) expect(rows).toContain(row);
    await screenshot(page, 'video-sampler-node');
  });

  it('the lightbox shows the clip as an animated <img>', async () => {
    const [img] = await geometry('images', '2');
    const t = img.tiles[1]!;
    await page.mouse.click(t.x + t.width / 2, t.y + t.height / 2);
    const shown = page.locator('img[src*=".webp"]').first();
    await shown.waitFor({ timeout: 5_000 });
    await expect.poll(() => shown.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBeGreaterThan(0);
    await screenshot(page, 'video-sampler-lightbox');
  });
});
