// Measures what a generated clip of the moving-shapes world shows: the shape, its colour, the
// background (each a vote of kernels/sd/tiny's image analyzer over the frames) and the direction the
// shape moves in (its centroid in the first frames against the last). Used by `eval:tiny-wan` and the
// video quickstart's eval; tolerant of blur and noise as the image analyzer is.
import { analyzeImage, type ImageAnalysis, type Rgb, type ShapeClass } from '../../sd/tiny/analyze';
import type { ColorName } from '../../sd/tiny/world';
import type { Direction } from './world';

export interface ClipAnalysis {
  shape: ShapeClass;
  color: ColorName | null;
  background: ColorName | null;
  /** 'still' when the shape moves less than MIN_TRAVEL of the side, 'none' when no shape was seen. */
  direction: Direction | 'still' | 'none';
  /** Centroid displacement from the first frames to the last, as fractions of the side (x right, y down). */
  displacement: [number, number];
  /** Frames whose analysis found a shape. */
  framesWithShape: number;
  /** The shape went down to a floor at mid-clip and came back up near where it started (the quickstart's new motion). */
  bounced: boolean;
}

/** Below this travel (fraction of the side; the world's shapes travel 0.3–0.4) a clip counts as still. */
export const MIN_TRAVEL = 0.08;

function vote<T>(values: readonly T[]): T | null {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: T | null = null, n = 0;
  for (const [v, c] of counts) if (c > n) { best = v; n = c; }
  return best;
}

/** Centroid of the pixels nearer the shape's colour than the background's (fractions of the side). */
function centroid(rgb: Uint8Array, size: number, fg: Rgb, bg: Rgb): [number, number] | null {
  let sx = 0, sy = 0, n = 0;
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const o = (y * size + x) * 3;
    const dF = (rgb[o] - fg[0]) ** 2 + (rgb[o + 1] - fg[1]) ** 2 + (rgb[o + 2] - fg[2]) ** 2;
    const dB = (rgb[o] - bg[0]) ** 2 + (rgb[o + 1] - bg[1]) ** 2 + (rgb[o + 2] - bg[2]) ** 2;
    if (dF < dB) { sx += x + 0.5; sy += y + 0.5; n++; }
  }
  return n ? [sx / n / size, sy / n / size] : null;
}

/** Analyses a clip: frames of size×size RGB bytes, in order. */
export function analyzeClip(frames: readonly Uint8Array[], size: number): ClipAnalysis {
  if (frames.length < 2) throw new Error(`analyzeClip: a clip needs at least 2 frames, got ${frames.length}`);
  const per: ImageAnalysis[] = frames.map((f) => analyzeImage(f, size));
  const found = per.filter((a) => a.shape !== 'none');
  const background = vote(per.map((a) => a.background));
  if (found.length === 0) return { shape: 'none', color: null, background, direction: 'none', displacement: [0, 0], framesWithShape: 0, bounced: false };
  const shape = vote(found.map((a) => a.shape))!;
  const color = vote(found.map((a) => a.color!))!;
  // The mean shape and background colours of the clip split every frame into shape and backdrop.
  const mean = (rgbs: Rgb[]): Rgb => [0, 1, 2].map((c) => rgbs.reduce((s, v) => s + v[c], 0) / rgbs.length) as Rgb;
  const fg = mean(found.map((a) => a.foregroundRgb!)), bg = mean(per.map((a) => a.backgroundRgb));
  // A quarter of the clip at each end, so one odd frame moves the estimate little.
  const k = Math.max(1, Math.floor(frames.length / 4));
  const ends = (list: readonly Uint8Array[]) => {
    const cs = list.map((f) => centroid(f, size, fg, bg)).filter((c): c is [number, number] => c !== null);
    return cs.length ? [cs.reduce((s, c) => s + c[0], 0) / cs.length, cs.reduce((s, c) => s + c[1], 0) / cs.length] : null;
  };
  const first = ends(frames.slice(0, k)), last = ends(frames.slice(-k));
  if (!first || !last) return { shape, color, background, direction: 'none', displacement: [0, 0], framesWithShape: found.length, bounced: false };
  // The middle quarter against both ends: a bounce is well below them, the ends level with each other.
  const m0 = Math.floor((frames.length - k) / 2), middle = ends(frames.slice(m0, m0 + k));
  const dx = last[0] - first[0], dy = last[1] - first[1];
  // The measured travel covers the clip less a quarter at each end (centres of the end windows).
  let direction: ClipAnalysis['direction'];
  if (Math.hypot(dx, dy) < MIN_TRAVEL * (frames.length - k) / (frames.length - 1)) direction = 'still';
  else if (Math.abs(dx) >= Math.abs(dy)) direction = dx < 0 ? 'left' : 'right';
  else direction = dy < 0 ? 'up' : 'down';
  const drop = middle ? middle[1] - (first[1] + last[1]) / 2 : 0;
  const bounced = drop > MIN_TRAVEL && Math.abs(dy) < drop / 2 && Math.abs(dx) < drop / 2;
  return { shape, color, background, direction, displacement: [dx, dy], framesWithShape: found.length, bounced };
}
