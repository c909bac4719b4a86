// `loragraph import` and POST /api/import: a config file people bring → the equivalent graph (workflow and API
// form) and the report of what carried over. The format is recognised from the content: an ai-toolkit job
// (job + config), an sd-scripts dataset TOML ([general] / [[datasets]]), an sd-scripts --config_file TOML, or a
// kohya_ss GUI config / preset (JSON).
import { dirname } from 'node:path';
import type { NodeRegistry } from '../../nodes/registry';
import type { ProjectPaths } from '../paths';
import type { ApiGraph, Workflow } from '../protocol';
import { importAiToolkit, isAiToolkit } from './ai-toolkit';
import { importDatasetToml } from './dataset-toml';
import { familyFromKohya } from './families';
import { importKohya, isKohyaGui } from './kohya';
import { Plan, planToApi, planToWorkflow } from './plan';
import { ReportBuilder, type ImportReport } from './report';
import { ConfigImportError, parseSource, substituteEnv, syntaxOf } from './source';

export interface ImportResult {
  api: ApiGraph;
  workflow: Workflow;
  report: ImportReport;
}

export interface ImportOptions {
  /** The data folder's paths: absolute paths inside models/ or datasets/ become relative ones. */
  paths?: ProjectPaths;
  /** Folder of the file (for sd-scripts' dataset_config and prompt files); defaults to the file's folder. */
  dir?: string;
  env?: Record<string, string | undefined>;
}

/** Imports the text of a config file; `file` names it in messages and decides the syntax by its extension. */
export async function importConfigText(file: string, text: string, registry: NodeRegistry, opts: ImportOptions = {}): Promise<ImportResult> {
  const env = opts.env ?? process.env;
  let source = parseSource(file, text, env);
  const data = source.data;
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ConfigImportError(file, 'expected a mapping of settings at the top level');
  const dir = opts.dir ?? dirname(file);
  let result: { plan: Plan; report: ReportBuilder; family: ImportReport['family']; format: string };
  if (isAiToolkit(data)) {
    // ai-toolkit substitutes ${VAR} in the text before parsing.
    if (text.includes('${')) source = parseSource(file, substituteEnv(file, text, env), env);
    result = { ...(await importAiToolkit(source, registry, { paths: opts.paths })), format: 'ai-toolkit' };
  } else if (source.syntax === 'toml' && ('datasets' in data || 'general' in data)) {
    const plan = new Plan(registry);
    const family = await familyFromKohya({}, 'a dataset file names no model: SD 1.x assumed');
    plan.set('model.checkpoint', 'builtin:tiny');
    plan.use('loss');
    const report = importDatasetToml(source, plan, family, { paths: opts.paths });
    report.notes.push('a dataset file only: model, network and optimizer keep their defaults');
    result = { plan, report, family, format: 'sd-scripts dataset config' };
  } else if (source.syntax === 'toml') {
    result = await importKohya(source, registry, { paths: opts.paths, dir, format: 'sd-scripts config' });
  } else if (isKohyaGui(data)) {
    result = await importKohya(source, registry, { paths: opts.paths, dir, format: 'kohya_ss' });
  } else {
    throw new ConfigImportError(file, 'not a config loragraph knows: expected an ai-toolkit job (job:, config:), a kohya_ss config (LoRA_type, network_dim, …) or an sd-scripts TOML');
  }
  const api = planToApi(result.plan);
  const report: ImportReport = {
    file, format: result.format,
    family: { id: result.family.id, label: result.family.label, trainable: result.family.trainable, from: result.family.from },
    entries: result.report.entries(),
    notes: result.report.notes,
  };
  return { api, workflow: planToWorkflow(result.plan, api), report };
}

export async function importConfigFile(path: string, registry: NodeRegistry, opts: ImportOptions & { name?: string } = {}): Promise<ImportResult> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigImportError(opts.name ?? path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return importConfigText(opts.name ?? path, text, registry, { ...opts, dir: opts.dir ?? dirname(path) });
}

export { ConfigImportError, syntaxOf };
