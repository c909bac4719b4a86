// The top bar: run, run next, interrupt; open, save, examples, new; undo/redo; the samples view; queue and history
// toggles; the connection state.
import { useRef } from 'react';
import { interrupt, newGraph, openExample, openFile, openSamples, queueRun, saveGraph } from '../app/actions';
import type { CanvasController } from '../canvas/controller';
import { editorStore } from '../state/editor';
import { useStore } from '../state/store';

export function Toolbar({ canvas }: { canvas: CanvasController | null }) {
  const examples = useStore(editorStore, (s) => s.examples);
  const graphName = useStore(editorStore, (s) => s.graphName);
  const connection = useStore(editorStore, (s) => s.connection);
  const queued = useStore(editorStore, (s) => s.queue.pending.length + s.queue.running.length);
  const running = useStore(editorStore, (s) => s.queue.running.length > 0);
  const panel = useStore(editorStore, (s) => s.panel);
  const hasSamples = useStore(editorStore, (s) => Object.values(s.run.nodes).some((n) => n.sheets.length > 0));
  const fileInput = useRef<HTMLInputElement>(null);
  const toggle = (p: 'queue' | 'history') => editorStore.set((s) => ({ ...s, panel: s.panel === p ? null : p }));

  return (
    <header className="toolbar">
      <strong className="brand">loragraph</strong>
      <span className="graph-name" title="graph name">{graphName}</span>
      <button className="primary" onClick={() => queueRun(false)} disabled={!canvas} title="Queue this graph (Ctrl+Enter)">
        Run
      </button>
      <button onClick={() => queueRun(true)} disabled={!canvas} title="Queue at the front (Ctrl+Shift+Enter)">
        Run next
      </button>
      <button onClick={() => interrupt()} disabled={!running} title="Stop the running job">
        Interrupt
      </button>
      <span className="sep" />
      <button onClick={() => newGraph()}>New</button>
      <button onClick={() => fileInput.current?.click()}>Open…</button>
      <input
        ref={fileInput}
        type="file"
        accept=".json,.yaml,.yml,.toml,application/json"
        hidden
        data-testid="open-file"
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) void openFile(f);
          e.target.value = '';
        }}
      />
      <button onClick={() => saveGraph()} disabled={!canvas}>
        Save
      </button>
      <select
        aria-label="Examples"
        value=""
        onChange={(e) => {
          if (e.target.value) void openExample(e.target.value);
        }}
      >
        <option value="">Examples…</option>
        {examples.map((g) => (
          <option key={g} value={g}>
            {g}
          </option>
        ))}
      </select>
      <span className="sep" />
      <button onClick={() => canvas?.undo()} title="Undo (Ctrl+Z)">
        Undo
      </button>
      <button onClick={() => canvas?.redo()} title="Redo (Ctrl+Shift+Z)">
        Redo
      </button>
      <button onClick={() => canvas?.groupSelection()} title="Group the selected nodes (Ctrl+G)">
        Group
      </button>
      <span className="spacer" />
      <button onClick={() => openSamples()} disabled={!hasSamples} title="Every sampled step × every prompt: pick the best checkpoint">
        Samples
      </button>
      <button className={panel === 'queue' ? 'on' : ''} onClick={() => toggle('queue')}>
        Queue ({queued})
      </button>
      <button className={panel === 'history' ? 'on' : ''} onClick={() => toggle('history')}>
        History
      </button>
      <span className={`conn conn-${connection}`} data-testid="connection" title="connection to the server">
        {connection === 'open' ? '● live' : connection === 'connecting' ? '○ connecting' : '○ reconnecting…'}
      </span>
    </header>
  );
}
