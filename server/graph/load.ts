// Reads a graph in either form — the editor's workflow or the compact API form — and returns the API graph
// that runs, plus the workflow when there was one (history keeps it so the editor can restore the canvas).
import { readFile } from 'node:fs/promises';
import type { NodeRegistry } from '../../nodes/registry';
import { ApiGraph } from '../protocol';
import { GraphFormatError } from './errors';
import { workflowToApi } from './workflow';

export interface LoadedGraph {
  format: 'workflow' | 'api';
  api: ApiGraph;
  workflow?: unknown;
}

export function isWorkflow(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && Array.isArray((raw as { nodes?: unknown }).nodes);
}

export function parseGraph(raw: unknown, registry: NodeRegistry): LoadedGraph {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new GraphFormatError('a graph must be a JSON object');
  if (isWorkflow(raw)) return { format: 'workflow', api: workflowToApi(raw, registry), workflow: raw };
  const parsed = ApiGraph.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GraphFormatError(`API graph: node ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  }
  if (Object.keys(parsed.data).length === 0) throw new GraphFormatError('the graph has no nodes');
  return { format: 'api', api: parsed.data };
}

export async function loadGraphFile(file: string, registry: NodeRegistry): Promise<LoadedGraph> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new GraphFormatError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new GraphFormatError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  try {
    return parseGraph(raw, registry);
  } catch (err) {
    if (err instanceof GraphFormatError) throw new GraphFormatError(`${file}: ${err.message}`);
    throw err;
  }
}
