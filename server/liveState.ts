// The running job as a client would draw it — node executing, its progress, what ran, was cached and was shown —
// folded from the job's events, so a client that connects mid-job can be sent the current moment. Several jobs
// can run at once (workers on the Redis queue); each is folded on its own and the newest started is shown.
import type { ExecutionEvent, LiveState } from './protocol';

/** Bounds the loss series kept per node for late-joining clients. */
const MAX_LOSS_POINTS = 20_000;

type Exec = NonNullable<LiveState['exec']>;

export class LiveJobState {
  /** Running jobs by prompt id, in the order they started. */
  private execs = new Map<string, Exec>();

  apply(event: ExecutionEvent): void {
    const d = event.data;
    if (event.type === 'execution_start') {
      // A job started again (on another worker, after its first one died) starts over.
      this.execs.delete(d.promptId);
      this.execs.set(d.promptId, { promptId: event.data.promptId, node: null, progress: null, executed: [], cached: [], outputs: {}, loss: {} });
      return;
    }
    const exec = this.execs.get(d.promptId);
    if (!exec) return;
    switch (event.type) {
      case 'execution_cached':
        exec.cached = event.data.nodes;
        break;
      case 'executing':
        if (event.data.node === null) this.execs.delete(d.promptId);
        else {
          exec.node = event.data.node;
          exec.progress = null;
        }
        break;
      case 'progress': {
        exec.progress = event.data;
        const loss = event.data.data?.loss;
        if (typeof loss === 'number' && Number.isFinite(loss)) {
          const series = (exec.loss![event.data.node] ??= []);
          if (series.length >= MAX_LOSS_POINTS) series.splice(0, series.length - MAX_LOSS_POINTS + 1);
          series.push([event.data.step, loss]);
        }
        break;
      }
      case 'executed':
        exec.outputs[event.data.node] = event.data.output;
        if (!event.data.cached) exec.executed.push(event.data.node);
        break;
      default:
        break;
    }
  }

  current(): LiveState['exec'] {
    const newest = [...this.execs.values()].at(-1);
    return newest ? structuredClone(newest) : null;
  }
}
