// Importing real and documented configs (ai-toolkit, kohya_ss, sd-scripts): every key of each file is reported
// exactly once, the graph validates, values land where their meaning says, bad files name file, line and key,
// and import → export (ai-toolkit) → import gives the same graph.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { loadRegistry, type NodeRegistry } from '../../nodes/registry';
import { PROCESS_RULES, DATASET_RULES } from '../../server/import/ai-toolkit';
import { DATASET_TOML_RULES } from '../../server/import/dataset-toml';
import { exportAiToolkit } from '../../server/import/export-ai-toolkit';
import { importConfigFile, importConfigText, type ImportResult } from '../../server/import/index';
import { KOHYA_RULES } from '../../server/import/kohya';
import { ROLE_TYPES, splitRef } from '../../server/import/plan';
import { ConfigImportError } from '../../server/import/source';
import { applyOverrides } from '../../server/graph/set';
import { projectPaths, repoRoot } from '../../server/paths';
import type { ApiGraph } from '../../server/protocol';
import { validateGraph } from '../../server/validate';

const OWN = join(repoRoot, 'tests', 'fixtures', 'configs');
const REAL = join(repoRoot, '..', 'shared', 'fixtures', 'configs');
const env = { LORAGRAPH_TEST_DATA: '/srv/training' };
const configs = [
  ...readdirSync(OWN).filter((f) => /\.(ya?ml|json|toml)$/.test(f) && !f.startsWith('bad_') && f !== 'sdscripts_dataset.toml').map((f) => join(OWN, f)),
  join(OWN, 'sdscripts_dataset.toml'),
  ...(existsSync(REAL) ? readdirSync(REAL).filter((f) => /\.(ya?ml|json|toml)$/.test(f)).map((f) => join(REAL, f)) : []),
];

let registry: NodeRegistry;
beforeAll(async () => { registry = await loadRegistry(); });

/** The leaf keys of a parsed config, walked here independently of the importer. */
function keysOf(data: unknown, path = ''): string[] {
  if (Array.isArray(data)) {
    return data.length && data.every((x) => x && typeof x === 'object' && !Array.isArray(x)) ? data.flatMap((x, i) => keysOf(x, `${path}[${i}]`)) : [path];
  }
  if (data && typeof data === 'object') {
    const e = Object.entries(data);
    return e.length ? e.flatMap(([k, v]) => keysOf(v, path ? `${path}.${k}` : k)) : [path];
  }
  return [path];
}
function parsed(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('.toml')) return parseToml(text);
  return parseDocument(text.replace(/\$\{(\w+)\}/g, (_, v) => (env as Record<string, string>)[v] ?? ''), { version: '1.1' }).toJS();
}
/** A node's title as --set and the report name it. */
const titleOf = (api: ApiGraph, id: string) => api[id]!._meta?.title ?? registry.get(api[id]!.class_type)!.title;
/** The graph as it runs: each node's parsed widgets (defaults applied) and links. */
function normalized(api: ApiGraph) {
  const v = validateGraph(api, registry);
  if (!v.ok) throw new Error(JSON.stringify(v.nodeErrors));
  return [...v.graph.nodes.values()].map((n) => [n.id, n.def.type, n.title, n.widgets, n.links]);
}
/** Points every Dataset without a folder at one, as a user does after importing a preset that names none. */
function withFolders(r: ImportResult): ApiGraph {
  const missing = Object.entries(r.api).filter(([, n]) => n.class_type === 'Dataset' && !n.inputs.folder).map(([id]) => id);
  return applyOverrides(r.api, registry, missing.map((id) => ({ node: id, widget: 'folder', value: 'demo-star' })));
}

