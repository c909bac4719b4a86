// `loragraph run` headless: runs a workflow file with --set overrides, prints where outputs went, and exits
// non-zero naming the node and field of a validation error or the failing node of an execution error.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import { fixtureNodesDir, tempDir } from './harness';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(join(repoRoot, 'bin', 'loragraph.js'), [...args, '--nodes', fixtureNodesDir, '--data-dir', join(dir, 'data')], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const workflow = {
  nodes: [
    { id: 1, type: 'NumberSource', title: 'Start', widgets_values: [10] },
    { id: 2, type: 'SlowCounter', title: 'Train', inputs: [{ name: 'start', link: 1 }], widgets_values: [5, 10] },
    { id: 3, type: 'SaveNumberImage', inputs: [{ name: 'value', link: 2 }], widgets_values: ['result'] },
    { id: 4, type: 'ShowNumber', inputs: [{ name: 'value', link: 2 }] },
  ],
  links: [[1, 1, 0, 2, 0, 'NUMBER'], [2, 2, 0, 3, 0, 'NUMBER'], [3, 2, 0, 4, 0, 'NUMBER']],
};

describe('loragraph run', () => {
  it('runs a workflow with --set, shows progress, and prints where outputs went', () => {
    const file = join(dir, 'graph.json');
    writeFileSync(file, JSON.stringify(workflow));
    const out = join(dir, 'out');
    const r = cli('run', file, '--set', 'Start.value=100', '--set', 'Train.steps=3', '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Show number \[4\]: 103/);
    const saved = /Save number image \[3\]: (\S+\.png)/.exec(r.out)![1]!;
    expect(saved.startsWith(out)).toBe(true);
    expect(existsSync(saved)).toBe(true);
    expect(r.err).toMatch(/Train \[2\] .* 3\/3 .*it\/s ETA 0:00 loss=0\.3333/);
    expect(r.err).toMatch(/done in .*4 executed, 0 cached/);
  });

  it('exits 2 with the node and field of a validation error', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(workflow));
    const r = cli('run', file, '--set', 'Train.steps=0');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/node 2 \(Train, SlowCounter\) steps: widget "steps": Too small/);
  });

  it('exits 1 naming the failing node of an execution error', () => {
    const file = join(dir, 'fail.json');
    writeFileSync(file, JSON.stringify({ '1': { class_type: 'NumberSource', inputs: {} }, '2': { class_type: 'Fail', inputs: { value: ['1', 0], message: 'model file is truncated' } } }));
    const r = cli('run', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/node Fail \[2\] \(Fail\) failed: model file is truncated/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('explains unreadable graph files and unknown --set targets', () => {
    expect(cli('run', join(dir, 'missing.json')).err).toMatch(/cannot read .*missing\.json: ENOENT/);
    writeFileSync(join(dir, 'notjson.json'), '{nope');
    const bad = cli('run', join(dir, 'notjson.json'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/notjson\.json is not valid JSON/);
    writeFileSync(join(dir, 'g.json'), JSON.stringify(workflow));
    expect(cli('run', join(dir, 'g.json'), '--set', 'Nobody.x=1').err).toMatch(/no node titled or with id "Nobody"/);
    expect(cli('frobnicate').code).toBe(2);
  });
});
