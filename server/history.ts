// Finished jobs with their outputs, newest last, kept on disk (state/history.json) so they survive restarts.
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from './atomicJson';
import { HistoryEntry } from './protocol';

export class HistoryStore {
  private entries = new Map<string, HistoryEntry>();
  private readonly file: string;

  constructor(stateDir: string, private readonly limit = 1000) {
    this.file = join(stateDir, 'history.json');
    const raw = readJson<unknown[]>(this.file, []);
    for (const item of Array.isArray(raw) ? raw : []) {
      const parsed = HistoryEntry.safeParse(item);
      if (parsed.success) this.entries.set(parsed.data.promptId, parsed.data);
    }
  }

  add(entry: HistoryEntry): void {
    this.entries.delete(entry.promptId);
    this.entries.set(entry.promptId, entry);
    while (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value!);
    this.save();
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
    for (const id of ids) this.entries.delete(id);
    this.save();
  }

  clear(): void {
    this.entries.clear();
    this.save();
  }

  private save(): void {
    writeJsonAtomic(this.file, [...this.entries.values()]);
  }
}