describe('every config imports', () => {
  it.each(configs.map((f) => [basename(f), f]))('%s: each key reported exactly once, graph validates, targets are real widgets', async (_name, file) => {
    const r = await importConfigFile(file, registry, { env });
    let expected = keysOf(parsed(file));
    const data = parsed(file) as Record<string, Record<string, unknown>>;
    const datasetConfig = Object.values(data).find((s) => s && typeof s === 'object' && 'dataset_config' in s)?.dataset_config;
    if (typeof datasetConfig === 'string') expected = [...expected, ...keysOf(parsed(join(OWN, datasetConfig))).map((k) => `${datasetConfig}:${k}`)];
    const reported = r.report.entries.map((e) => e.key);
    expect(new Set(reported).size).toBe(reported.length);
    expect([...reported].sort()).toEqual([...expected].sort());
    // Lines point at the key (YAML/TOML/JSON all give positions).
    for (const e of r.report.entries.filter((x) => !x.key.includes(':') && !x.key.includes('['))) {
      const line = readFileSync(file, 'utf8').split('\n')[e.line! - 1]!;
      expect(line, e.key).toContain(e.key.split('.').pop());
    }
    const missing = Object.values(r.api).filter((n) => n.class_type === 'Dataset' && !n.inputs.folder).length;
    if (missing) expect(r.report.notes.join('\n')).toMatch(/has no folder/);
    const v = validateGraph(withFolders(r), registry);
    expect(v.ok, v.ok ? '' : JSON.stringify(v.nodeErrors)).toBe(true);
    // Every "Node.widget" target names a widget of a node in the graph.
    const titles = new Map(Object.keys(r.api).map((id) => [titleOf(r.api, id), registry.get(r.api[id]!.class_type)!]));
    for (const t of r.report.entries.flatMap((e) => e.targets).filter((t) => /^[\w :]+\.\w+$/.test(t))) {
      const dot = t.lastIndexOf('.');
      expect(titles.get(t.slice(0, dot))?.widgetNames, t).toContain(t.slice(dot + 1));
    }
    // Laid out readably: no two nodes overlap, and data flows left to right (every link goes to a column to its right).
    const boxes = r.workflow.nodes.map((n) => { const [px, py] = n.pos as number[], [w, h] = n.size as number[]; return { id: n.id, x: px!, y: py!, w: w!, h: h! }; });
    for (const a of boxes) for (const b of boxes) {
      if (a.id !== b.id) expect(a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h, `nodes ${a.id} and ${b.id} overlap`).toBe(false);
    }
    const x = new Map(boxes.map((b) => [b.id, b.x]));
    for (const [, from, , to] of r.workflow.links) expect(x.get(from as number)!, `link ${from} → ${to}`).toBeLessThanOrEqual(x.get(to as number)!);
    // Unsupported keys say why.
    for (const e of r.report.entries.filter((x) => x.status !== 'mapped')) expect(e.note, e.key).toBeTruthy();
  });

  it('the mapping tables name only widgets the nodes declare', () => {
    for (const rule of [...PROCESS_RULES, ...DATASET_RULES, ...KOHYA_RULES, ...DATASET_TOML_RULES].filter((r) => r.to)) {
      const [role, widget] = splitRef(rule.to!);
      expect(registry.get(ROLE_TYPES[role])!.widgetNames, `${rule.key} → ${rule.to}`).toContain(widget);
    }
  });
});

