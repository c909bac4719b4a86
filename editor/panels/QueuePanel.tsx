// The job queue: the running job (interrupt) and the pending ones (cancel), live from the server's status.
import { cancel, interrupt } from '../app/actions';
import { editorStore } from '../state/editor';
import { useStore } from '../state/store';

export function QueuePanel() {
  const queue = useStore(editorStore, (s) => s.queue);
  const progress = useStore(editorStore, (s) => (s.run.executing ? s.run.nodes[s.run.executing]?.progress : null));
  return (
    <section className="side-panel" data-testid="queue-panel">
      <h2>Queue</h2>
      {queue.running.length + queue.pending.length === 0 && <p className="muted">Nothing queued.</p>}
      <ul className="job-list">
        {queue.running.map((j) => (
          <li key={j.promptId} className="running">
            <span>
              #{j.number} running{j.worker ? ` on ${j.worker}` : ''}
              {j.sweep && !j.sweep.shared ? ` · sweep ${j.sweep.index}/${j.sweep.count}` : ''}
              {progress && queue.running.length === 1 ? ` · ${progress.step}/${progress.total}` : ''}
            </span>
            <button onClick={() => interrupt(j.promptId)}>Interrupt</button>
          </li>
        ))}
        {queue.pending.map((j) => (
          <li key={j.promptId} data-prompt={j.promptId}>
            <span>
              #{j.number} · {j.nodeCount} nodes
              {j.sweep ? (j.sweep.shared ? ' · sweep: shared caches' : ` · sweep ${j.sweep.index}/${j.sweep.count}`) : ''}
            </span>
            <button onClick={() => cancel(j.promptId)}>Cancel</button>
          </li>
        ))}
      </ul>
    </section>
  );
}
