// The moving-shapes world the tiny video model is pretrained on: the image world of kernels/sd/tiny
// (one coloured shape on a coloured background, drawn anti-aliased) set in motion — the shape glides
// left, right, up or down across 9–17 frames, captioned "a red circle moving left on a blue background".
// Everything is deterministic from a seed.
import { Rng } from '../../random';
import { COLOR_NAMES, WORLD_SHAPES, renderScene, type ColorName, type ShapeName } from '../../sd/tiny/world';

export type Direction = 'left' | 'right' | 'up' | 'down';
export const DIRECTIONS: readonly Direction[] = ['left', 'right', 'up', 'down'];
/** Unit step on screen (x right, y down) of each direction. */
export const DIRECTION_VECTORS: Record<Direction, [number, number]> = { left: [-1, 0], right: [1, 0], up: [0, -1], down: [0, 1] };

/** Clip lengths of the world: 4n + 1 frames, as Wan's VAE encodes them. */
export const CLIP_FRAMES = [9, 13, 17] as const;

/**
 * How the shape travels: straight in its direction (the pretraining world), or `bouncing` — down to the
 * floor and back up to where it started (the video quickstart's new motion, never seen in pretraining).
 */
export type Motion = 'linear' | 'bouncing';

export interface Clip {
  motion?: Motion;
  shape: ShapeName;
  color: ColorName;
  background: ColorName;
  direction: Direction;
  frames: number;
  /** Circumradius as a fraction of the side. */
  size: number;
  rotation: number;
  /** Centre in the first and the last frame (fractions of the side; linear in between). */
  start: [number, number];
  end: [number, number];
}

// Smaller than the still world's shapes so a shape has room to travel a third of the frame and stay
// wholly inside it; still ≥ 4% of the frame, which the analyzer finds at once.
const SIZE_RANGE: Record<ShapeName, [number, number]> = {
  circle: [0.13, 0.18],
  square: [0.16, 0.22],
  triangle: [0.19, 0.25],
  star: [0.2, 0.26],
};
const MAX_TILT = 0.3;
const EDGE_MARGIN = 0.03;
/** How far the shape travels over a clip (fraction of the side), whatever the clip's length. */
export const TRAVEL_RANGE: [number, number] = [0.3, 0.4];

export interface ClipOptions {
  shapes?: readonly ShapeName[];
  colors?: readonly ColorName[];
  backgrounds?: readonly ColorName[];
  directions?: readonly Direction[];
  /** Frame counts to draw from (default 9, 13, 17). */
  frames?: readonly number[];
  /** Default linear; a bouncing clip ignores its direction's sign and falls, then rises. */
  motion?: Motion;
}

/** One random clip; the shape stays wholly inside every frame and never matches its background. */
export function sampleClip(rngOrSeed: Rng | number, o: ClipOptions = {}): Clip {
  const rng = typeof rngOrSeed === 'number' ? new Rng(rngOrSeed) : rngOrSeed;
  const shapes = o.shapes ?? WORLD_SHAPES, colors = o.colors ?? COLOR_NAMES, backgrounds = o.backgrounds ?? COLOR_NAMES;
  const directions = o.directions ?? DIRECTIONS, frameChoices = o.frames ?? CLIP_FRAMES;
  if (!shapes.length || !colors.length || !backgrounds.length || !directions.length || !frameChoices.length) {
    throw new Error('sampleClip: shapes, colors, backgrounds, directions and frames must each list at least one value');
  }
  const bad = frameChoices.find((f) => !Number.isInteger(f) || f < 2);
  if (bad !== undefined) throw new Error(`sampleClip: a clip needs at least 2 frames, got ${bad}`);
  const shape = rng.choice(shapes);
  const color = rng.choice(colors);
  const others = backgrounds.filter((b) => b !== color);
  if (!others.length) throw new Error(`sampleClip: no background colour differs from ${color}`);
  const background = rng.choice(others);
  const direction = o.motion === 'bouncing' ? 'down' : rng.choice(directions);
  const frames = rng.choice(frameChoices);
  const [lo, hi] = SIZE_RANGE[shape];
  const size = rng.uniform(lo, hi);
  const rotation = shape === 'circle' ? 0 : rng.uniform(-MAX_TILT, MAX_TILT);
  // The circumradius bounds the shape at any rotation.
  const low = size + EDGE_MARGIN, room = 1 - 2 * low;
  const travel = Math.min(rng.uniform(...TRAVEL_RANGE), room);
  const [dx, dy] = DIRECTION_VECTORS[direction];
  const along = low + rng.uniform() * (room - travel); // the start's coordinate along the motion, for a positive direction
  const across = low + rng.uniform() * room;
  const from = dx + dy > 0 ? along : along + travel;
  const to = dx + dy > 0 ? along + travel : along;
  const start: [number, number] = dx !== 0 ? [from, across] : [across, from];
  const end: [number, number] = dx !== 0 ? [to, across] : [across, to];
  return { ...(o.motion === 'bouncing' ? { motion: 'bouncing' as const } : {}), shape, color, background, direction, frames, size, rotation, start, end };
}

