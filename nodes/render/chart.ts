// Small charts drawn as SVG and rasterised by sharp, for node previews (timestep histogram, loss curve).
import sharp from 'sharp';

export interface ChartOptions { width?: number; height?: number; title?: string; color?: string }

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function frame(w: number, h: number, body: string, title?: string) {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">` +
    `<rect width="${w}" height="${h}" fill="#1e1e1e"/>` +
    (title ? `<text x="8" y="16" font-family="DejaVu Sans, sans-serif" font-size="12" fill="#ddd">${esc(title)}</text>` : '') +
    body + '</svg>';
}

/** Bars for `values` (e.g. a histogram), scaled to the largest. */
export async function barChartPng(values: ArrayLike<number>, o: ChartOptions = {}): Promise<Uint8Array> {
  const w = o.width ?? 320, h = o.height ?? 160, top = o.title ? 24 : 8, pad = 8;
  const max = Math.max(...Array.from(values), 1e-12);
  const bw = (w - 2 * pad) / values.length;
  let bars = '';
  for (let i = 0; i < values.length; i++) {
    const bh = (values[i] / max) * (h - top - pad);
    bars += `<rect x="${(pad + i * bw).toFixed(1)}" y="${(h - pad - bh).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="${o.color ?? '#4a9eff'}"/>`;
  }
  return new Uint8Array(await sharp(Buffer.from(frame(w, h, bars, o.title))).png().toBuffer());
}

/** Line series over a shared x axis (e.g. raw and smoothed loss). */
export async function lineChartPng(series: { values: ArrayLike<number>; color: string }[], o: ChartOptions = {}): Promise<Uint8Array> {
  const w = o.width ?? 320, h = o.height ?? 160, top = o.title ? 24 : 8, pad = 8;
  const all = series.flatMap((s) => Array.from(s.values)).filter(Number.isFinite);
  const lo = all.length ? Math.min(...all) : 0, hi = all.length ? Math.max(...all) : 1;
  const span = hi - lo || 1;
  let body = '';
  for (const s of series) {
    const n = s.values.length;
    if (n < 2) continue;
    const pts = Array.from(s.values, (v, i) => `${(pad + (i / (n - 1)) * (w - 2 * pad)).toFixed(1)},${(h - pad - ((v - lo) / span) * (h - top - pad)).toFixed(1)}`);
    body += `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts.join(' ')}"/>`;
  }
  return new Uint8Array(await sharp(Buffer.from(frame(w, h, body, o.title))).png().toBuffer());
}