describe('meaning carried over', () => {
  const entry = (r: ImportResult, key: string) => r.report.entries.find((e) => e.key === key)!;
  const byTitle = (r: ImportResult, title: string) => Object.entries(r.api).find(([id]) => titleOf(r.api, id) === title)![1].inputs;

  it('ai-toolkit: a resolution list becomes one Dataset node per size; lr 1e-4 is a number; ${VAR} and [name] substituted; trigger and DOP', async () => {
    const r = await importConfigFile(join(OWN, 'sd15_ai_toolkit.yaml'), registry, { env });
    expect([1, 2, 3].map((i) => byTitle(r, `Dataset ${i}`).resolution)).toEqual(['512', '768', '512']);
    expect(byTitle(r, 'Dataset 1').folder).toBe('ellie');
    expect(entry(r, 'config.process[0].datasets[0].folder_path')).toMatchObject({ value: '/srv/training/ellie', status: 'changed', note: expect.stringMatching(/put "ellie" there/) });
    // An absolute path inside the data folder's datasets/ is kept, relative to it.
    const inside = await importConfigFile(join(OWN, 'sd15_ai_toolkit.yaml'), registry, { env: { LORAGRAPH_TEST_DATA: '/srv/lg/datasets/people' }, paths: projectPaths('/srv/lg') });
    expect(byTitle(inside, 'Dataset 1').folder).toBe('people/ellie');
    expect(entry(inside, 'config.process[0].datasets[0].folder_path').status).toBe('mapped');
    expect(byTitle(r, 'Dataset 3')).toMatchObject({ isRegularization: true, folder: 'woman_reg' });
    expect(byTitle(r, 'Dataset 2').triggerWord).toBe('ell1e');
    expect(byTitle(r, 'Dataset 3').triggerWord).toBeUndefined();
    expect(byTitle(r, 'Optimizer')).toMatchObject({ optimizer: 'AdamW8bit', learningRate: 1e-4, weightDecay: 0.01, beta2: 0.99 });
    expect(entry(r, 'meta.name').value).toBe('ellie_sd15_v1');
    expect(byTitle(r, 'Sampler Settings').prompts).toMatch(/^photo of ell1e in a red coat/);
    expect(byTitle(r, 'DOP')).toMatchObject({ preservationClass: 'woman', lossMultiplier: 1 });
    expect(byTitle(r, 'Timestep Schedule')).toMatchObject({ timestepBias: 'high_noise' });
    expect(byTitle(r, 'Quantize')).toMatchObject({ unet: 'int8', textEncoder: 'none' });
  });

  it('ai-toolkit: linear_alpha on a transformer family is reported as ignored by ai-toolkit (alpha = rank); FLUX.2 [klein] trains, families loragraph lacks are named and not trainable yet', async () => {
    const text = readFileSync(join(OWN, 'sd15_ai_toolkit.yaml'), 'utf8').replace('arch: "sd1"', 'arch: "flux2_klein_9b"');
    const r = await importConfigText('klein.yaml', text, registry, { env });
    expect(r.report.family).toMatchObject({ id: 'flux2', label: 'FLUX.2 [klein] 9B', trainable: true });
    expect(entry(r, 'config.process[0].network.linear_alpha')).toMatchObject({ status: 'changed', note: expect.stringMatching(/ignores linear_alpha/) });
    expect(byTitle(r, 'LoRA Target')).toMatchObject({ rank: 16, alpha: 16 });
    expect(entry(r, 'config.process[0].model.arch')).toMatchObject({ status: 'mapped', note: 'FLUX.2 [klein] 9B' });
    const dev = await importConfigText('dev.yaml', text.replace('flux2_klein_9b', 'flux2'), registry, { env });
    expect(dev.report.family).toMatchObject({ id: 'flux2', label: 'FLUX.2 [dev]', trainable: true });
    const qwen = await importConfigText('q.yaml', text.replace('flux2_klein_9b', 'qwen_image'), registry, { env });
    expect(qwen.report.family).toMatchObject({ id: 'qwen-image', trainable: false });
    expect(entry(qwen, 'config.process[0].model.arch')).toMatchObject({ status: 'unsupported', note: expect.stringMatching(/cannot train this family yet/) });
    const unknown = await importConfigText('u.yaml', text.replace('flux2_klein_9b', 'hunyuan_image_9'), registry, { env });
    expect(unknown.report.family).toMatchObject({ id: 'hunyuan_image_9', trainable: false, label: expect.stringMatching(/does not know/) });
    const sd = await importConfigFile(join(OWN, 'sd15_ai_toolkit.yaml'), registry, { env });
    expect(byTitle(sd, 'LoRA Target')).toMatchObject({ rank: 16, alpha: 8 });
    expect(sd.report.family).toMatchObject({ id: 'sd1', trainable: true });
  });

  it('kohya_ss: numbers stored as strings, "" as unset, max_resolution "W,H", LoRA_type → network type, reg_data_dir → a regularization Dataset', async () => {
    const r = await importConfigFile(join(OWN, 'kohya_locon_sd15.json'), registry);
    expect(byTitle(r, 'LoRA Target')).toMatchObject({ networkType: 'LoCon', rank: 32, alpha: 16, convRank: 8, convAlpha: 4 });
    expect(byTitle(r, 'Optimizer')).toMatchObject({ learningRate: 1e-4, textEncoderLr: 5e-5, numCycles: 3, warmupSteps: 120, weightDecay: 0.05 });
    expect(byTitle(r, 'Train')).toMatchObject({ steps: 1200, seed: 1234, gradientAccumulation: 2, noiseOffset: 0.05 });
    expect(byTitle(r, 'Load Model')).toMatchObject({ clipSkip: 2, checkpoint: 'v1-5-pruned.safetensors' });
    expect(byTitle(r, 'Dataset 1')).toMatchObject({ folder: 'img', resolution: '512', keepTokens: 1 });
    expect(byTitle(r, 'Dataset 2')).toMatchObject({ folder: 'reg', isRegularization: true });
    expect(entry(r, 'additional_parameters')).toMatchObject({ status: 'ignored', note: 'unset' });
    // max_train_steps set: kohya_ss counts no epochs.
    expect(entry(r, 'epoch')).toMatchObject({ status: 'ignored', note: 'max_train_steps is set (kohya_ss counts epochs only without it)' });
    expect(byTitle(r, 'Train').stepsFrom ?? 'steps').toBe('steps'); // unset in the graph: the default
    // kohya_ss: text_encoder_lr 0 with unet_lr set trains the UNet only.
    const text = readFileSync(join(OWN, 'kohya_locon_sd15.json'), 'utf8').replace('"text_encoder_lr": "5e-05"', '"text_encoder_lr": 0');
    const unetOnly = await importConfigText('unet-only.json', text, registry);
    expect(byTitle(unetOnly, 'LoRA Target').trainTextEncoder).toBe(false);
    expect(byTitle(r, 'LoRA Target').trainTextEncoder).toBe(true);
  });

  it('kohya_ss epochs: epoch without max_train_steps, and max_train_epochs over max_train_steps, make Train count epochs', async () => {
    const text = readFileSync(join(OWN, 'kohya_locon_sd15.json'), 'utf8');
    const gui = await importConfigText('epochs.json', text.replace('"max_train_steps": "1200"', '"max_train_steps": ""').replace('"epoch": 1', '"epoch": 4'), registry);
    expect(byTitle(gui, 'Train')).toMatchObject({ stepsFrom: 'epochs', epochs: 4 });
    expect(entry(gui, 'epoch').status).not.toBe('unsupported');
    expect(entry(gui, 'max_train_steps')).toMatchObject({ status: 'ignored', note: 'unset: the epochs decide in kohya' });
    const both = await importConfigText('both.json', text.replace('"epoch": 1', '"epoch": 4, "max_train_epochs": "6"'), registry);
    expect(byTitle(both, 'Train')).toMatchObject({ stepsFrom: 'epochs', epochs: 6 });
    expect(entry(both, 'max_train_steps')).toMatchObject({ status: 'ignored', note: 'max_train_epochs takes precedence in sd-scripts' });
    expect(entry(both, 'epoch')).toMatchObject({ status: 'ignored', note: 'max_train_epochs is set' });
    const half = await importConfigText('half.json', text.replace('"epoch": 1', '"epoch": 1, "max_train_epochs": 2.5'), registry);
    expect(entry(half, 'max_train_epochs')).toMatchObject({ status: 'unsupported', note: expect.stringMatching(/2\.5 epochs: a whole number ≥ 1/) });
  });

  it('sd-scripts dataset TOML: subset over dataset over [general] over the --config_file options', async () => {
    const r = await importConfigFile(join(OWN, 'sdscripts_config.toml'), registry);
    const [d1, d2, d3] = [1, 2, 3].map((i) => byTitle(r, `Dataset ${i}`));
    expect(d1).toMatchObject({ folder: 'watercolor/10_wc', captionExtension: '.txt', flipX: true, keepTokens: 1, resolution: '512', repeats: 10, defaultCaption: 'wc painting' });
    expect(d2).toMatchObject({ isRegularization: true, captionExtension: '.caption', flipX: false, captionDropoutRate: 0.1 });
    expect(d3).toMatchObject({ keepTokens: 0, flipX: true, resolution: '496', repeats: 3 });
    expect(entry(r, 'sdscripts_dataset.toml:datasets[1].resolution')).toMatchObject({ status: 'changed', note: expect.stringMatching(/one training area/) });
    expect(entry(r, 'dataset_arguments.resolution')).toMatchObject({ status: 'ignored' });
    expect(byTitle(r, 'LoRA Target')).toMatchObject({ networkType: 'LoCon', trainTextEncoder: false, convRank: 8 });
    expect(byTitle(r, 'Sampler Settings').prompts).toBe('a watercolor of a lighthouse --n photo --d 5\na watercolor of a fox in snow');
  });
});

