// The samples of a training run as ai-toolkit's samples page shows them: one row per sampled step, one column per
// prompt (and strength), every tile cut from that step's sheet at the same size — to see at which step the LoRA is
// best. Each step's row has the button that samples the LoRA saved at that step (Load LoRA → Sampler).
import { useEffect, useState } from 'react';
import { tileLabel, type SampleSheet, type SampleTile } from '../../nodes/sampling/sheet';
import { refreshPathChoices, pickCheckpoint } from '../app/actions';
import { imageSrc } from '../net/api';
import { editorStore, openLightbox } from '../state/editor';
import { useStore } from '../state/store';

function TileCrop({ url, tile, size, onClick }: { url: string; tile: SampleTile; size: number; onClick(): void }) {
  const k = size / tile.w;
  return (
    <div className="tile-crop" style={{ width: size, height: Math.round(tile.h * k) }} title={tileLabel(tile, null)} onClick={onClick} data-testid="samples-cell">
      <img src={imageSrc(url)} alt={tile.prompt} style={{ left: -tile.x * k, top: -tile.y * k, transform: `scale(${k})` }} />
    </div>
  );
}

const strengthText = (t: SampleTile) => (t.strength === 0 ? 'without LoRA' : `LoRA ${t.strength}`);

export function SamplesView() {
  const view = useStore(editorStore, (s) => s.samplesView);
  const nodes = useStore(editorStore, (s) => s.run.nodes);
  const loras = useStore(editorStore, (s) => s.pathChoices.lora);
  const [cell, setCell] = useState(128);
  const close = () => editorStore.set((s) => ({ ...s, samplesView: null }));
  useEffect(() => {
    if (!view) return;
    void refreshPathChoices(); // which of the saved LoRAs are still there (older saves may have been pruned)
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && !editorStore.get().lightbox && close();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [view?.node]);
  if (!view) return null;
  const withSamples = Object.entries(nodes).filter(([, n]) => n.sheets.length > 0);
  const sheets = [...(nodes[view.node]?.sheets ?? [])].sort((a, b) => (a.sheet.step ?? 0) - (b.sheet.step ?? 0));
  const first = sheets[0]?.sheet;
  const available = new Set(loras ?? []);
  const use = (sheet: SampleSheet) => {
    close();
    pickCheckpoint(view.node, sheet);
  };
  return (
    <div className="samples-backdrop" onClick={close}>
      <section className="samples-view" data-testid="samples-view" onClick={(e) => e.stopPropagation()}>
        <header className="samples-head">
          <h2>Samples</h2>
          <select aria-label="node" value={view.node} onChange={(e) => editorStore.set((s) => ({ ...s, samplesView: { node: e.target.value } }))}>
            {withSamples.map(([id]) => (
              <option key={id} value={id}>
                node {id}
              </option>
            ))}
          </select>
          <span className="muted">
            {sheets.length} step{sheets.length === 1 ? '' : 's'} × {first?.tiles.length ?? 0} images · click a tile to enlarge it
          </span>
          <span className="spacer" />
          <label>
            size
            <input type="range" min={64} max={384} step={32} value={cell} onChange={(e) => setCell(Number(e.target.value))} />
          </label>
          <button onClick={close} title="close (Esc)">
            ✕
          </button>
        </header>
        {!first && <p className="muted">This node has no samples yet: connect sampler settings to Train and set sampleEvery.</p>}
        {first && (
          <div className="samples-scroll">
            <table className="samples-grid">
              <thead>
                <tr>
                  <th>step</th>
                  {first.tiles.map((t, i) => (
                    <th key={i} style={{ width: cell }} title={t.prompt}>
                      <div className="samples-prompt">{t.prompt}</div>
                      <div className="muted">
                        seed {t.seed} · {strengthText(t)}
                      </div>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {sheets.map(({ url, sheet }) => {
                  const saved = sheet.lora !== null && available.has(sheet.lora);
                  return (
                    <tr key={url} data-step={sheet.step ?? ''} data-testid="samples-row">
                      <th>
                        <div className="samples-step">step {sheet.step ?? '–'}</div>
                        <button
                          disabled={!saved}
                          onClick={() => use(sheet)}
                          data-testid={`use-step-${sheet.step}`}
                          title={saved ? `sample ${sheet.lora} with a Load LoRA and a Sampler` : 'no LoRA file was kept for this step (saveEvery, maxSavesToKeep)'}
                        >
                          Use this LoRA
                        </button>
                        {!saved && <div className="muted">not saved</div>}
                      </th>
                      {sheet.tiles.map((t, i) => (
                        <td key={i}>
                          <TileCrop url={url} tile={t} size={cell} onClick={() => openLightbox({ url, sheet, tile: i, node: view.node })} />
                        </td>
                      ))}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
