// Opening a training config people bring (ai-toolkit YAML) in the editor, against a server with the real node
// library: Open… turns it into a graph through /api/import and shows the report; a malformed file names file and line.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../../nodes/registry';
import { createServer, type LoragraphServer } from '../../server/app';
import { repoRoot } from '../../server/paths';
import { buildEditor, launchBrowser, openEditor, screenshot } from './harness';

let server: LoragraphServer;
let browser: Browser;
let page: Page;
const root = mkdtempSync(join(tmpdir(), 'lg-editor-import-'));

beforeAll(async () => {
  server = await createServer({
    registry: await loadRegistry(), dataDir: join(root, '.loragraph'), port: 0, host: '127.0.0.1',
    editorDir: await buildEditor(), graphsDir: join(repoRoot, 'graphs'), log: () => {},
  });
  browser = await launchBrowser();
  page = await openEditor(browser, server.url, { minNodes: 4 });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

const state = () => page.evaluate(() => window.__loragraph!.state());
const hintText = () => page.getByTestId('hint').textContent({ timeout: 200 }).catch(() => '');
const pick = (name: string) => page.locator('[data-testid=open-file]').setInputFiles({
  name, mimeType: 'application/yaml', buffer: readFileSync(join(repoRoot, 'tests/fixtures/configs', name)),
});

describe('editor: importing a config', () => {
  it('a malformed YAML is refused with its file, line and column; the graph stays', async () => {
    const before = (await state()).graphName;
    await pick('bad_unterminated.yaml');
    await expect.poll(() => hintText()).toMatch(/^bad_unterminated\.yaml:\d+:\d+: /);
    expect((await state()).graphName).toBe(before);
  });

  it('an ai-toolkit job opened through Open… becomes a graph, with the report of what carried over', async () => {
    await pick('sd15_train_layout.yaml');
    await page.waitForFunction(() => window.__loragraph!.state().graphName === 'sd15_train_layout');
    const types = (await page.evaluate(() => window.__loragraph!.workflow()!)).nodes.map((n) => n.type);
    expect(types).toEqual(expect.arrayContaining(['LoadModel', 'Dataset', 'Train']));
    const report = page.getByTestId('import-report');
    await expect.poll(() => report.textContent()).toContain('Imported sd15_train_layout.yaml');
    expect(await report.textContent()).toContain('Mapped');
    await screenshot(page, '11-imported-config');
    await report.getByTitle('close the report').click();
    await expect.poll(() => report.count()).toBe(0);
  });
});
