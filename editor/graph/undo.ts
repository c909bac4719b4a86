// Undo/redo over whole-graph snapshots (serialised workflows), as a document editor keeps versions: each user
// action that changed the graph pushes the state before it. Layout-only view changes are not versions.
export class UndoHistory<T> {
  private past: T[] = [];
  private future: T[] = [];
  constructor(
    private current: T,
    private readonly same: (a: T, b: T) => boolean,
    private readonly limit = 100,
  ) {}

  /** Records `next` as the new current state; returns false when nothing changed. */
  record(next: T): boolean {
    if (this.same(this.current, next)) return false;
    this.past.push(this.current);
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
    this.current = next;
    return true;
  }

  /** Starts over from `state` (a graph was opened). */
  reset(state: T): void {
    this.past = [];
    this.future = [];
    this.current = state;
  }

  /** Replaces the current state without making a version (litegraph re-serialises a restored graph slightly differently). */
  replaceCurrent(state: T): void {
    this.current = state;
  }

  undo(): T | null {
    const prev = this.past.pop();
    if (prev === undefined) return null;
    this.future.push(this.current);
    this.current = prev;
    return prev;
  }

  redo(): T | null {
    const next = this.future.pop();
    if (next === undefined) return null;
    this.past.push(this.current);
    this.current = next;
    return next;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }
  get canRedo(): boolean {
    return this.future.length > 0;
  }
}
