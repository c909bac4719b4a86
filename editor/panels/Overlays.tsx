// Transient layers above the canvas: the hint line (refused links, errors) and the enlarged image — for a sheet of
// samples with every tile numbered and a table of what each shows (prompt, seed, step, LoRA strength).
import { useEffect, useState } from 'react';
import { tileLabel } from '../../nodes/sampling/sheet';
import { imageSrc } from '../net/api';
import { editorStore } from '../state/editor';
import { useStore } from '../state/store';

export function Hint() {
  const hint = useStore(editorStore, (s) => s.hint);
  if (!hint) return null;
  return (
    <div className={`hint hint-${hint.kind}`} role="status" data-testid="hint">
      {hint.message}
    </div>
  );
}

/** Room the tile table takes beside a sheet. */
const TABLE_WIDTH = 440;

export function Lightbox() {
  const box = useStore(editorStore, (s) => s.lightbox);
  const [natural, setNatural] = useState<{ url: string; w: number; h: number } | null>(null);
  const close = () => editorStore.set((s) => ({ ...s, lightbox: null }));
  useEffect(() => {
    if (!box) return;
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && close();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [box]);
  if (!box) return null;
  const sheet = box.sheet;
  const size = natural && natural.url === box.url ? natural : null;
  // Full size at least; small images enlarged by whole pixels to fill the window (beside the table for a sheet).
  let scale = 1;
  if (size) {
    const fit = Math.min((window.innerWidth * 0.92 - (sheet ? TABLE_WIDTH : 0)) / size.w, (window.innerHeight * 0.88) / size.h);
    scale = fit >= 1 ? Math.floor(fit) : Math.max(fit, 0.1);
  }
  const step = sheet?.step ?? null;
  return (
    <div className="lightbox" data-testid="lightbox" onClick={close} tabIndex={-1}>
      <figure className="lightbox-figure">
        <div className="lightbox-image" style={size ? { width: size.w * scale, height: size.h * scale } : undefined}>
          <img
            src={imageSrc(box.url)}
            alt={sheet ? 'samples' : 'enlarged image'}
            style={size ? { width: '100%', height: '100%', maxWidth: 'none', maxHeight: 'none', minWidth: 0 } : undefined}
            onLoad={(e) => setNatural({ url: box.url, w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })}
          />
          {size &&
            sheet?.tiles.map((t, i) => (
              <div
                key={i}
                className={`lightbox-tile${i === box.tile ? ' picked' : ''}`}
                style={{ left: t.x * scale, top: t.y * scale, width: t.w * scale, height: t.h * scale }}
                title={tileLabel(t, step)}
                data-testid="lightbox-tile"
              >
                <span>{i + 1}</span>
              </div>
            ))}
        </div>
        {sheet && (
          <figcaption>
            <table className="tile-table" data-testid="tile-table">
              <thead>
                <tr>
                  <th>#</th>
                  <th>prompt</th>
                  <th>seed</th>
                  <th>step</th>
                  <th>LoRA strength</th>
                </tr>
              </thead>
              <tbody>
                {sheet.tiles.map((t, i) => (
                  <tr key={i} className={i === box.tile ? 'picked' : ''} data-testid="tile-row">
                    <td>{i + 1}</td>
                    <td className="tile-prompt">{t.prompt}</td>
                    <td>{t.seed}</td>
                    <td>{step ?? '–'}</td>
                    <td>{t.strength === 0 ? '0 (without LoRA)' : t.strength}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </figcaption>
        )}
      </figure>
    </div>
  );
}
