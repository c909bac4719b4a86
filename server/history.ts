// Finished jobs with their outputs, kept on disk one file per job (state/history/<number>-<id>.json) so finishing
// a job writes only that job, and history survives restarts.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from './atomicJson';
import { HistoryEntry, type ExecutionEvent, type UiOutput } from './protocol';

const FILE = /^(\d+)-([\w-]{1,100})\.json$/;

export class HistoryStore {
  private entries = new Map<string, HistoryEntry>();
  private readonly dir: string;

  constructor(stateDir: string, private readonly limit = 1000) {
    this.dir = join(stateDir, 'history');
    mkdirSync(this.dir, { recursive: true });
    const files = readdirSync(this.dir)
      .map((f) => FILE.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(a[1]) - Number(b[1]));
    for (const m of files) {
      let raw: unknown;
      try {
        raw = readJson<unknown>(join(this.dir, m[0]), null);
      } catch (err) {
        console.error(`loragraph: skipping unreadable history entry: ${(err as Error).message}`);
        continue;
      }
      const parsed = HistoryEntry.safeParse(raw);
      if (parsed.success) this.entries.set(parsed.data.promptId, parsed.data);
    }
  }

  add(entry: HistoryEntry): void {
    this.entries.delete(entry.promptId);
    this.entries.set(entry.promptId, entry);
    writeJsonAtomic(this.fileOf(entry), entry);
    while (this.entries.size > this.limit) this.remove(this.entries.keys().next().value!);
  }

  get(promptId: string): HistoryEntry | undefined {
    return this.entries.get(promptId);
  }

  /** The newest `max` entries, oldest first. */
  list(max = Infinity): HistoryEntry[] {
    const all = [...this.entries.values()];
    return max >= all.length ? all : all.slice(all.length - max);
  }

  delete(ids: string[]): void {
    for (const id of ids) this.remove(id);
  }

  clear(): void {
    for (const id of [...this.entries.keys()]) this.remove(id);
  }

  private remove(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    rmSync(this.fileOf(e), { force: true });
  }

  private fileOf(e: HistoryEntry): string {
    return join(this.dir, `${e.number}-${e.promptId.replace(/[^\w-]/g, '_')}.json`);
  }
}

/** Watches a job's events for the loss its progress reports carry, so the job's final loss is known at its end. */
export class LossTracker {
  last: number | undefined;

  see(event: ExecutionEvent): void {
    const loss = event.type === 'progress' ? event.data.data?.loss : undefined;
    if (typeof loss === 'number' && Number.isFinite(loss)) this.last = loss;
  }

  /** The loss series a node shows (Train's, for chained Train nodes the one that got furthest), else the last reported. */
  final(outputs: Record<string, UiOutput>): number | undefined {
    return finalLoss(outputs) ?? this.last;
  }
}

/** The last loss a job's training shows: the newest point of the `loss` series its nodes output (chained Train
 *  nodes: the one that reached the highest step). Undefined when no node shows one. */
export function finalLoss(outputs: Record<string, UiOutput>): number | undefined {
  let best: [number, number] | undefined;
  for (const ui of Object.values(outputs)) {
    const series = ui.loss;
    if (!Array.isArray(series) || series.length === 0) continue;
    const last = series[series.length - 1];
    if (!Array.isArray(last) || typeof last[0] !== 'number' || typeof last[1] !== 'number' || !Number.isFinite(last[1])) continue;
    if (!best || last[0] >= best[0]) best = [last[0], last[1]];
  }
  return best?.[1];
}
