// vitest's globalSetup: the suite's temporary files go under one folder of its own (TMPDIR, which
// os.tmpdir() reads in every worker), removed when the run ends — tests make hundreds of model, scratch
// and project folders, and a developer's /tmp should not keep gigabytes of them from every run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'loragraph-tests-'));
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
