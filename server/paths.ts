// The project's folders under one data dir (models, datasets, input, output, temp, runs, queue state, node work
// dirs), and the confinement rules every user-given path goes through.
import { mkdir, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PathKind, ProjectFolder } from '../nodes/define';

export interface ProjectPaths extends Readonly<Record<ProjectFolder, string>> {
  readonly dataDir: string;
  /** queue.json and history.json */
  readonly state: string;
  /** Per-node-key work dirs (ctx.workDir): the executor's disk tier. */
  readonly cache: string;
}

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function defaultDataDir(): string {
  return resolve(process.env.LORAGRAPH_DATA_DIR || join(repoRoot, '.loragraph'));
}

export function projectPaths(dataDir: string = defaultDataDir(), overrides: Partial<Record<ProjectFolder, string>> = {}): ProjectPaths {
  const root = resolve(dataDir);
  const at = (name: ProjectFolder) => resolve(overrides[name] ?? join(root, name));
  return {
    dataDir: root,
    models: at('models'),
    datasets: at('datasets'),
    input: at('input'),
    output: at('output'),
    temp: at('temp'),
    runs: at('runs'),
    state: join(root, 'state'),
    cache: join(root, 'cache'),
  };
}

export async function ensureProjectFolders(paths: ProjectPaths): Promise<void> {
  for (const dir of [paths.models, paths.datasets, paths.input, paths.output, paths.temp, paths.runs, paths.state, paths.cache]) {
    await mkdir(dir, { recursive: true });
  }
  const { installExamples } = await import('./examples');
  await installExamples(paths);
}

export class PathConfinementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathConfinementError';
  }
}

const FOLDER_OF: Record<string, ProjectFolder> = {
  model: 'models',
  models: 'models',
  dataset: 'datasets',
  datasets: 'datasets',
  input: 'input',
  output: 'output',
  temp: 'temp',
  runs: 'runs',
};

export function folderFor(paths: ProjectPaths, kind: PathKind): string {
  const folder = FOLDER_OF[kind];
  if (!folder) throw new PathConfinementError(`unknown project folder kind "${kind}"`);
  return paths[folder];
}

/**
 * Where a LoRA path points: under models/ as ComfyUI keeps them, or under output/ when it starts with
 * "output/" — where Train and Save LoRA write, so a file just trained loads without copying it.
 */
export const LORA_OUTPUT_PREFIX = 'output/';

/** Resolves a path widget's value inside the project folder its kind names (see resolveInside). */
export function resolveProjectPath(paths: ProjectPaths, kind: PathKind, p: string, what = `${kind} path`): string {
  if (kind === 'lora') {
    if (typeof p === 'string' && p.startsWith(LORA_OUTPUT_PREFIX)) return resolveInside(paths.output, p.slice(LORA_OUTPUT_PREFIX.length), what);
    return resolveInside(paths.models, p, what);
  }
  return resolveInside(folderFor(paths, kind), p, what);
}

/**
 * Resolves `p` (relative to `base`, or absolute inside it) without touching the disk. Graph files are shared, so a
 * path in one must not reach outside the user's folders; symlinks the user placed inside them are theirs to follow.
 */
export function resolveInside(base: string, p: string, what: string): string {
  if (typeof p !== 'string' || p.length === 0) throw new PathConfinementError(`${what}: empty path`);
  if (p.includes('\0')) throw new PathConfinementError(`${what}: path contains a NUL byte`);
  const full = isAbsolute(p) ? resolve(p) : resolve(base, p);
  const rel = relative(base, full);
  if (rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) {
    throw new PathConfinementError(`${what}: "${p}" is outside ${base}`);
  }
  return full;
}

/** Like resolveInside but for files served to clients: the real path (symlinks followed) must stay inside too. */
export async function resolveExistingInside(base: string, p: string, what: string): Promise<string> {
  const full = resolveInside(base, p, what);
  const [realBase, realFull] = await Promise.all([realpath(base), realpath(full)]);
  const rel = relative(realBase, realFull);
  if (rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) {
    throw new PathConfinementError(`${what}: "${p}" leads outside ${base}`);
  }
  return realFull;
}
