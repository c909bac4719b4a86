// LORAGRAPH_ORT_LOG turns on ONNX Runtime's own log: at info it reports the growth of its memory arena
// (what the pre-flight's arena model is checked against); an unknown level is refused by name.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../../server/paths';

const script = () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-ortlog-'));
  const file = join(dir, 'run.mts');
  writeFileSync(file, `import * as K from ${JSON.stringify(join(repoRoot, 'kernels', 'index.ts'))};
const x = K.input('x', [1024, 1024]);
const rt = new K.Runtime({ threads: 1 });
const s = await rt.load(K.compileGraph([x], { y: K.relu(K.matmul(x, x)) }));
await s.run({ x: { dtype: 'float32', shape: [1024, 1024], data: new Float32Array(1024 * 1024).fill(0.5) } });
await rt.close();
console.log('ran');
`);
  return file;
};
const run = (level: string) => spawnSync(join(repoRoot, 'node_modules', '.bin', 'tsx'), [script()], { encoding: 'utf8', env: { ...process.env, LORAGRAPH_ORT_LOG: level }, timeout: 60_000 });

describe('LORAGRAPH_ORT_LOG', () => {
  it('info: ORT logs its arena growing, with the request that made it grow', () => {
    const r = run('info');
    expect(r.stdout).toContain('ran');
    expect(r.stderr).toMatch(/Extending BFCArena for Cpu.*rounded_bytes:\d+/);
    expect(r.stderr).toMatch(/Extended allocation by \d+ bytes/);
  });

  it('an unknown level is refused, naming the variable and the levels', () => {
    const r = run('loud');
    expect(r.stdout).not.toContain('ran');
    expect(r.stderr).toContain("LORAGRAPH_ORT_LOG: 'loud' is not one of verbose, info, warning, error, fatal");
  });
});
