// What an import carried over, key by key: every key of the source file appears exactly once, as mapped
// (same meaning), changed (mapped, but the meaning shifts — said why), unsupported (no counterpart: named)
// or ignored (nothing to carry: unset, or a hardware/runtime setting loragraph decides itself).
export type KeyStatus = 'mapped' | 'changed' | 'unsupported' | 'ignored';

export interface ReportEntry {
  /** The key's path in the file: `config.process[0].train.lr`, `datasets[0].subsets[1].num_repeats`, `network_dim`. */
  key: string;
  /** 1-based line of the key in the file, when the parser gives positions. */
  line?: number;
  status: KeyStatus;
  /** The value as read (after substitution). */
  value: unknown;
  /** Where it went: `Optimizer.learningRate`, `Dataset: stars.repeats`. */
  targets: string[];
  note?: string;
}

export interface ImportReport {
  file: string;
  /** ai-toolkit, kohya_ss, sd-scripts dataset, sd-scripts config. */
  format: string;
  /** The model family the file trains, and whether loragraph can train it yet. */
  family: { id: string; label: string; trainable: boolean; from: string };
  entries: ReportEntry[];
  /** Facts about the whole file (e.g. a hub model id that must be placed in models/). */
  notes: string[];
}

/** Collects entries and refuses a key twice, so "every key exactly once" holds by construction. */
export class ReportBuilder {
  private readonly byKey = new Map<string, ReportEntry>();
  readonly notes: string[] = [];

  private readonly sources: [string, (key: string) => number | undefined][] = [];

  constructor(lineOf: (key: string) => number | undefined = () => undefined) {
    this.sources.push(['', lineOf]);
  }

  /** Keys starting with `prefix` (a second file, like a dataset config a kohya config names) get their lines from `lineOf`. */
  addSource(prefix: string, lineOf: (key: string) => number | undefined): void {
    this.sources.unshift([prefix, lineOf]);
  }

  private lineOf(key: string): number | undefined {
    const [prefix, lineOf] = this.sources.find(([p]) => key.startsWith(p))!;
    return lineOf(key.slice(prefix.length));
  }

  add(key: string, value: unknown, status: KeyStatus, targets: string[] = [], note?: string): void {
    if (this.byKey.has(key)) throw new Error(`import report: key ${key} reported twice (a mapping table lists it twice)`);
    const line = this.lineOf(key);
    this.byKey.set(key, { key, ...(line !== undefined ? { line } : {}), status, value, targets, ...(note ? { note } : {}) });
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  entries(): ReportEntry[] {
    // A second file's keys (prefixed) after the main file's, each in line order.
    const second = (e: ReportEntry) => (this.sources.some(([p]) => p && e.key.startsWith(p)) ? 1 : 0);
    return [...this.byKey.values()].sort((a, b) => second(a) - second(b) || (a.line ?? 1e9) - (b.line ?? 1e9));
  }
}

const HEADINGS: Record<KeyStatus, string> = {
  mapped: 'Mapped',
  changed: 'Mapped with a change of meaning',
  unsupported: 'Not supported (dropped)',
  ignored: 'Nothing to carry (unset, or decided by loragraph)',
};

const show = (v: unknown) => {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
};

/** The report as the CLI prints it: a heading per status, one line per key. */
export function formatReport(r: ImportReport): string {
  const out: string[] = [`${r.file} (${r.format})`];
  out.push(`model family: ${r.family.label} (${r.family.from})${r.family.trainable ? '' : ' — not trainable in loragraph yet; the graph loads but Load Model will refuse the checkpoint'}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  for (const status of ['mapped', 'changed', 'unsupported', 'ignored'] as const) {
    const list = r.entries.filter((e) => e.status === status);
    if (!list.length) continue;
    out.push('', `${HEADINGS[status]} (${list.length}):`);
    for (const e of list) {
      const where = e.line !== undefined ? `:${e.line}` : '';
      const to = e.targets.length ? ` → ${e.targets.join(', ')}` : '';
      out.push(`  ${e.key}${where} = ${show(e.value)}${to}${e.note ? `  (${e.note})` : ''}`);
    }
  }
  return out.join('\n');
}
