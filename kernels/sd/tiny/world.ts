// The procedural image world the tiny model is pretrained on: one coloured shape on a coloured
// background, drawn anti-aliased in plain JS, with a caption like "a red circle on a blue background".
// Everything is deterministic from a seed.
import { Rng } from '../../random';

/** Named colours, far enough apart that a blurred or slightly shifted pixel still finds its name. */
export const PALETTE = {
  red: [215, 40, 40],
  orange: [240, 130, 20],
  yellow: [245, 225, 50],
  green: [40, 160, 70],
  blue: [40, 80, 210],
  purple: [135, 50, 170],
  white: [245, 245, 245],
  black: [25, 25, 25],
} as const satisfies Record<string, readonly [number, number, number]>;

export type ColorName = keyof typeof PALETTE;
export const COLOR_NAMES = Object.keys(PALETTE) as ColorName[];

export type ShapeName = 'circle' | 'square' | 'triangle' | 'star';
/** The shapes of the pretraining world. The star is kept out: it is the quickstart's new concept. */
export const WORLD_SHAPES: readonly ShapeName[] = ['circle', 'square', 'triangle'];
export const ALL_SHAPES: readonly ShapeName[] = ['circle', 'square', 'triangle', 'star'];

export interface Scene {
  shape: ShapeName;
  color: ColorName;
  background: ColorName;
  /** Centre, as a fraction of the image side (0..1, x right, y down). */
  cx: number;
  cy: number;
  /** Circumradius (distance from centre to the outermost point) as a fraction of the image side. */
  size: number;
  /** Radians, clockwise on screen; 0 means upright (triangle and star point up, square axis-aligned). */
  rotation: number;
}

// Circumradius ranges per shape, chosen so the four shapes cover similar areas (a triangle or star
// of the same circumradius as a circle looks much smaller).
const SIZE_RANGE: Record<ShapeName, [number, number]> = {
  circle: [0.2, 0.32],
  square: [0.24, 0.37],
  triangle: [0.28, 0.42],
  star: [0.3, 0.44],
};
// Shapes stay near upright so a person reads them at once; the analyzer does not rely on it.
const MAX_TILT = 0.3;
// Gap kept between the shape and the image edge, as a fraction of the side.
const EDGE_MARGIN = 0.04;
/** Inner/outer radius of a regular five-pointed star (pentagram outline). */
export const STAR_INNER_RATIO = 0.381966;

export interface SceneOptions {
  /** Shapes to draw from. Default: the pretraining world's circle, square, triangle. */
  shapes?: readonly ShapeName[];
  /** Colours for the shape. Default: the whole palette. */
  colors?: readonly ColorName[];
  /** Colours for the background. Default: the whole palette. */
  backgrounds?: readonly ColorName[];
}

/** One random scene; the shape lies wholly inside the image and never matches its background. */
export function sampleScene(rngOrSeed: Rng | number, options: SceneOptions = {}): Scene {
  const rng = typeof rngOrSeed === 'number' ? new Rng(rngOrSeed) : rngOrSeed;
  const shapes = options.shapes ?? WORLD_SHAPES;
  const colors = options.colors ?? COLOR_NAMES;
  const backgrounds = options.backgrounds ?? COLOR_NAMES;
  if (shapes.length === 0 || colors.length === 0 || backgrounds.length === 0) {
    throw new Error('sampleScene: shapes, colors and backgrounds must each list at least one name');
  }
  const shape = rng.choice(shapes);
  const color = rng.choice(colors);
  const otherBackgrounds = backgrounds.filter((b) => b !== color);
  if (otherBackgrounds.length === 0) throw new Error(`sampleScene: no background colour differs from ${color}`);
  const background = rng.choice(otherBackgrounds);
  const [lo, hi] = SIZE_RANGE[shape];
  const size = rng.uniform(lo, hi);
  const rotation = shape === 'circle' ? 0 : rng.uniform(-MAX_TILT, MAX_TILT);
  const box = outlineBounds({ shape, size, rotation });
  const cx = EDGE_MARGIN - box.minX + rng.uniform() * Math.max(0, 1 - 2 * EDGE_MARGIN - (box.maxX - box.minX));
  const cy = EDGE_MARGIN - box.minY + rng.uniform() * Math.max(0, 1 - 2 * EDGE_MARGIN - (box.maxY - box.minY));
  return { shape, color, background, cx, cy, size, rotation };
}

export interface CaptionOptions {
  /** Word used in place of the shape's name, e.g. "[trigger]" for a LoRA dataset. */
  shapeWord?: string;
}

