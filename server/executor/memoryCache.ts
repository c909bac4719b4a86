// The in-memory tier of the executor's cache: node outputs by cache key, least recently used dropped first once
// their estimated size passes the byte budget.
import type { UiOutput } from '../protocol';

export interface CachedResult {
  /** Output values by output index. */
  outputs: readonly unknown[];
  ui?: UiOutput;
}

export class MemoryCache {
  private entries = new Map<string, { result: CachedResult; bytes: number }>();
  private total = 0;
  constructor(readonly budgetBytes: number) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): CachedResult | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key); // re-insert: Map order is the recency order
    this.entries.set(key, e);
    return e.result;
  }

  set(key: string, result: CachedResult): void {
    const bytes = result.outputs.reduce<number>((s, v) => s + estimateBytes(v), 0) + 64;
    this.delete(key);
    if (bytes > this.budgetBytes) return; // would evict everything and still not fit
    this.entries.set(key, { result, bytes });
    this.total += bytes;
    for (const [k, e] of this.entries) {
      if (this.total <= this.budgetBytes) break;
      this.entries.delete(k);
      this.total -= e.bytes;
    }
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.total -= e.bytes;
    }
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }

  stats() {
    return { entries: this.entries.size, bytes: this.total, budgetBytes: this.budgetBytes };
  }
}

/** A value's own `byteSize()` when it has one (tensors, datasets), else a rough walk of plain data. */
export function estimateBytes(value: unknown, budget = { visits: 10_000 }): number {
  if (value === null || value === undefined) return 8;
  if (typeof value === 'string') return 2 * value.length;
  if (typeof value !== 'object') return 8;
  const own = (value as { byteSize?: unknown }).byteSize;
  if (typeof own === 'function') {
    const n = Number(own.call(value));
    return Number.isFinite(n) && n >= 0 ? n : 0;
  }
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (--budget.visits <= 0) return 64;
  let sum = 32;
  const items = Array.isArray(value) ? value : Object.values(value);
  for (const v of items) {
    sum += estimateBytes(v, budget);
    if (budget.visits <= 0) break;
  }
  return sum;
}
