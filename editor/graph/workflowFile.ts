// Graph files as plain data: reading one (from a file, a drop, an example or the last session), writing one for
// download, and remembering the last graph in localStorage. Nothing here knows about the canvas.
import { Workflow } from '../../server/protocol';

export type { Workflow };

export class WorkflowFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkflowFileError';
  }
}

/** Checks that `data` (already JSON-parsed) is an editor workflow; names the file and the field when not. */
export function toWorkflow(data: unknown, source: string): Workflow {
  if (data && typeof data === 'object' && !Array.isArray(data) && !('nodes' in data)) {
    const first = Object.values(data)[0];
    if (first && typeof first === 'object' && 'class_type' in first) {
      throw new WorkflowFileError(`${source} is an API-form graph ({id: {class_type, inputs}}); run it with \`loragraph run\`, or open a workflow saved by the editor`);
    }
  }
  const parsed = Workflow.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new WorkflowFileError(`${source}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  // Keep the file's own fields (groups, extra, version) exactly: saving it again must give the same JSON.
  return data as Workflow;
}

export function parseWorkflowText(text: string, source: string): Workflow {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new WorkflowFileError(`${source} is not JSON: ${(err as Error).message}`);
  }
  return toWorkflow(data, source);
}

export function workflowFileText(wf: Workflow): string {
  return `${JSON.stringify(wf, null, 2)}\n`;
}

/** A file name for a graph name: letters, digits, - _ . kept; always ends in .json. */
export function workflowFileName(name: string): string {
  const stem = name.replace(/\.json$/i, '').replace(/[^\w.-]+/g, '_').replace(/^_+|_+$/g, '') || 'graph';
  return `${stem}.json`;
}

const LAST_KEY = 'loragraph.lastGraph';

export function rememberGraph(name: string, wf: Workflow): void {
  try {
    localStorage.setItem(LAST_KEY, JSON.stringify({ name, workflow: wf }));
  } catch {
    // Storage full or disabled: the graph is still on the canvas; only the next visit starts elsewhere.
  }
}

export function lastGraph(): { name: string; workflow: Workflow } | null {
  const text = localStorage.getItem(LAST_KEY);
  if (!text) return null;
  try {
    const data = JSON.parse(text) as { name?: unknown; workflow?: unknown };
    return { name: typeof data.name === 'string' ? data.name : 'untitled', workflow: toWorkflow(data.workflow, 'the last graph') };
  } catch {
    return null;
  }
}

export function downloadWorkflow(name: string, wf: Workflow): void {
  const url = URL.createObjectURL(new Blob([workflowFileText(wf)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = workflowFileName(name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
