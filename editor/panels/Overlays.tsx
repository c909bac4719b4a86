// Transient layers above the canvas: the hint line (refused links, errors), the enlarged image, and the job's
// last error.
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

export function Lightbox() {
  const url = useStore(editorStore, (s) => s.lightbox);
  if (!url) return null;
  const close = () => editorStore.set((s) => ({ ...s, lightbox: null }));
  return (
    <div className="lightbox" data-testid="lightbox" onClick={close} onKeyDown={(e) => e.key === 'Escape' && close()} tabIndex={-1}>
      <img src={imageSrc(url)} alt="enlarged sample" />
    </div>
  );
}
