// End-to-end scaffolding for the editor: builds the editor once per source version (cached under
// node_modules/.cache), starts a real server on a free loopback port with the test node types and a quickstart
// graph, and launches Debian's Chromium through playwright-core.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createRegistry } from '../../nodes/registry';
import type { NodeDefinition } from '../../nodes/define';
import { createServer, type LoragraphServer } from '../../server/app';
import { apiToWorkflow } from '../../server/graph/workflow';
import { repoRoot } from '../../server/paths';
import type { ApiGraph } from '../../server/protocol';
import * as nodes from './fixtures/nodes';

/** The test node types, and any a test adds (real nodes fed by a test-only source). */
export const registry = (extra: NodeDefinition[] = []) => createRegistry([...Object.values(nodes), ...extra]);

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

export const artifactsDir = join(repoRoot, 'test-results', 'editor');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'dist' || e.name.startsWith('.')) return [];
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : [p];
  });
}

/** Builds the editor with vite into a folder named by a hash of its sources; later runs reuse it. `minify: false`
 *  keeps function names readable in CPU profiles (bench:editor's BENCH_PROFILE). */
export async function buildEditor(opts: { minify?: boolean } = {}): Promise<string> {
  const minify = opts.minify ?? true;
  const files = [...sourceFiles(join(repoRoot, 'editor')), join(repoRoot, 'vite.config.ts'), join(repoRoot, 'server', 'protocol.ts')].sort();
  const hash = createHash('sha256').update(minify ? 'min' : 'plain');
  for (const f of files) hash.update(relative(repoRoot, f)).update(readFileSync(f));
  const out = join(repoRoot, 'node_modules', '.cache', 'loragraph-editor', hash.digest('hex').slice(0, 16));
  if (existsSync(join(out, 'index.html'))) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  const { build } = await import('vite');
  await build({ configFile: join(repoRoot, 'vite.config.ts'), logLevel: 'error', build: { outDir: tmp, emptyOutDir: true, minify } });
  mkdirSync(join(out, '..'), { recursive: true });
  try {
    renameSync(tmp, out);
  } catch {
    // Another test file built the same sources at the same moment; theirs is as good.
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

/** Load Model ─┐
 *  Dataset ────┴→ Train → Sampler      (ids 1..4) */
export function quickstartApi(steps = 30, stepMs = 60): ApiGraph {
  return {
    '1': { class_type: 'TestLoadModel', inputs: { checkpoint: 'tiny.safetensors' } },
    '2': { class_type: 'TestDataset', inputs: { folder: 'stars', repeats: 2 } },
    '3': { class_type: 'TestTrain', inputs: { model: ['1', 0], dataset: ['2', 0], steps, learningRate: 0.0001, stepMs } },
    '4': { class_type: 'TestSampler', inputs: { training: ['3', 0], prompt: 'a red star', seed: 7, count: 4 } },
  };
}

export interface EditorServer {
  server: LoragraphServer;
  url: string;
  dataDir: string;
  dispose(): Promise<void>;
}

export async function startEditorServer(opts: { token?: string; host?: string; quickstart?: ApiGraph; nodes?: NodeDefinition[] } = {}): Promise<EditorServer> {
  const editorDir = await buildEditor();
  // A dot-named data folder, as `npm start`'s default `.loragraph/` is: whatever the editor shows must be served from one.
  const root = join(tmpdir(), `loragraph-editor-${process.pid}-${Date.now()}`);
  const dataDir = join(root, '.loragraph');
  const graphsDir = join(root, 'graphs');
  mkdirSync(graphsDir, { recursive: true });
  const reg = registry(opts.nodes);
  writeFileSync(join(graphsDir, 'quickstart.json'), JSON.stringify(apiToWorkflow(opts.quickstart ?? quickstartApi(), reg), null, 2));
  mkdirSync(join(dataDir, 'models'), { recursive: true });
  writeFileSync(join(dataDir, 'models', 'tiny.safetensors'), '');
  writeFileSync(join(dataDir, 'models', 'other.safetensors'), '');
  mkdirSync(join(dataDir, 'datasets', 'stars'), { recursive: true });
  mkdirSync(join(dataDir, 'datasets', 'circles'), { recursive: true });
  const server = await createServer({
    registry: reg,
    dataDir,
    port: 0,
    host: opts.host ?? '127.0.0.1',
    ...(opts.token ? { token: opts.token } : {}),
    editorDir,
    graphsDir,
    log: () => {},
  });
  return {
    server,
    url: server.url,
    dataDir,
    async dispose() {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** Opens the editor and waits until the node library is loaded and a graph is on the canvas. */
export async function openEditor(browser: Browser, url: string, opts: { minNodes?: number } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('[page error]', err.message));
  await page.goto(url);
  await waitForGraph(page, opts.minNodes ?? 1);
  return page;
}

export async function waitForGraph(page: Page, minNodes: number): Promise<void> {
  await page.waitForFunction((n) => {
    const h = window.__loragraph;
    return !!h && h.ready() && (h.workflow()?.nodes.length ?? 0) >= n;
  }, minNodes, { timeout: 20_000 });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifactsDir, { recursive: true });
  await page.screenshot({ path: join(artifactsDir, `${name}.png`) });
}

export function fileSize(p: string): number {
  return statSync(p).size;
}