/** "a red circle on a blue background" ("an" before orange). */
export function captionOf(scene: Scene, options: CaptionOptions = {}): string {
  const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');
  const shapeWord = options.shapeWord ?? scene.shape;
  return `${article(scene.color)} ${scene.color} ${shapeWord} on ${article(scene.background)} ${scene.background} background`;
}

export interface ParsedCaption {
  color: ColorName;
  /** The word in the shape's place: a shape name, or a trigger word. */
  shapeWord: string;
  /** The shape, when shapeWord names one. */
  shape: ShapeName | null;
  background: ColorName;
}

/** Reads a world caption back ("a red circle on a blue background"); null for any other text. */
export function parseCaption(caption: string): ParsedCaption | null {
  const match = /^an? (\S+) (\S+) on an? (\S+) background$/.exec(caption.trim().toLowerCase().replace(/\s+/g, ' '));
  if (!match) return null;
  const [, color, shapeWord, background] = match;
  if (!(color in PALETTE) || !(background in PALETTE)) return null;
  const shape = (ALL_SHAPES as readonly string[]).includes(shapeWord) ? (shapeWord as ShapeName) : null;
  return { color: color as ColorName, shapeWord, shape, background: background as ColorName };
}

/** The scene drawn into a size×size RGB image (3 bytes per pixel, rows top to bottom). */
export function renderScene(scene: Scene, size = 64): Uint8Array {
  if (!Number.isInteger(size) || size < 1) throw new Error(`renderScene: size must be a positive integer, got ${size}`);
  const image = new Uint8Array(size * size * 3);
  const fg = PALETTE[scene.color];
  const bg = PALETTE[scene.background];
  const distance = signedDistance(scene, size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Coverage from the signed distance at the pixel centre: a one-pixel-wide linear ramp
      // across the edge, which is what gives the outline its anti-aliasing.
      const d = distance(x + 0.5, y + 0.5);
      const coverage = Math.min(1, Math.max(0, 0.5 - d));
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) image[o + c] = Math.round(bg[c] + (fg[c] - bg[c]) * coverage);
    }
  }
  return image;
}

/** The outline's corners in units of the image side, centred on (0, 0); empty for a circle. */
export function shapeVertices(shape: ShapeName, size: number, rotation: number): [number, number][] {
  const ring = (count: number, start: number, radius: (k: number) => number): [number, number][] =>
    Array.from({ length: count }, (_, k) => {
      const angle = start + rotation + (2 * Math.PI * k) / count;
      return [radius(k) * Math.cos(angle), radius(k) * Math.sin(angle)];
    });
  switch (shape) {
    case 'circle':
      return [];
    case 'square':
      return ring(4, Math.PI / 4, () => size);
    case 'triangle':
      return ring(3, -Math.PI / 2, () => size);
    case 'star':
      return ring(10, -Math.PI / 2, (k) => (k % 2 === 0 ? size : size * STAR_INNER_RATIO));
  }
}

function outlineBounds(s: Pick<Scene, 'shape' | 'size' | 'rotation'>) {
  const points = shapeVertices(s.shape, s.size, s.rotation);
  if (points.length === 0) return { minX: -s.size, maxX: s.size, minY: -s.size, maxY: s.size };
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return { minX: Math.min(...xs), maxX: Math.max(...xs), minY: Math.min(...ys), maxY: Math.max(...ys) };
}

// Distance in pixels from a point to the shape's outline, negative inside.
function signedDistance(scene: Scene, side: number): (x: number, y: number) => number {
  const cx = scene.cx * side;
  const cy = scene.cy * side;
  if (scene.shape === 'circle') {
    const r = scene.size * side;
    return (x, y) => Math.hypot(x - cx, y - cy) - r;
  }
  const pts = shapeVertices(scene.shape, scene.size, scene.rotation).map(([x, y]) => [cx + x * side, cy + y * side]);
  return (x, y) => {
    let nearest = Infinity;
    let inside = false;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      const [ax, ay] = pts[j];
      const [bx, by] = pts[i];
      const ex = bx - ax;
      const ey = by - ay;
      const t = Math.min(1, Math.max(0, ((x - ax) * ex + (y - ay) * ey) / (ex * ex + ey * ey)));
      nearest = Math.min(nearest, Math.hypot(x - ax - t * ex, y - ay - t * ey));
      if (ay > y !== by > y && x < ax + ((y - ay) * ex) / ey) inside = !inside;
    }
    return inside ? -nearest : nearest;
  };
}
