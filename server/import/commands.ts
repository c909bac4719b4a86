// The `import` and `export` subcommands of the loragraph CLI (wired in server/cli.ts).
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, extname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { NodeRegistry } from '../../nodes/registry';
import { loadGraphFile } from '../graph/load';
import { projectPaths } from '../paths';
import { exportAiToolkit } from './export-ai-toolkit';
import { flux2ArchOfGraph } from './export-arch';
import { importConfigFile } from './index';
import { formatReport } from './report';

/** Writes to a temporary name and renames, so a failed write leaves no half file. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** `loragraph import <file> [--out graph.json] [--data-dir DIR] [--api]`: prints the report, writes the workflow. */
export async function importCommand(args: string[], registry: NodeRegistry): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { out: { type: 'string' }, 'data-dir': { type: 'string' }, api: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length !== 1) throw Object.assign(new Error('import needs exactly one config file'), { usage: true });
  const file = positionals[0]!;
  const result = await importConfigFile(resolve(file), registry, { name: file, paths: projectPaths(values['data-dir']) });
  const out = resolve(values.out ?? `${basename(file, extname(file))}.graph.json`);
  writeAtomic(out, `${JSON.stringify(values.api ? result.api : result.workflow, null, 2)}\n`);
  console.log(formatReport(result.report));
  console.log(`\ngraph written to ${relative(process.cwd(), out) || out}`);
  return 0;
}

/** `loragraph export <graph> --format ai-toolkit [--out job.yaml] [--arch sd1] [--data-dir DIR]`: writes the YAML, lists what did not fit. */
export async function exportCommand(args: string[], registry: NodeRegistry): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { format: { type: 'string' }, out: { type: 'string' }, arch: { type: 'string' }, name: { type: 'string' }, 'data-dir': { type: 'string' } }, allowPositionals: true });
  if (positionals.length !== 1) throw Object.assign(new Error('export needs exactly one graph file'), { usage: true });
  if (values.format !== 'ai-toolkit') throw Object.assign(new Error(`export --format ${values.format ?? '(missing)'}: the format loragraph writes is ai-toolkit`), { usage: true });
  const file = resolve(positionals[0]!);
  const loaded = await loadGraphFile(file, registry);
  // FLUX.2's release (klein 4B, 9B, dev) from the files the graph names, when --arch does not say it.
  const detected = values.arch ? undefined : await flux2ArchOfGraph(loaded.api, projectPaths(values['data-dir']));
  const result = exportAiToolkit(loaded.api, registry, { arch: values.arch, name: values.name, detected });
  if (detected && result.yaml.includes(`arch: ${detected.arch}\n`)) console.error(`arch ${detected.arch} from ${detected.from}`);
  const out = resolve(values.out ?? `${basename(file, extname(file))}.yaml`);
  writeAtomic(out, result.yaml);
  for (const n of result.notExported) console.error(`not exported: ${n}`);
  console.log(`ai-toolkit job written to ${relative(process.cwd(), out) || out}`);
  return 0;
}
