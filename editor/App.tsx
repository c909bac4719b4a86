// The editor's layout and start-up: load the node library, connect live, open the first graph, and lay out the
// toolbar, the canvas, the side panels and the overlays. Files dropped on the canvas open as graphs.
import { useEffect, useState } from 'react';
import { attachCanvas, graphChanged, loadLibrary, openFile, openInitialGraph, queueRun, refreshHistory, refreshPathChoices, refreshQueue } from './app/actions';
import { installTestHook } from './app/testHook';
import type { CanvasController } from './canvas/controller';
import { GraphCanvas } from './canvas/GraphCanvas';
import { connectLive } from './net/socket';
import { HistoryPanel } from './panels/HistoryPanel';
import { ImportReport } from './panels/ImportReport';
import { NodeSearch } from './panels/NodeSearch';
import { Hint, Lightbox } from './panels/Overlays';
import { QueuePanel } from './panels/QueuePanel';
import { SamplesView } from './panels/SamplesView';
import { Toolbar } from './panels/Toolbar';
import { editorStore, showHint } from './state/editor';
import { useStore } from './state/store';

export function App() {
  const [canvas, setCanvas] = useState<CanvasController | null>(null);
  const [dragging, setDragging] = useState(false);
  const panel = useStore(editorStore, (s) => s.panel);

  useEffect(() => {
    loadLibrary().catch((err) => showHint(`cannot load the node library: ${err.message}`, 'error'));
    const live = connectLive({
      onJobFinished: () => void refreshHistory(),
      onReconnected: () => {
        void refreshQueue();
        void refreshHistory();
      },
    });
    void refreshHistory();
    const onFocus = () => void refreshPathChoices();
    window.addEventListener('focus', onFocus);
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
        e.preventDefault();
        void queueRun(e.shiftKey);
      }
    };
    window.addEventListener('keydown', onKey);
    installTestHook(live);
    return () => {
      live.close();
      window.removeEventListener('focus', onFocus);
      window.removeEventListener('keydown', onKey);
    };
  }, []);

  const onReady = (c: CanvasController) => {
    if (canvas) return;
    attachCanvas(c);
    setCanvas(c);
    void openInitialGraph();
  };

  return (
    <div className="app">
      <Toolbar canvas={canvas} />
      <main
        className={`workspace${dragging ? ' dropping' : ''}`}
        onDragOver={(e) => {
          if ([...e.dataTransfer.types].includes('Files')) {
            e.preventDefault();
            setDragging(true);
          }
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          setDragging(false);
          const file = e.dataTransfer.files[0];
          if (!file) return;
          e.preventDefault();
          void openFile(file);
        }}
      >
        <GraphCanvas
          onReady={onReady}
          onChange={graphChanged}
          onOpenSearch={(at, query) => editorStore.set((s) => ({ ...s, search: { ...at, query } }))}
        />
        {panel === 'queue' && <QueuePanel />}
        {panel === 'history' && <HistoryPanel />}
        <ImportReport />
        <Hint />
      </main>
      <NodeSearch onPick={(type, at) => canvas?.addNode(type, at)} />
      <SamplesView />
      <Lightbox />
    </div>
  );
}
