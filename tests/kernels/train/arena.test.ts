// The model of ORT's BFC arena that the memory pre-flight replays a step through: rounding, best fit,
// splitting, merging of free neighbours, regions that double, and the resident memory a fragmented
// layout costs beyond the live peak.
import { describe, it, expect } from 'vitest';
import { ArenaModel } from '../../../kernels/train/arena';

const MiB = 2 ** 20;

describe('ORT arena model', () => {
  it('rounds requests to 256 bytes and carves them from a first region of 1 MiB', () => {
    const a = new ArenaModel();
    const x = a.alloc(1000);
    expect(x?.size).toBe(1024);
    a.alloc(1);
    expect(a.reserved).toBe(MiB);
    expect(a.resident).toBe(1024 + 256);
    expect(a.peakInUse).toBe(1280);
  });

  it('reuses the smallest free chunk that fits, and merges freed neighbours', () => {
    const a = new ArenaModel();
    const p = a.alloc(100 * 1024), q = a.alloc(50 * 1024);
    a.alloc(100 * 1024);
    a.free(q);
    // Best fit: q's 50 KiB hole, not the big free rest of the region; the hole is split.
    const t = a.alloc(10 * 1024);
    expect(t?.offset).toBe(100 * 1024);
    // p, t and the hole's rest merge into one 150 KiB chunk at offset 0 once all are free.
    a.free(p);
    a.free(t);
    const u = a.alloc(150 * 1024);
    expect(u?.offset).toBe(0);
    expect(a.reserved).toBe(MiB);
  });

  it('grows by regions that double: 1, 2, 4 MiB, and straight to the power of two a big request needs', () => {
    const a = new ArenaModel();
    a.alloc(MiB); // fills the 1 MiB region exactly (a chunk is split only when twice the request)
    a.alloc(MiB); // new region: 2 MiB
    expect(a.reserved).toBe(3 * MiB);
    a.alloc(MiB); // the rest of the 2 MiB region
    a.alloc(3 * MiB); // 4 MiB region
    expect(a.reserved).toBe(7 * MiB);
    a.alloc(20 * MiB); // the region size doubles until it holds the request: 32 MiB
    expect(a.reserved).toBe(39 * MiB);
  });

  it('holds more than the live peak when a freed buffer leaves a hole too small for the next', () => {
    const run = (order: 'hole' | 'no hole') => {
      const a = new ArenaModel();
      if (order === 'hole') {
        const first = a.alloc(300 * 1024);
        a.alloc(10 * 1024); // pins the space after it
        a.free(first);
        a.alloc(400 * 1024); // does not fit the 300 KiB hole: taken from the rest of the region
      } else {
        a.alloc(400 * 1024);
        a.alloc(10 * 1024);
      }
      return a;
    };
    const holed = run('hole'), packed = run('no hole');
    // 410 KiB are live at most either way. With the hole, the 400 KiB request is written after it
    // (into the whole 714 KiB rest of the region, not split: less than twice the request).
    expect(holed.resident).toBe(710 * 1024);
    expect(holed.peakInUse).toBe(724 * 1024);
    expect(packed.resident).toBe(410 * 1024);
  });
});