describe('bad files name file, line and key', () => {
  it('a YAML with an unterminated quote', async () => {
    const err = await importConfigFile(join(OWN, 'bad_unterminated.yaml'), registry, { name: 'bad_unterminated.yaml' }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigImportError);
    expect(err.message).toMatch(/^bad_unterminated\.yaml:3:\d+: name: .*quote/);
  });

  it('a kohya dataset TOML with a key sd-scripts rejects', async () => {
    const err = await importConfigFile(join(OWN, 'bad_unknown_key.toml'), registry, { name: 'bad_unknown_key.toml' }).catch((e) => e);
    expect(err.message).toBe('bad_unknown_key.toml:9: num_repeat: unknown key "num_repeat": sd-scripts rejects it (extra keys not allowed)');
  });

  it('a dataset-level key inside a subset, and an unset ${VAR}', async () => {
    const misplaced = await importConfigText('m.toml', '[[datasets]]\n[[datasets.subsets]]\nimage_dir = "a"\nresolution = 512\n', registry).catch((e) => e);
    expect(misplaced.message).toMatch(/^m\.toml:4: resolution: "resolution" belongs in \[\[datasets\]\]/);
    const unset = await importConfigText('v.yaml', 'job: extension\nconfig:\n  name: x\n  process:\n    - type: sd_trainer\n      model:\n        name_or_path: ${NOPE_NOT_SET}\n', registry, { env: {} }).catch((e) => e);
    expect(unset.message).toMatch(/^v\.yaml:7:\d+: environment variable NOPE_NOT_SET is not set/);
  });

  it('the CLI prints them and exits non-zero', () => {
    const r = spawnSync(join(repoRoot, 'bin', 'loragraph.js'), ['import', join(OWN, 'bad_unknown_key.toml'), '--out', '/dev/null'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad_unknown_key\.toml:9: num_repeat: unknown key/);
  });
});

describe('export to ai-toolkit', () => {
  const aiToolkit = configs.filter((f) => /\.(ya?ml)$/.test(f) || f.endsWith('sd15_ai_toolkit.json'));
  it.each(aiToolkit.map((f) => [basename(f), f]))('%s: import → export → import gives the same graph', async (_n, file) => {
    const a = await importConfigFile(file, registry, { env });
    const arch = a.report.family.from.match(/^model\.arch: (.+)$/)?.[1];
    const flag = a.report.family.from.match(/^model\.(is_\w+)$/)?.[1];
    const out = exportAiToolkit(a.api, registry, { arch: arch ?? (flag === 'is_flux' ? 'flux' : undefined) });
    const b = await importConfigText('exported.yaml', out.yaml, registry);
    // Every key the export writes is one the importer maps (a family loragraph cannot train yet aside).
    expect(b.report.entries.filter((e) => e.status === 'unsupported' && !e.key.endsWith('.model.arch'))).toEqual([]);
    expect(normalized(withFolders(b))).toEqual(normalized(withFolders(a)));
  });

  const python = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!python)('writes a job ai-toolkit\'s loader reads (PyYAML: job, config.name, an sd_trainer process, numbers as numbers)', async () => {
    const a = await importConfigFile(join(OWN, 'sd15_ai_toolkit.yaml'), registry, { env });
    const { yaml } = exportAiToolkit(a.api, registry);
    const script = 'import sys, yaml, json; c = yaml.safe_load(sys.stdin); p = c["config"]["process"][0]; print(json.dumps([c["job"], c["config"]["name"], p["type"], type(p["train"]["lr"]).__name__, p["datasets"][0]["resolution"], p["model"]["arch"]]))';
    const r = spawnSync('python3', ['-c', script], { input: yaml, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(['extension', 'ellie_sd15_v1', 'sd_trainer', 'float', [512, 768], 'sd1']);
  });

  it('through the CLI: import writes the workflow, export writes the job and lists what has no ai-toolkit key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lg-export-'));
    try {
      const run = (...args: string[]) => spawnSync(join(repoRoot, 'bin', 'loragraph.js'), args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
      const imp = run('import', join(OWN, 'kohya_locon_sd15.json'));
      expect(imp.status, imp.stderr).toBe(0);
      expect(imp.stdout).toMatch(/graph written to kohya_locon_sd15\.graph\.json/);
      const exp = run('export', 'kohya_locon_sd15.graph.json', '--format', 'ai-toolkit', '--out', 'job.yaml');
      expect(exp.status, exp.stderr).toBe(0);
      expect(exp.stderr).toMatch(/not exported: Train\.seed = 1234/);
      expect(exp.stderr).toMatch(/not exported: Load Model\.clipSkip = 2/);
      const job = parseDocument(readFileSync(join(dir, 'job.yaml'), 'utf8'), { version: '1.1' }).toJS();
      expect(job.config.process[0]).toMatchObject({ network: { type: 'locon', linear: 32, linear_alpha: 16, conv: 8, conv_alpha: 4 }, train: { lr: 1e-4, optimizer: 'adamw8bit' } });
      expect(run('export', 'kohya_locon_sd15.graph.json', '--format', 'kohya').status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses graphs outside ai-toolkit\'s model: chained Train nodes', async () => {
    const { trainGraph } = await import('../e2e/fixtures');
    expect(() => exportAiToolkit(trainGraph({ steps: 2, secondSteps: 2 }) as ApiGraph, registry)).toThrow(/2 Train nodes/);
  });
});