/** "a red circle moving left on a blue background" ("an" before orange); `shapeWord` replaces the shape (a trigger). */
export function clipCaption(c: Pick<Clip, 'shape' | 'color' | 'background' | 'direction' | 'motion'>, o: { shapeWord?: string; motionWord?: string } = {}): string {
  const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');
  const motion = o.motionWord ?? (c.motion === 'bouncing' ? 'bouncing' : `moving ${c.direction}`);
  return `${article(c.color)} ${c.color} ${o.shapeWord ?? c.shape} ${motion} on ${article(c.background)} ${c.background} background`;
}

/**
 * Reads a world caption back (clipCaption's words, a bouncing clip's included: `motion: 'bouncing'` and
 * direction down, as sampleClip makes one); null for any other text.
 */
export function parseClipCaption(caption: string): { color: ColorName; shape: ShapeName | null; shapeWord: string; direction: Direction; background: ColorName; motion?: 'bouncing' } | null {
  const m = /^an? (\S+) (\S+) (?:moving (left|right|up|down)|(bouncing)) on an? (\S+) background$/.exec(caption.trim().toLowerCase().replace(/\s+/g, ' '));
  if (!m) return null;
  const [, color, shapeWord, direction, bouncing, background] = m;
  if (!(COLOR_NAMES as readonly string[]).includes(color) || !(COLOR_NAMES as readonly string[]).includes(background)) return null;
  const shape = (['circle', 'square', 'triangle', 'star'] as const).find((s) => s === shapeWord) ?? null;
  return {
    color: color as ColorName, shape, shapeWord, direction: (direction ?? 'down') as Direction, background: background as ColorName,
    ...(bouncing ? { motion: 'bouncing' as const } : {}),
  };
}

/** The shape's centre in frame i (fractions of the side). */
export function clipCentre(c: Clip, i: number): [number, number] {
  const t = c.frames === 1 ? 0 : i / (c.frames - 1);
  // A bounce reaches the floor (the sampled end) at mid-clip and is back at the start at the end.
  const a = c.motion === 'bouncing' ? 1 - Math.abs(1 - 2 * t) : t;
  return [c.start[0] + a * (c.end[0] - c.start[0]), c.start[1] + a * (c.end[1] - c.start[1])];
}

/** The clip's frames, each a size×size RGB image (3 bytes per pixel, rows top to bottom). */
export function renderClip(c: Clip, size = 64): Uint8Array[] {
  return Array.from({ length: c.frames }, (_, i) => {
    const [cx, cy] = clipCentre(c, i);
    return renderScene({ shape: c.shape, color: c.color, background: c.background, cx, cy, size: c.size, rotation: c.rotation }, size);
  });
}

/** Frames (RGB bytes) → [3, F, H, W] floats in [−1, 1] written at `offset` of `out` (the VAE's clip layout). */
export function framesToPlanar(frames: readonly Uint8Array[], size: number, out: Float32Array, offset = 0): void {
  const plane = size * size, f = frames.length;
  frames.forEach((rgb, t) => {
    for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) out[offset + (ch * f + t) * plane + p] = rgb[p * 3 + ch] / 127.5 - 1;
  });
}

/** [3, F, H, W] floats in [−1, 1] (clamped) at `offset` → F RGB byte frames. */
export function planarToFrames(planar: Float32Array, frames: number, size: number, offset = 0): Uint8Array[] {
  const plane = size * size;
  return Array.from({ length: frames }, (_, t) => {
    const rgb = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) {
      const v = planar[offset + (ch * frames + t) * plane + p];
      rgb[p * 3 + ch] = Math.round(Math.min(1, Math.max(0, v * 0.5 + 0.5)) * 255);
    }
    return rgb;
  });
}
