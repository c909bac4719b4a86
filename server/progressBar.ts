// The headless run's text progress: one bar per long node with it/s and ETA on a terminal, and a line every few
// seconds (plus the last step) when stderr is a file or a pipe.
import type { ProgressInfo } from './protocol';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0'), ss = String(r).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function formatProgress(label: string, p: ProgressInfo, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, Math.max(0, p.step / p.total)) : 0;
  const filled = Math.round(frac * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  const rate = p.itPerSec === null ? '' : p.itPerSec >= 1 ? ` ${p.itPerSec.toFixed(2)} it/s` : ` ${(1 / p.itPerSec).toFixed(2)} s/it`;
  const eta = p.etaSeconds === null ? '' : ` ETA ${formatDuration(p.etaSeconds)}`;
  const data = Object.entries(p.data ?? {})
    .filter(([, v]) => typeof v === 'number' || typeof v === 'string')
    .slice(0, 4)
    .map(([k, v]) => ` ${k}=${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`)
    .join('');
  return `${label} ${bar} ${p.step}/${p.total}${rate}${eta}${data}`;
}

export class ProgressPrinter {
  private lastLine = 0;
  private open = false;
  constructor(private readonly out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean } = process.stderr) {}

  update(label: string, p: ProgressInfo): void {
    const line = formatProgress(label, p);
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}`);
      this.open = true;
      if (p.step >= p.total) this.end();
    } else if (Date.now() - this.lastLine > 2000 || p.step >= p.total) {
      this.lastLine = Date.now();
      this.out.write(`${line}\n`);
    }
  }

  /** Ends the current bar's line so the next message starts on a fresh one. */
  end(): void {
    if (this.open) this.out.write('\n');
    this.open = false;
  }
}
