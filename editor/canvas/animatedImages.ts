// Video samples (animated WebP) playing on the canvas (part of the canvas wrapper). A canvas draws an <img>'s
// first frame only — Chromium advances an animation only while the image is painted on the page — so clips are
// decoded with WebCodecs' ImageDecoder and the frame due at the current time is drawn; the canvas redraws the nodes
// that show one when their frame changes (frameChanged). Where ImageDecoder is missing (an insecure origin) the
// first frame shows, and the lightbox, an <img>, still plays the clip.
import { imageSrc } from '../net/api';

interface Clip {
  /** Each frame's duration in ms and when it starts within the loop. */
  durations: number[];
  starts: number[];
  total: number;
  /** Decoded frames while they fit the budget; others are decoded when due. */
  bitmaps: (ImageBitmap | undefined)[];
  decoder: ImageDecoder;
  /** The frame last drawn, and one being decoded. */
  drawn: number;
  latest: ImageBitmap | undefined;
  pending: boolean;
}

/** Bytes of decoded frames kept for all clips together (a long full-size clip is decoded frame by frame instead). */
const BUDGET = 256 * 1024 * 1024;
/** Images remembered (as the <img> cache in drawLive): the oldest clip is let go beyond this. */
const MAX_CLIPS = 500;
let kept = 0;
const clips = new Map<string, Clip | 'loading' | 'still'>();
const listeners = new Set<(url: string) => void>();

/** Images that may be animated: WebP files (the server writes video samples as animated WebP). */
export function mayBeAnimated(url: string): boolean {
  return /filename=[^&]*\.webp(&|$)/i.test(url) || /\.webp(\?|$)/i.test(url);
}

export function onClipDecoded(listener: (url: string) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function load(url: string): Promise<void> {
  try {
    const data = await (await fetch(imageSrc(url))).arrayBuffer();
    const decoder = new ImageDecoder({ data, type: 'image/webp' });
    await decoder.tracks.ready;
    const count = decoder.tracks.selectedTrack?.frameCount ?? 1;
    if (count < 2) {
      decoder.close();
      clips.set(url, 'still');
      return;
    }
    const durations: number[] = [], bitmaps: (ImageBitmap | undefined)[] = [];
    for (let i = 0; i < count; i++) {
      const { image } = await decoder.decode({ frameIndex: i });
      durations.push(Math.max(10, (image.duration ?? 100_000) / 1000));
      const bytes = image.displayWidth * image.displayHeight * 4;
      if (kept + bytes <= BUDGET) {
        bitmaps.push(await createImageBitmap(image));
        kept += bytes;
      } else bitmaps.push(undefined);
      image.close();
    }
    const starts = durations.map((_, i) => durations.slice(0, i).reduce((a, b) => a + b, 0));
    clips.set(url, { durations, starts, total: starts[count - 1]! + durations[count - 1]!, bitmaps, decoder, drawn: -1, latest: bitmaps[0], pending: false });
  } catch {
    clips.set(url, 'still');
  }
  listeners.forEach((l) => l(url));
}

/** Lets the oldest image go: its decoded frames and decoder are released. */
function evictOldest(): void {
  const [url, c] = clips.entries().next().value!;
  clips.delete(url);
  if (typeof c !== 'object') return;
  for (const b of new Set([...c.bitmaps, c.latest])) {
    if (!b) continue;
    if (c.bitmaps.includes(b)) kept -= b.width * b.height * 4;
    b.close();
  }
  c.decoder.close();
}

function clipOf(url: string): Clip | null {
  const c = clips.get(url);
  if (c === undefined) {
    if (clips.size >= MAX_CLIPS) evictOldest();
    if (!mayBeAnimated(url) || typeof ImageDecoder === 'undefined') {
      clips.set(url, 'still');
      return null;
    }
    clips.set(url, 'loading');
    void load(url);
    return null;
  }
  return typeof c === 'object' ? c : null;
}

/** The frame of a clip due at `now` (ms), looping. */
function frameAt(c: Clip, now: number): number {
  const t = now % c.total;
  let i = c.starts.length - 1;
  while (i > 0 && c.starts[i]! > t) i--;
  return i;
}

/**
 * What to draw for an animated image at `now` (null: not animated, or not decoded yet — draw the <img>). Records
 * the frame as drawn; a frame not kept decoded is decoded now and shown from the next redraw.
 */
export function clipFrame(url: string, now: number): CanvasImageSource | null {
  const c = clipOf(url);
  if (!c) return null;
  const i = frameAt(c, now);
  c.drawn = i;
  const kept = c.bitmaps[i];
  if (kept) return kept;
  if (!c.pending) {
    c.pending = true;
    void c.decoder.decode({ frameIndex: i }).then(async ({ image }) => {
      const bitmap = await createImageBitmap(image);
      image.close();
      if (c.latest && !c.bitmaps.includes(c.latest)) c.latest.close();
      c.latest = bitmap;
    }).catch(() => {}).finally(() => { c.pending = false; });
  }
  return c.latest ?? null;
}

/** Whether the clip at `url` is due to show another frame than the one last drawn. */
export function frameChanged(url: string, now: number): boolean {
  const c = clips.get(url);
  return typeof c === 'object' && frameAt(c, now) !== c.drawn;
}

/** What the editor knows about a clip (for tests): frames (0 until decoded or when still) and the frame drawn last. */
export function clipState(url: string): { frames: number; frameDrawn: number; durationMs: number } {
  const c = clips.get(url);
  return typeof c === 'object' ? { frames: c.durations.length, frameDrawn: c.drawn, durationMs: c.total } : { frames: 0, frameDrawn: -1, durationMs: 0 };
}
