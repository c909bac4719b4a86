// The loragraph command line: `serve` (the server), `start` (what npm start runs: build the editor if needed, serve,
// print the URL), `run` (execute a graph file headless, with --set overrides, --sweep and a progress bar per long
// node) and `worker` (run jobs from a server's Redis queue).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadRegistry, type NodeRegistry } from '../nodes/registry';
import { createServer } from './app';
import { Executor, type RunResult } from './executor/executor';
import { GraphFormatError } from './graph/errors';
import { loadGraphFile } from './graph/load';
import { applyOverrides, parseSetArgument } from './graph/set';
import { ensureProjectFolders, projectPaths, repoRoot, type ProjectPaths } from './paths';
import { exportCommand, importCommand } from './import/commands';
import { ProgressPrinter } from './progressBar';
import type { ExecutionEvent, NodeErrors } from './protocol';
import { validateGraph, type ValidGraph } from './validate';
import { describeRedisUrl } from './redis/wire';
import { startWorker } from './redis/worker';
import { expandSweep, parseSweepArgument, takeSweepNodes } from './sweep';
import { LossTracker } from './history';

const USAGE = `usage:
  loragraph start [--port 8188] [--listen ADDR] [--data-dir DIR]     serve and print the editor's URL
  loragraph serve [--port 8188] [--listen ADDR] [--data-dir DIR] [--redis URL]   serve the API and the editor
  loragraph run <graph.json> [--set "<node title or id>.<widget>=<value>" ...] [--sweep "<node>.<widget>=<v1>,<v2>,…" ...]
                [--out DIR] [--data-dir DIR]
  loragraph worker --redis URL --data-dir DIR [--name NAME]          run jobs from the server's Redis queue

options:
  --listen ADDR   address to listen on (default 127.0.0.1); any other needs the token in $LORAGRAPH_TOKEN or the printed one
  --data-dir DIR  project folders (models, datasets, input, output, temp, runs, queue state); default .loragraph/
  --nodes DIR     load node types from DIR instead of nodes/
  --out DIR       (run) where output nodes write, instead of <data-dir>/output
  --sweep SPEC    (run) one run per value; several --sweep options run every combination
  --redis URL     (serve, worker) jobs go through BullMQ on this Redis: redis://[:password@]host:6379[/db]; workers and
                  the server need the same LORAGRAPH_TOKEN and the same data folder (a shared mount)
  --name NAME     (worker) shown in the editor's queue and history (default host-pid)
  --lock-ms N, --stalled-check-ms N   (worker) how soon a dead worker's job goes to another (default 30000 each)
  --max-stalls N  (worker) times a job may outlive its worker before it fails instead (default 2)
`;

class UsageError extends Error {}

