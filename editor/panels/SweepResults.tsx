// A sweep's jobs side by side: one column per job with its swept settings, worker, final loss (the lowest marked)
// and its sample images, so a person picks the best. Reads history entries; the shared cache job is left out.
import type { HistoryEntry } from '../../server/protocol';
import { imageSrc } from '../net/api';
import { viewUrl } from '../state/run';

/** Finished sweep jobs grouped by sweep, newest sweep first, each sorted by its index. */
export function sweepsOf(history: readonly HistoryEntry[]): HistoryEntry[][] {
  const groups = new Map<string, HistoryEntry[]>();
  for (const h of history) {
    if (!h.sweep || h.sweep.shared) continue;
    const g = groups.get(h.sweep.id) ?? [];
    g.push(h);
    groups.set(h.sweep.id, g);
  }
  return [...groups.values()].map((g) => g.sort((a, b) => a.sweep!.index - b.sweep!.index)).reverse();
}

// Styles live here (not in styles.css) so the panel is one file.
const columns = { display: 'flex', gap: 6, overflowX: 'auto', paddingBottom: 4 } as const;
const column = { display: 'flex', flexDirection: 'column', gap: 3, minWidth: 140, padding: 4, border: '1px solid #333', borderRadius: 4 } as const;
const bestColumn = { ...column, borderColor: '#52c41a' } as const;

export function SweepResults({ history }: { history: readonly HistoryEntry[] }) {
  const sweeps = sweepsOf(history);
  if (sweeps.length === 0) return null;
  return (
    <>
      {sweeps.map((jobs) => {
        const losses = jobs.map((j) => j.finalLoss).filter((l): l is number => typeof l === 'number');
        const best = losses.length ? Math.min(...losses) : undefined;
        return (
          <div key={jobs[0]!.sweep!.id} className="sweep-results" data-testid="sweep-results">
            <h3>
              Sweep · {jobs.length}/{jobs[0]!.sweep!.count} done
            </h3>
            <div className="sweep-columns" style={columns}>
              {jobs.map((j) => (
                <div key={j.promptId} className={`sweep-job status-${j.status}${j.finalLoss === best ? ' best' : ''}`} style={j.finalLoss === best ? bestColumn : column} data-prompt={j.promptId}>
                  {Object.entries(j.sweep!.settings).map(([k, v]) => (
                    <code key={k} title={k}>
                      {k.slice(k.lastIndexOf('.') + 1)}={String(v)}
                    </code>
                  ))}
                  <span className="muted">
                    #{j.number} {j.status}
                    {j.worker ? ` · ${j.worker}` : ''}
                  </span>
                  <span className="sweep-loss">loss {j.finalLoss?.toFixed(4) ?? '–'}</span>
                  <div className="history-outputs">
                    {Object.entries(j.outputs).flatMap(([node, out]) =>
                      (out.images ?? []).map((img) => {
                        const url = viewUrl(img);
                        return (
                          <a key={`${node}-${img.filename}`} href={imageSrc(url)} target="_blank" rel="noreferrer">
                            <img src={imageSrc(url)} alt={img.filename} title={`node ${node}: ${img.filename}`} />
                          </a>
                        );
                      }),
                    )}
                  </div>
                </div>
              ))}
            </div>
          </div>
        );
      })}
    </>
  );
}
