// A model of ONNX Runtime's CPU memory arena (its BFC arena), for the memory pre-flight: replaying a
// step's allocations through it gives the resident memory the arena ends up holding, which is more
// than the peak of the values alive at once. Big short-lived buffers of many sizes (weights
// dequantised per layer, for one) leave free chunks too small for the next big request, and the arena
// then grows by a region twice the size of the last one (measured on SD 1.5 with an nf4 base: the
// arena held 2–4× the live peak). The rules follow ORT's bfc_arena.cc with its default settings:
// requests rounded up to 256 bytes; best fit — the smallest free chunk that is large enough, the lowest
// address among equals; a chunk is split when it is at least twice the request or would waste 128 MiB
// or more; freed chunks merge with free neighbours in their region; a new region is the current
// region size (1 MiB at first), doubled until the request fits, and the size doubles for the next one.
// Regions are never given back. Memory counts as resident once a chunk in it has been handed out
// (pages are touched when written), so a region counts up to the furthest byte ever handed out.

const MIN_ALLOCATION = 256;
const INITIAL_REGION = 1 << 20;
const MAX_DEAD_BYTES = 128 * 2 ** 20;

interface Chunk { region: number; offset: number; size: number; free: boolean; prev?: Chunk; next?: Chunk }

export class ArenaModel {
  private regionSize = INITIAL_REGION;
  /** Furthest byte of each region ever handed out. */
  private readonly touched: number[] = [];
  /** Free chunks ordered by size, then region and offset (the order ORT's bins search in). */
  private readonly freeChunks: Chunk[] = [];
  private inUse = 0;
  /** Largest sum of in-use chunk sizes (the live peak, rounded as the arena rounds). */
  peakInUse = 0;
  /** Bytes of all regions (reserved address space). */
  reserved = 0;

  /** Resident bytes: what the regions have ever handed out. */
  get resident(): number { return this.touched.reduce((a, b) => a + b, 0); }

  alloc(bytes: number): Chunk | undefined {
    if (bytes <= 0) return undefined;
    const size = Math.ceil(bytes / MIN_ALLOCATION) * MIN_ALLOCATION;
    let i = this.firstFitting(size);
    if (i === this.freeChunks.length) { this.extend(size); i = this.firstFitting(size); }
    const c = this.freeChunks.splice(i, 1)[0];
    if (c.size >= 2 * size || c.size - size >= MAX_DEAD_BYTES) {
      const rest: Chunk = { region: c.region, offset: c.offset + size, size: c.size - size, free: true, prev: c, next: c.next };
      if (c.next) c.next.prev = rest;
      c.next = rest;
      c.size = size;
      this.insertFree(rest);
    }
    c.free = false;
    this.inUse += c.size;
    this.peakInUse = Math.max(this.peakInUse, this.inUse);
    // Only the bytes written are touched (a request may get a bigger chunk that was not split).
    this.touched[c.region] = Math.max(this.touched[c.region], c.offset + size);
    return c;
  }

  free(c: Chunk | undefined) {
    if (!c) return;
    this.inUse -= c.size;
    c.free = true;
    let merged = c;
    if (c.next?.free) { this.removeFree(c.next); c.size += c.next.size; c.next = c.next.next; if (c.next) c.next.prev = c; }
    if (c.prev?.free) { const p = c.prev; this.removeFree(p); p.size += c.size; p.next = c.next; if (c.next) c.next.prev = p; merged = p; }
    this.insertFree(merged);
  }

  private extend(size: number) {
    let grew = false;
    while (size > this.regionSize) { this.regionSize *= 2; grew = true; }
    const bytes = this.regionSize;
    if (!grew) this.regionSize *= 2;
    this.touched.push(0);
    this.reserved += bytes;
    this.insertFree({ region: this.touched.length - 1, offset: 0, size: bytes, free: true });
  }

  /** The free list's order: size, then region, then offset. */
  private less(a: Chunk, b: Chunk) {
    if (a.size !== b.size) return a.size < b.size;
    if (a.region !== b.region) return a.region < b.region;
    return a.offset < b.offset;
  }
  /** Index of the first free chunk of at least `size` bytes (binary search on the size order). */
  private firstFitting(size: number) {
    let lo = 0, hi = this.freeChunks.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.freeChunks[mid].size < size) lo = mid + 1; else hi = mid; }
    return lo;
  }
  private insertFree(c: Chunk) {
    let lo = 0, hi = this.freeChunks.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.less(this.freeChunks[mid], c)) lo = mid + 1; else hi = mid; }
    this.freeChunks.splice(lo, 0, c);
  }
  private removeFree(c: Chunk) {
    const i = this.freeChunks.indexOf(c);
    if (i >= 0) this.freeChunks.splice(i, 1);
  }
}