async function registryFrom(dir: string | undefined): Promise<NodeRegistry> {
  const registry = await loadRegistry(dir ? resolve(dir) : undefined);
  for (const e of registry.loadErrors) console.error(`loragraph: warning: ${e.file} did not load: ${e.message}`);
  return registry;
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return 8188;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port ${text}: expected a port number 0-65535`);
  return n;
}

async function serve(args: string[], opts: { start: boolean }): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string' }, listen: { type: 'string' }, 'data-dir': { type: 'string' }, nodes: { type: 'string' }, redis: { type: 'string' } },
    allowPositionals: false,
  });
  if (opts.start) buildEditorIfMissing();
  const registry = await registryFrom(values.nodes);
  const server = await createServer({ registry, host: values.listen ?? '127.0.0.1', port: parsePort(values.port), dataDir: values['data-dir'], ...(values.redis ? { redisUrl: values.redis } : {}) });
  if (values.redis) console.log(`loragraph: jobs go to the Redis queue at ${describeRedisUrl(values.redis)}; start workers with \`loragraph worker --redis … --data-dir …\``);
  const graph = opts.start && existsSync(join(repoRoot, 'graphs', 'quickstart.json')) ? 'graph=quickstart' : '';
  const query = [server.token ? `token=${encodeURIComponent(server.token)}` : '', graph].filter(Boolean).join('&');
  console.log(`loragraph: ${registry.types().length} node types; data in ${server.paths.dataDir}`);
  if (server.token && !process.env.LORAGRAPH_TOKEN) console.log(`loragraph: access token ${server.token} (set LORAGRAPH_TOKEN to choose your own)`);
  console.log(`loragraph: listening on ${server.url}${query ? `/?${query}` : ''}`);
  await new Promise<void>((done) => {
    const stop = () => {
      console.log('loragraph: stopping (a running job is recorded as interrupted)…');
      server.close().then(done, done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

/** `npm start`: build the editor when there is no build, or when its sources changed since the last one. */
function buildEditorIfMissing(): void {
  if (!existsSync(join(repoRoot, 'editor', 'index.html'))) return;
  const built = join(repoRoot, 'editor', 'dist', 'index.html');
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : -1;
  const sources = [join(repoRoot, 'editor'), join(repoRoot, 'vite.config.ts'), join(repoRoot, 'server', 'protocol.ts')];
  if (builtAt >= 0 && !sources.some((p) => newerThan(p, builtAt))) return;
  console.log(builtAt < 0 ? 'loragraph: building the editor (first start)…' : 'loragraph: the editor changed; rebuilding…');
  const r = spawnSync(join(repoRoot, 'node_modules', '.bin', 'vite'), ['build'], { cwd: repoRoot, stdio: 'inherit' });
  if (r.status !== 0) console.error('loragraph: the editor build failed; serving the API only');
}

/** Whether a file, or any file under a folder (the build output aside), changed after `t`. */
function newerThan(path: string, t: number): boolean {
  if (!existsSync(path)) return false;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs > t;
  return readdirSync(path).some((name) => name !== 'dist' && name !== 'node_modules' && newerThan(join(path, name), t));
}

function printNodeErrors(nodeErrors: NodeErrors): void {
  for (const [id, e] of Object.entries(nodeErrors)) {
    for (const err of e.errors) {
      console.error(`  node ${id} (${e.title ? `${e.title}, ` : ''}${e.type})${err.field ? ` ${err.field}` : ''}: ${err.message}`);
    }
  }
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      set: { type: 'string', multiple: true },
      sweep: { type: 'string', multiple: true },
      out: { type: 'string' },
      'data-dir': { type: 'string' },
      nodes: { type: 'string' },
    },
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('run needs exactly one graph file');
  const registry = await registryFrom(values.nodes);
  const file = resolve(positionals[0]!);
  const loaded = await loadGraphFile(file, registry);
  const set = applyOverrides(loaded.api, registry, (values.set ?? []).map(parseSetArgument));
  const { api, axes } = takeSweepNodes(set);
  axes.push(...(values.sweep ?? []).map(parseSweepArgument));
  const paths: ProjectPaths = projectPaths(values['data-dir'], values.out ? { output: resolve(values.out) } : {});
  // A sweep runs its variants one after another in this process; the executor's cache shares their upstream.
  const runs = axes.length ? expandSweep(api, registry, axes).variants : [{ api, settings: {} }];
  const graphs = [];
  for (const r of runs) {
    const v = validateGraph(r.api, registry, { paths });
    if (!v.ok) {
      const which = runs.length > 1 ? ` (sweep ${JSON.stringify(r.settings)})` : '';
      console.error(`loragraph: ${relative(process.cwd(), file)}${which} is not a valid graph: ${v.error.message}`);
      printNodeErrors(v.nodeErrors);
      return 2;
    }
    graphs.push({ graph: v.graph, api: r.api, settings: r.settings });
  }
  await ensureProjectFolders(paths);
  const executor = new Executor({ paths, logError: (m, e) => process.env.LORAGRAPH_DEBUG && console.error(m, e) });
  const controller = new AbortController();
  const onSigint = () => controller.abort('interrupted (Ctrl+C)');
  process.once('SIGINT', onSigint);
  const results: { settings: Record<string, unknown>; status: string; loss: number | undefined; images: string[] }[] = [];
  let code = 0;
  for (const [i, g] of graphs.entries()) {
    if (graphs.length > 1) console.error(`sweep ${i + 1}/${graphs.length}: ${Object.entries(g.settings).map(([k, val]) => `${k}=${val}`).join(', ')}`);
    const loss = new LossTracker();
    const r = await runOne(g.graph, g.api, paths, executor, controller.signal, loss);
    results.push({ settings: g.settings, status: r.status, loss: loss.final(r.outputs), images: Object.values(r.outputs).flatMap((o) => (o.images ?? []).map((img) => join(paths[img.type], img.subfolder ?? '', img.filename))) });
    if (r.status === 'interrupted') { code = 130; break; }
    if (r.status !== 'success') code = 1;
  }
  process.off('SIGINT', onSigint);
  if (graphs.length > 1) {
    console.log('sweep results:');
    for (const r of results) console.log(`  ${Object.entries(r.settings).map(([k, val]) => `${k}=${val}`).join(', ')}: ${r.status}, final loss ${r.loss?.toFixed(4) ?? '–'}, ${r.images.length} image(s)`);
  }
  return code;
}

async function runOne(graph: ValidGraph, api: unknown, paths: ProjectPaths, executor: Executor, signal: AbortSignal, loss: LossTracker): Promise<RunResult> {
  const bar = new ProgressPrinter();
  const label = (id: string) => `${graph.nodes.get(id)?.title ?? id} [${id}]`;
  const emit = (e: ExecutionEvent) => {
    loss.see(e);
    switch (e.type) {
      case 'execution_cached':
        if (e.data.nodes.length) console.error(`cached: ${e.data.nodes.map(label).join(', ')}`);
        break;
      case 'executing':
        if (e.data.node) console.error(`running ${label(e.data.node)}`);
        break;
      case 'progress':
        bar.update(label(e.data.node), e.data);
        break;
      case 'warning':
        bar.end();
        console.error(`warning: ${label(e.data.node)}: ${e.data.message}`);
        break;
      case 'executed':
        bar.end();
        for (const img of e.data.output.images ?? []) console.log(`${label(e.data.node)}: ${join(paths[img.type], img.subfolder ?? '', img.filename)}`);
        for (const t of e.data.output.text ?? []) console.log(`${label(e.data.node)}: ${t}`);
        break;
      case 'execution_error':
        bar.end();
        console.error(`loragraph: ${e.data.node ? `node ${label(e.data.node)} (${e.data.nodeType}) failed` : 'failed'}: ${e.data.message}`);
        break;
      case 'execution_interrupted':
        bar.end();
        console.error(`loragraph: interrupted${e.data.node ? ` during ${label(e.data.node)}` : ''}`);
        break;
      default:
        break;
    }
  };
  const started = Date.now();
  const result = await executor.run(graph, { promptId: 'cli', signal, emit, workflow: api });
  if (result.status === 'success') {
    console.error(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${result.executed.length} executed, ${result.cached.length} cached; outputs in ${paths.output}`);
  }
  return result;
}

/** `loragraph worker`: runs jobs from the server's Redis queue until SIGINT/SIGTERM. */
async function worker(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      redis: { type: 'string' },
      'data-dir': { type: 'string' },
      nodes: { type: 'string' },
      name: { type: 'string' },
      'lock-ms': { type: 'string' },
      'stalled-check-ms': { type: 'string' },
      'max-stalls': { type: 'string' },
    },
    allowPositionals: false,
  });
  if (!values.redis) throw new UsageError('worker needs --redis URL (the server\'s Redis)');
  const ms = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 100) throw new UsageError(`--${flag} ${text}: expected milliseconds (at least 100)`);
    return n;
  };
  const count = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag} ${text}: expected a whole number`);
    return n;
  };
  const registry = await registryFrom(values.nodes);
  const paths = projectPaths(values['data-dir']);
  const running = await startWorker({
    redisUrl: values.redis,
    registry,
    paths,
    token: process.env.LORAGRAPH_TOKEN || null,
    ...(values.name ? { name: values.name } : {}),
    lockMs: ms('lock-ms', values['lock-ms']),
    stalledCheckMs: ms('stalled-check-ms', values['stalled-check-ms']),
    maxStalls: count('max-stalls', values['max-stalls']),
  });
  return new Promise<number>((done) => {
    const stop = () => {
      console.error(`loragraph worker ${running.name}: stopping (a running job goes back to the queue for another worker)`);
      running.close().then(() => done(0), () => done(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    void running.stopped.then(() => running.close().then(() => done(1), () => done(1)));
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest, { start: false });
      case 'start':
        return await serve(rest, { start: true });
      case 'run':
        return await run(rest);
      case 'import':
        return await importCommand(rest, await registryFrom(undefined));
      case 'export':
        return await exportCommand(rest, await registryFrom(undefined));
      case 'worker':
        return await worker(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command ? 0 : 2;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { usage?: boolean }).usage || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`loragraph: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof GraphFormatError) {
      console.error(`loragraph: ${err.message}`);
      return 2;
    }
    console.error(`loragraph: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.LORAGRAPH_DEBUG) console.error(err);
    return 1;
  }
}

// Run when executed directly (tsx server/cli.ts …); bin/loragraph.js imports main and calls it itself.
if (process.argv[1] && resolve(process.argv[1]) === resolve(repoRoot, 'server', 'cli.ts')) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
