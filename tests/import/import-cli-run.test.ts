// The SD 1.x configs, imported with `loragraph import` and pointed at a tiny random SD checkpoint and the demo
// datasets (what a user changes after importing: paths and sizes), train 2 steps with `loragraph run`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import type { Workflow } from '../../server/protocol';
import { dataDirWithRandomTiny } from '../e2e/fixtures';

const OWN = join(repoRoot, 'tests', 'fixtures', 'configs');
const bin = join(repoRoot, 'bin', 'loragraph.js');
let dataDir: string;
beforeAll(async () => { dataDir = await dataDirWithRandomTiny(); });
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** The imported prompts without their inline size and step overrides (kohya's --w/--h/--s), which would sample at full size. */
function tinyPrompts(wf: Workflow): string {
  const node = wf.nodes.find((n) => n.type === 'SamplerSettings')!;
  const names = node.properties!['loragraph.widgets'] as string[];
  return String((node.widgets_values as unknown[])[names.indexOf('prompts')]).replace(/\s--[whs]\s+\d+/g, '');
}

const cli = (args: string[]) => spawnSync(bin, args, { cwd: dataDir, encoding: 'utf8', timeout: 600_000, env: { ...process.env, LORAGRAPH_TEST_DATA: '/srv/training' } });

describe('imported SD 1.x configs train through the CLI', () => {
  it.each([
    ['sd15_ai_toolkit.yaml', 'ellie_sd15_v1/ellie_sd15_v1.safetensors'],
    ['sd15_ai_toolkit.json', 'cat_style/cat_style.safetensors'],
    ['sd15_train_layout.yaml', 'sks_dog/sks_dog.safetensors'],
    ['kohya_locon_sd15.json', 'toy_robot_locon.safetensors'],
    ['sdscripts_config.toml', 'watercolor.safetensors'],
  ])('%s: import, then 2 steps', (file, lora) => {
    const graph = join(dataDir, `${basename(file)}.graph.json`);
    const imported = cli(['import', join(OWN, file), '--out', graph]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/^Mapped \(\d+\):/m);
    const wf = JSON.parse(readFileSync(graph, 'utf8')) as Workflow;
    const titled = (type: string) => wf.nodes.filter((n) => n.type === type).map((n) => String(n.title));
    const set = [
      'Load Model.checkpoint=tiny-random.safetensors', 'Train.steps=2', 'Train.sampleEvery=0', 'Train.saveEvery=0', 'Train.batchSize=1', 'Train.gradientAccumulation=1',
      ...titled('Dataset').flatMap((t) => {
        const values = wf.nodes.find((n) => n.title === t)!.widgets_values as unknown[];
        const names = (wf.nodes.find((n) => n.title === t)!.properties!['loragraph.widgets'] as string[]);
        const reg = values[names.indexOf('isRegularization')] === true;
        return [`${t}.folder=${reg ? 'demo-reg' : 'demo-star'}`, `${t}.resolution=64`];
      }),
      ...(titled('SamplerSettings').length ? ['Sampler Settings.width=64', 'Sampler Settings.height=64', 'Sampler Settings.steps=2', `Sampler Settings.prompts=${tinyPrompts(wf)}`] : []),
      // Training on an int8-quantised UNet currently fails in the engine ("dequantizeLinear has no gradient rule",
      // also at HEAD without this graph); the import is what this test is about, so quantisation is turned off here.
      ...(titled('Quantize').length ? ['Quantize.unet=none'] : []),
    ];
    const run = cli(['run', graph, '--data-dir', dataDir, ...set.flatMap((s) => ['--set', s])]);
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    expect(run.stderr).toMatch(/Train \[8\] .*2\/2/);
    expect(existsSync(join(dataDir, 'output', lora)), lora).toBe(true);
  }, 600_000);
});
