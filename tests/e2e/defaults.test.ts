// A newcomer's first minutes, on the defaults: a copy of this checkout (what a fresh clone holds: tracked and
// unignored files, sharing node_modules), `npm start` in it — so the data folder is its `.loragraph/`, resolved as
// `npm start` always resolves it — then the printed address in Chromium at 1600×1000, Run on the quickstart graph
// (fewer steps so it takes seconds), and the samples must really load on the Train and Sampler nodes (naturalWidth
// > 0), readable and in view, with nothing overlapping; a tile opens large with its prompt, seed, step and strength;
// the samples view lists every step × prompt, and its button samples a saved checkpoint. Screenshots go to
// test-results/quickstart/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import { WIDGET_NAMES_PROPERTY, type Workflow } from '../../server/protocol';
import { CHROMIUM_ARGS } from '../editor/harness';

const shots = join(repoRoot, 'test-results', 'quickstart');
const VIEWPORT = { width: 1600, height: 1000 };

/** A copy of the working tree as a fresh clone would have it, sharing node_modules (linked). */
function copyCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lg-checkout-'));
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const rel of listed.stdout.split('\0').filter(Boolean)) {
    const src = join(repoRoot, rel);
    if (!existsSync(src) || !statSync(src).isFile()) continue; // deleted in the working tree
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    cpSync(src, join(dir, rel), { preserveTimestamps: true });
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // npm start reinstalls when the lockfile is newer than the install; this copy must never reinstall the shared one.
  const marker = join(repoRoot, 'node_modules', '.package-lock.json');
  if (existsSync(marker)) {
    const t = statSync(marker).mtime;
    utimesSync(join(dir, 'package-lock.json'), t, new Date(Math.min(t.getTime(), statSync(join(dir, 'package-lock.json')).mtimeMs)));
  }
  return dir;
}

/** Sets a widget of every node of a type in a workflow file, by the widget names the file records. */
function setWidget(wf: Workflow, type: string, name: string, value: unknown): void {
  const nodes = wf.nodes.filter((n) => n.type === type);
  if (!nodes.length) throw new Error(`no ${type} node`);
  for (const n of nodes) {
    const names = n.properties?.[WIDGET_NAMES_PROPERTY] as string[];
    const at = names.indexOf(name);
    if (at < 0 || !Array.isArray(n.widgets_values)) throw new Error(`${type} has no widget ${name}`);
    n.widgets_values[at] = value;
  }
}

