// When a node grows to show its results, the nodes it would now cover move out of its way — right if they were
// beside it, down if they were below it — and the nodes those would cover move on in the same direction, so no
// two nodes that were apart ever overlap. Pure: boxes in, moves out (canvas/GraphCanvas applies them).

export interface Box {
  id: string;
  /** Left and top of the whole node, title bar included. */
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Space kept between a grown node and the nodes it pushes. */
export const PUSH_MARGIN = 20;

const overlaps = (a: Box, b: Box, m = 0) => a.x < b.x + b.w + m && b.x < a.x + a.w + m && a.y < b.y + b.h + m && b.y < a.y + a.h + m;

/**
 * Grows node `id` to `w`×`h` (never shrinks it) and returns where every node that had to move goes now (by id, the
 * new left/top of its box). Nodes that already overlapped the node before it grew are left as they are.
 */
export function growAndPush(boxes: readonly Box[], id: string, w: number, h: number, margin = PUSH_MARGIN): Map<string, { x: number; y: number }> {
  const now = new Map(boxes.map((b) => [b.id, { ...b }]));
  const moved = new Map<string, { x: number; y: number }>();
  const start = now.get(id);
  if (!start) return moved;
  const before = { ...start };
  start.w = Math.max(start.w, w);
  start.h = Math.max(start.h, h);
  // Work list: a box that changed, what it covered before the change, and the direction it pushes in (null: the
  // grown node, which pushes each neighbour the way that neighbour sits from it).
  const work: { box: Box; was: Box; dir: 'right' | 'down' | null }[] = [{ box: start, was: before, dir: null }];
  for (let guard = 0; work.length && guard < 10_000; guard++) {
    const { box, was, dir } = work.shift()!;
    for (const other of now.values()) {
      if (other.id === box.id || overlaps(was, other, 0)) continue; // overlapped already: not this growth's doing
      // Covered now, or brought closer than the margin (a neighbour that was already that close is left there).
      const covered = overlaps(box, other, 0) || (overlaps(box, other, margin - 1) && !overlaps(was, other, margin - 1));
      if (!covered) continue;
      let d = dir;
      const dx = box.x + box.w + margin - other.x;
      const dy = box.y + box.h + margin - other.y;
      if (!d) {
        const right = other.x >= was.x + was.w, down = other.y >= was.y + was.h;
        if (right && down) d = dx <= dy ? 'right' : 'down';
        else if (right) d = 'right';
        else if (down) d = 'down';
        else continue;
      }
      const prev = { ...other };
      if (d === 'right' && dx > 0) other.x += dx;
      else if (d === 'down' && dy > 0) other.y += dy;
      else continue;
      moved.set(other.id, { x: other.x, y: other.y });
      work.push({ box: other, was: prev, dir: d });
    }
  }
  return moved;
}

/** Pairs of nodes whose boxes overlap (for tests and the layout check of the example graphs). */
export function overlappingPairs(boxes: readonly Box[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) if (overlaps(boxes[i]!, boxes[j]!)) out.push([boxes[i]!.id, boxes[j]!.id]);
  }
  return out;
}
