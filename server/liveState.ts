// The running job as a client would draw it — node executing, its progress, what ran, was cached and was shown —
// folded from the job's events, so a client that connects mid-job can be sent the current moment.
import type { ExecutionEvent, LiveState } from './protocol';

/** Bounds the loss series kept per node for late-joining clients. */
const MAX_LOSS_POINTS = 20_000;

export class LiveJobState {
  private exec: LiveState['exec'] = null;

  apply(event: ExecutionEvent): void {
    const d = event.data;
    if (event.type === 'execution_start') {
      this.exec = { promptId: event.data.promptId, node: null, progress: null, executed: [], cached: [], outputs: {}, loss: {} };
      return;
    }
    const exec = this.exec;
    if (!exec || exec.promptId !== d.promptId) return;
    switch (event.type) {
      case 'execution_cached':
        exec.cached = event.data.nodes;
        break;
      case 'executing':
        if (event.data.node === null) this.exec = null;
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
    return this.exec ? structuredClone(this.exec) : null;
  }
}