/** `npm start -- --port 0` in `dir`, with nothing in the environment choosing the data folder. */
function npmStart(dir: string): Promise<{ child: ChildProcess; url: string; dataDir: string; log: () => string }> {
  const env = { ...process.env };
  delete env.LORAGRAPH_DATA_DIR;
  delete env.LORAGRAPH_TOKEN;
  const child = spawn('npm', ['start', '--', '--port', '0'], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start printed no address in 180 s:\n${out}`)), 180_000);
    const onData = (d: Buffer) => {
      out += d;
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(out)?.[1];
      const data = /data in (.+)$/m.exec(out)?.[1];
      if (url && data) {
        clearTimeout(timer);
        resolve({ child, url, dataDir: data.trim(), log: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}) before listening:\n${out}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || !child.pid) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    }, 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    try { process.kill(-child.pid!, 'SIGTERM'); } catch { resolve(); }
  });
}

type Rect = { x: number; y: number; width: number; height: number };
const overlap = (a: Rect, b: Rect) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
const inside = (a: Rect, b: Rect) => a.x >= b.x - 1 && a.y >= b.y - 1 && a.x + a.width <= b.x + b.width + 1 && a.y + a.height <= b.y + b.height + 1;

let checkout: string;
let server: Awaited<ReturnType<typeof npmStart>>;
let browser: Browser;
let page: Page;

const geometry = <T = any>(fn: string, ...args: unknown[]) =>
  page.evaluate(([f, a]) => (window.__loragraph!.geometry() as any)[f as string](...(a as unknown[])), [fn, args] as const) as Promise<T>;
const state = () => page.evaluate(() => window.__loragraph!.state());

async function boxes(): Promise<Record<string, Rect>> {
  const ids = await geometry<string[]>('nodeIds');
  const out: Record<string, Rect> = {};
  for (const id of ids) out[id] = await geometry<Rect>('box', id);
  return out;
}

/** No two nodes overlap, and (unless told) all of them are inside the canvas. */
async function expectTidy(what: string, inView = true) {
  const b = await boxes();
  const view = await geometry<Rect>('viewport');
  const ids = Object.keys(b);
  for (let i = 0; i < ids.length; i++) {
    if (inView) expect(inside(b[ids[i]!]!, view), `${what}: node ${ids[i]} out of view`).toBe(true);
    for (let j = i + 1; j < ids.length; j++) expect(overlap(b[ids[i]!]!, b[ids[j]!]!), `${what}: nodes ${ids[i]} and ${ids[j]} overlap`).toBe(false);
  }
}

/** Every image the node shows loaded in the browser (naturalWidth > 0); on failure, what the server answered. */
async function expectImagesLoaded(id: string, atLeast = 1) {
  await expect.poll(async () => (await geometry<any[]>('images', id)).filter((i) => i.complete).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(atLeast);
  await expect.poll(async () => (await geometry<any[]>('images', id)).every((i) => i.complete), { timeout: 20_000 }).toBe(true);
  for (const img of await geometry<any[]>('images', id)) {
    const answer = img.naturalWidth > 0 ? '' : await page.evaluate(async (u) => { const r = await fetch(u); return `${r.status} ${(await r.text()).slice(0, 200)}`; }, img.url);
    expect(img.naturalWidth, `node ${id}: ${img.url} did not load: ${answer}`).toBeGreaterThan(0);
  }
  return geometry<any[]>('images', id);
}

async function waitIdle(timeout: number) {
  await page.waitForFunction(() => {
    const s = window.__loragraph!.state();
    return !s.run.running && s.queue.running.length === 0 && s.queue.pending.length === 0;
  }, undefined, { timeout });
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  checkout = copyCheckout();
  // The quickstart graph as shipped, with fewer steps: 20 training steps sampled and saved every 10, 4 sampler steps.
  const file = join(checkout, 'graphs', 'quickstart.json');
  const wf = JSON.parse(readFileSync(file, 'utf8')) as Workflow;
  setWidget(wf, 'Train', 'steps', 20);
  setWidget(wf, 'Train', 'sampleEvery', 10);
  setWidget(wf, 'Train', 'saveEvery', 10);
  setWidget(wf, 'SamplerSettings', 'steps', 4);
  setWidget(wf, 'Sampler', 'steps', 4);
  writeFileSync(file, JSON.stringify(wf, null, 2));
  server = await npmStart(checkout);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: VIEWPORT });
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('[page error]', err.message));
}, 240_000);

afterAll(async () => {
  await browser?.close();
  if (server) await stop(server.child);
  if (checkout) rmSync(checkout, { recursive: true, force: true });
});

describe('npm start on the defaults', () => {
  it('keeps its data in the checkout’s .loragraph/ and opens the quickstart laid out without overlaps', async () => {
    expect(server.dataDir).toBe(join(checkout, '.loragraph'));
    expect(new URL(server.url).searchParams.get('graph')).toBe('quickstart');
    await page.goto(server.url);
    await page.waitForFunction(() => window.__loragraph?.ready() && (window.__loragraph.workflow()?.nodes.length ?? 0) >= 10, undefined, { timeout: 30_000 });
    expect((await state()).graphName).toBe('quickstart');
    await expectTidy('before Run');
    await page.screenshot({ path: join(shots, '01-before-run.png') });
  });

  it('Run: the samples load on the Train and Sampler nodes, readable and in view; nothing overlaps', async () => {
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction(() => window.__loragraph!.state().run.nodes['7']?.status === 'executing', undefined, { timeout: 60_000 });
    await waitIdle(280_000);
    const s = await state();
    expect(s.run.lastError).toBeNull();
    expect(s.run.nodes['8']!.status).toBe('done');
    // The samples are files under .loragraph/temp, served by /api/view.
    expect(s.run.nodes['7']!.images.some((u) => /filename=train-7-/.test(u))).toBe(true);
    expect(existsSync(join(checkout, '.loragraph', 'temp'))).toBe(true);

    const view = await geometry<Rect & { scale: number }>('viewport');
    const [train] = await expectImagesLoaded('7');
    const [sampler] = await expectImagesLoaded('8');
    // Train shows its latest samples (3 prompts), the Sampler its 3 prompts × without | with the LoRA: every 64×64
    // sample at 128 px or more on the node, and all of it in view at the default zoom.
    expect(train.tiles).toHaveLength(3);
    expect(sampler.tiles).toHaveLength(6);
    for (const t of [...train.tiles, ...sampler.tiles]) {
      expect(t.width / view.scale).toBeGreaterThanOrEqual(127.5);
      expect(inside(t, view), 'a sample tile is out of view').toBe(true);
    }
    // The dataset's contact sheet, the timestep histogram and the loss chart come from the same folder.
    for (const id of ['2', '5', '11']) await expectImagesLoaded(id);
    await expectTidy('after Run');
    await page.screenshot({ path: join(shots, '02-after-run.png') });
  }, 300_000); // about 30 s on two idle cores

  it('a click on a tile opens it full size with the prompt, seed, step and LoRA strength of each tile', async () => {
    const [sampler] = await geometry<any[]>('images', '8');
    const t = sampler.tiles[3];
    await page.mouse.click(t.x + t.width / 2, t.y + t.height / 2);
    const img = page.locator('[data-testid=lightbox] img');
    await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBeGreaterThan(0);
    expect(await img.evaluate((el: HTMLImageElement) => el.getBoundingClientRect().width)).toBeGreaterThanOrEqual(2 * (await img.evaluate((el: HTMLImageElement) => el.naturalWidth)));
    const rows = page.getByTestId('tile-row');
    await expect.poll(() => rows.count()).toBe(6);
    expect((await rows.nth(3).locator('td').allTextContents()).join(' | ')).toBe('4 | a purple sks on a white background | 8 | 20 | 1');
    expect((await rows.nth(2).locator('td').allTextContents()).join(' | ')).toBe('3 | a purple sks on a white background | 8 | 20 | 0 (without LoRA)');
    expect(await rows.nth(3).getAttribute('class')).toContain('picked');
    await page.screenshot({ path: join(shots, '03-tile-full-size.png') });
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByTestId('lightbox').count()).toBe(0);
  });

  it('the samples view shows every sampled step × prompt, and samples the LoRA saved at a chosen step', async () => {
    const link = await geometry<{ x: number; y: number }>('samplesLink', '7');
    await page.mouse.click(link.x, link.y);
    const viewEl = page.getByTestId('samples-view');
    await viewEl.waitFor();
    await expect.poll(() => page.getByTestId('samples-row').count()).toBe(2);
    expect(await page.getByTestId('samples-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-step')))).toEqual(['10', '20']);
    const cells = page.locator('[data-testid=samples-cell] img');
    expect(await cells.count()).toBe(6);
    await expect.poll(() => cells.evaluateAll((imgs) => imgs.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0))).toBe(true);
    const use = page.getByTestId('use-step-10');
    await expect.poll(() => use.isEnabled()).toBe(true); // output/star/star_000000010.safetensors is there
    await page.screenshot({ path: join(shots, '04-samples-view.png') });

    await use.click();
    const wf = await page.evaluate(() => window.__loragraph!.workflow()!);
    const lora = wf.nodes.find((n) => n.type === 'LoadLora')!;
    expect(lora.widgets_values).toEqual(['output/star/star_000000010.safetensors', true]); // loraFile, pairExperts (default)
    const picked = wf.nodes.find((n) => n.type === 'Sampler' && n.id !== 8)!;
    const feeds = wf.links.filter((l) => String(l[3]) === String(picked.id)).map((l) => String(l[1])).sort();
    expect(feeds).toEqual(['1', '1', '1', String(lora.id)].sort());
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForFunction((id) => window.__loragraph!.state().run.nodes[id]?.status === 'done', String(picked.id), { timeout: 120_000 });
    await waitIdle(60_000);
    const [out] = await expectImagesLoaded(String(picked.id));
    expect(out.tiles).toHaveLength(6);
    const last = (await state()).history[0]!;
    expect([...last.executed].sort()).toEqual([String(lora.id), String(picked.id)].sort());
    await expectTidy('after sampling the picked step', false);
    await page.screenshot({ path: join(shots, '05-picked-step-sampled.png') });
  }, 240_000);
});
