// POST /api/import on a live server: a config's text in, the workflow and report out; a bad file is a 400
// naming file, line and key; the server's environment never fills ${VAR}.
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../../nodes/registry';
import { createServer } from '../../server/app';
import { ImportResponse } from '../../server/import/protocol';
import { repoRoot } from '../../server/paths';

const OWN = join(repoRoot, 'tests', 'fixtures', 'configs');
let server: Awaited<ReturnType<typeof createServer>>;
let dataDir: string;
beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'lg-import-'));
  server = await createServer({ registry: await loadRegistry(), dataDir, port: 0, editorDir: null, log: () => {} });
});
afterAll(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const post = (body: unknown) => fetch(`${server.url}/api/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('POST /api/import', () => {
  it('answers a kohya_ss config with its workflow and report', async () => {
    const res = await post({ filename: 'kohya_locon_sd15.json', text: readFileSync(join(OWN, 'kohya_locon_sd15.json'), 'utf8') });
    expect(res.status).toBe(200);
    const body = ImportResponse.parse(await res.json());
    expect(body.report.format).toBe('kohya_ss');
    expect(body.workflow.nodes.map((n) => n.type)).toEqual(expect.arrayContaining(['LoadModel', 'LoraTarget', 'Dataset', 'Train', 'SaveLora']));
    expect(body.report.entries.find((e) => e.key === 'LoRA_type')).toMatchObject({ status: 'mapped', targets: ['LoRA Target.networkType'] });
    expect(body.text).toMatch(/^Mapped \(\d+\):/m);
  });

  it('answers a malformed file with 400 naming file, line and key', async () => {
    const res = await post({ filename: 'bad_unterminated.yaml', text: readFileSync(join(OWN, 'bad_unterminated.yaml'), 'utf8') });
    expect(res.status).toBe(400);
    expect((await res.json() as { error: { message: string } }).error.message).toMatch(/^bad_unterminated\.yaml:3:\d+: name: /);
  });

  it('does not fill ${VAR} from the server\'s environment', async () => {
    process.env.LG_IMPORT_SECRET = 'do-not-leak';
    const text = 'job: extension\nconfig:\n  name: x\n  process:\n    - type: sd_trainer\n      trigger_word: "${LG_IMPORT_SECRET}"\n';
    const res = await post({ filename: 'job.yaml', text });
    const body = await res.text();
    expect(res.status).toBe(400);
    expect(body).not.toContain('do-not-leak');
    expect(body).toMatch(/environment variable LG_IMPORT_SECRET is not set/);
  });
});
