// HTTP routes for the node library, queueing graphs, the queue, history, interrupt and system stats.
import { Router } from 'express';
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import type { NodeRegistry } from '../../nodes/registry';
import type { Executor } from '../executor/executor';
import { GraphFormatError } from '../graph/errors';
import { parseGraph } from '../graph/load';
import type { HistoryStore } from '../history';
import { HttpError } from '../httpErrors';
import { InterruptRequest, PROTOCOL_VERSION, PromptRequest, QueueCommand, type PromptResponse } from '../protocol';
import type { JobQueue } from '../queue';
import type { ProjectPaths } from '../paths';
import { expandSweep, sweepJobs, takeSweepNodes } from '../sweep';
import { validateGraph } from '../validate';
import type { z } from 'zod';

export interface JobRoutesDeps {
  registry: NodeRegistry;
  queue: JobQueue;
  history: HistoryStore;
  executor: Executor;
  paths: ProjectPaths;
  version: string;
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const where = issue.path.length ? issue.path.map(String).join('.') : 'body';
  throw new HttpError(400, `${what}: ${where}: ${issue.message}`);
}

export function jobRoutes(deps: JobRoutesDeps): Router {
  const r = Router();
  const { registry, queue, history } = deps;

  r.get('/object_info', (_req, res) => {
    res.json(registry.objectInfo());
  });
  r.get('/object_info/:type', (req, res) => {
    const def = registry.get(req.params.type);
    if (!def) throw new HttpError(404, `unknown node type "${req.params.type}"`, 'not_found');
    res.json({ [def.type]: def.info() });
  });

  r.post('/prompt', async (req, res) => {
    const body = parseBody(PromptRequest, req.body, 'prompt request');
    let loaded;
    let plan;
    try {
      loaded = parseGraph(body.prompt, registry);
      // Sweep nodes and a `sweep` field both expand into one job per combination of values.
      const { api, axes } = takeSweepNodes(loaded.api);
      loaded = { ...loaded, api };
      const allAxes = [...axes, ...(body.sweep ?? [])];
      if (allAxes.length) plan = expandSweep(api, registry, allAxes);
    } catch (err) {
      if (err instanceof GraphFormatError) throw new HttpError(400, err.message, 'invalid_graph');
      throw err;
    }
    const base = {
      workflow: body.workflow ?? loaded.workflow,
      ...(body.clientId ? { clientId: body.clientId } : {}),
      ...(body.front ? { front: true } : {}),
    };
    const inputs = plan ? sweepJobs(plan, base) : [{ ...base, prompt: loaded.api }];
    for (const input of inputs) {
      const v = validateGraph(input.prompt, registry, { paths: deps.paths });
      const which = input.sweep ? (input.sweep.shared ? 'the sweep\'s shared job: ' : `sweep job ${input.sweep.index} (${JSON.stringify(input.sweep.settings)}): `) : '';
      if (!v.ok) throw new HttpError(400, which + v.error.message, v.error.type, { nodeErrors: v.nodeErrors });
    }
    const jobs = await queue.enqueue(inputs);
    const first = jobs.find((j) => !j.sweep?.shared) ?? jobs[0]!;
    const out: PromptResponse = {
      promptId: first.promptId,
      number: first.number,
      nodeErrors: {},
      ...(plan ? { sweep: { id: plan.id, jobs: jobs.map((j) => ({ promptId: j.promptId, number: j.number, sweep: j.sweep! })) } } : {}),
    };
    res.json(out);
  });
  r.get('/prompt', (_req, res) => {
    const snap = queue.snapshot();
    res.json({ queueRemaining: snap.pending.length + snap.running.length, running: queue.runningId() });
  });

  r.get('/queue', (_req, res) => {
    res.json(queue.snapshot());
  });
  r.post('/queue', async (req, res) => {
    const cmd = parseBody(QueueCommand, req.body, 'queue command');
    if ('clear' in cmd) {
      await queue.clear();
      res.json({ deleted: 'all' });
    } else {
      res.json({ deleted: await queue.delete(cmd.delete) });
    }
  });

  r.post('/interrupt', async (req, res) => {
    const body = parseBody(InterruptRequest, req.body ?? {}, 'interrupt request');
    res.json({ interrupted: await queue.interrupt(body.promptId) });
  });

  r.get('/history', (req, res) => {
    const max = req.query.maxItems === undefined ? Infinity : Number(req.query.maxItems);
    if (!Number.isInteger(max) && max !== Infinity) throw new HttpError(400, 'maxItems must be an integer');
    res.json(Object.fromEntries(history.list(Math.max(0, max)).map((e) => [e.promptId, e])));
  });
  r.get('/history/:id', (req, res) => {
    const entry = history.get(req.params.id);
    res.json(entry ? { [entry.promptId]: entry } : {});
  });
  r.post('/history', (req, res) => {
    const cmd = parseBody(QueueCommand, req.body, 'history command');
    if ('clear' in cmd) history.clear();
    else history.delete(cmd.delete);
    res.json({ ok: true });
  });

  r.get('/system_stats', (_req, res) => {
    res.json({
      system: {
        os: `${platform()} ${release()}`,
        node: process.version,
        loragraph: deps.version,
        protocol: PROTOCOL_VERSION,
        cpus: cpus().length,
        ramTotal: totalmem(),
        ramFree: freemem(),
      },
      cache: deps.executor.cache.stats(),
    });
  });
  return r;
}
