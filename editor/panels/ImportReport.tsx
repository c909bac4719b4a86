// The report of an imported config beside the canvas: the model family, then every key of the file under
// mapped / mapped with a change of meaning / not supported / nothing to carry, with its line and where it went.
import { importReportStore } from '../app/importConfig';
import { useStore } from '../state/store';

const SECTIONS = [
  ['changed', 'Mapped with a change of meaning'],
  ['unsupported', 'Not supported (dropped)'],
  ['mapped', 'Mapped'],
  ['ignored', 'Nothing to carry (unset, or decided by loragraph)'],
] as const;

const shown = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 48 ? `${s.slice(0, 45)}…` : s;
};

export function ImportReport() {
  const state = useStore(importReportStore, (s) => s);
  if (!state) return null;
  const { report } = state;
  return (
    <aside className="side-panel" data-testid="import-report" style={{ position: 'absolute', right: 0, top: 40, bottom: 0, zIndex: 5, width: 420 }}>
      <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center' }}>
        <h2>Imported {report.file}</h2>
        <button onClick={() => importReportStore.set(() => null)} title="close the report">✕</button>
      </div>
      <p>
        {report.format} · {report.family.label}
        {report.family.trainable ? '' : <strong> — not trainable in loragraph yet</strong>}
      </p>
      {report.notes.map((n) => <p key={n}>{n}</p>)}
      {SECTIONS.map(([status, title]) => {
        const entries = report.entries.filter((e) => e.status === status);
        if (!entries.length) return null;
        return (
          <details key={status} open={status !== 'ignored'} data-status={status}>
            <summary>{title} ({entries.length})</summary>
            <ul style={{ paddingLeft: 16, margin: '4px 0' }}>
              {entries.map((e) => (
                <li key={e.key}>
                  <code>{e.key}</code>{e.line !== undefined ? `:${e.line}` : ''} = <code>{shown(e.value)}</code>
                  {e.targets.length ? ` → ${e.targets.join(', ')}` : ''}
                  {e.note ? <div style={{ opacity: 0.75 }}>{e.note}</div> : null}
                </li>
              ))}
            </ul>
          </details>
        );
      })}
    </aside>
  );
}
