// Past jobs: status, what ran and what was cached, their output images and text; load a job's graph back.
import { deleteHistory, restoreFromHistory } from '../app/actions';
import { imageSrc } from '../net/api';
import { sampleSheetsOf } from '../../nodes/sampling/sheet';
import { editorStore, openLightbox } from '../state/editor';
import { viewUrl } from '../state/run';
import { useStore } from '../state/store';
import { SweepResults } from './SweepResults';

export function HistoryPanel() {
  const history = useStore(editorStore, (s) => s.history);
  return (
    <section className="side-panel" data-testid="history-panel">
      <h2>History</h2>
      <SweepResults history={history} />
      {history.length === 0 && <p className="muted">No finished jobs yet.</p>}
      <ul className="job-list history">
        {history.map((h) => {
          const seconds = h.startedAt ? ((h.endedAt - h.startedAt) / 1000).toFixed(1) : '–';
          return (
            <li key={h.promptId} className={`status-${h.status}`} data-prompt={h.promptId}>
              <div className="history-head">
                <span>
                  #{h.number} {h.status} · {seconds}s · {h.executed.length} ran, {h.cached.length} cached
                  {h.worker ? ` · on ${h.worker}` : ''}
                  {h.finalLoss !== undefined ? ` · loss ${h.finalLoss.toFixed(4)}` : ''}
                </span>
                <span>
                  {h.workflow !== undefined && <button onClick={() => restoreFromHistory(h.workflow, h.number)}>Load</button>}
                  <button onClick={() => deleteHistory(h.promptId)} title="remove from history">✕</button>
                </span>
              </div>
              {h.error && <p className="error-text">{h.error.nodeType ? `${h.error.nodeType} ${h.error.node}: ` : ''}{h.error.message}</p>}
              <div className="history-outputs">
                {Object.entries(h.outputs).flatMap(([node, out]) => [
                  ...(out.images ?? []).map((img) => {
                    const url = viewUrl(img);
                    const sheet = sampleSheetsOf(out).find((s) => viewUrl(s.image) === url);
                    return (
                      <img key={`${node}-${img.filename}`} src={imageSrc(url)} alt={img.filename} title={`node ${node}: ${img.filename}`} onClick={() => openLightbox({ url, sheet, node })} />
                    );
                  }),
                  ...(out.text ?? []).map((t, i) => (
                    <code key={`${node}-t${i}`} title={`node ${node}`}>
                      {t}
                    </code>
                  )),
                ])}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
