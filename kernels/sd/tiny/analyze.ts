// Measures what a generated image of the procedural world shows: background colour, shape colour
// and shape class. Used by `eval:tiny` and `eval:quickstart`; built to tolerate blur, noise and
// colour drift, because sampled images are never as clean as the renders the model learned from.
import { COLOR_NAMES, PALETTE, type ColorName, type ShapeName } from './world';

export type ShapeClass = ShapeName | 'none';
export type Rgb = [number, number, number];

export interface ShapeFeatures {
  /** Foreground area as a fraction of the image. */
  areaFraction: number;
  /** Area of the outline over the area of its convex hull: ~1 for convex shapes, ~0.6 for a star. */
  solidity: number;
  /** Amplitudes of the 3rd, 4th and 5th harmonics of the radius-by-angle profile, relative to the mean radius. */
  harmonic3: number;
  harmonic4: number;
  harmonic5: number;
}

export interface ImageAnalysis {
  shape: ShapeClass;
  /** Name of the shape's colour, or null when no shape was found. */
  color: ColorName | null;
  background: ColorName;
  foregroundRgb: Rgb | null;
  backgroundRgb: Rgb;
  features: ShapeFeatures | null;
}

// A shape must cover at least this fraction of the image to count (the world's smallest covers ~10%).
const MIN_AREA_FRACTION = 0.012;
// Below this harmonic amplitude an outline is round.
const ROUND_LIMIT = 0.05;
// Stars are the only concave shape; a blurred star stays well under this solidity.
const STAR_SOLIDITY = 0.86;
const PROFILE_ANGLES = 180;

/** Analyses a width×height RGB image (3 bytes per pixel, rows top to bottom). */
export function analyzeImage(rgb: Uint8Array, width: number, height = width): ImageAnalysis {
  if (rgb.length !== width * height * 3) {
    throw new Error(`analyzeImage: expected ${width}×${height}×3 = ${width * height * 3} bytes, got ${rgb.length}`);
  }
  const pixels = width * height;
  // Smooth until the background is calm: noise would otherwise hide the shape's pixels among
  // the background's, while a shape (several percent of the image) survives a little blur.
  let image = smooth(rgb, width, height);
  let backdrop = fitBackground(image, width, height);
  for (let pass = 0; pass < 4 && backdrop.noise > 8; pass++) {
    image = smooth(image, width, height);
    backdrop = fitBackground(image, width, height);
  }
  const { centre: backgroundRgb, plane, noise } = backdrop;
  const distance = distancesFrom(image, plane);
  const background = nearestColor(backgroundRgb);
  const none: ImageAnalysis = { shape: 'none', color: null, background, foregroundRgb: null, backgroundRgb, features: null };
  const threshold = Math.max(30, 4 * noise);
  const minPixels = Math.max(4, MIN_AREA_FRACTION * pixels);

  const foreground = dominantForeground(image, distance, threshold, background);
  if (!foreground || foreground.count < minPixels) return none;

  const alpha = coverage(image, plane, backgroundRgb, foreground.rgb);
  const component = largestComponent(alpha, width, height);
  if (component.area < minPixels) return none;
  const keep = dilate(component.mask, width, height, 2);
  for (let p = 0; p < pixels; p++) if (!keep[p]) alpha[p] = 0;

  const features = shapeFeatures(alpha, width, height);
  return { shape: classify(features), color: foreground.name, background, foregroundRgb: foreground.rgb, backgroundRgb, features };
}

/** The palette colour closest to an RGB value. */
export function nearestColor(rgb: Rgb, exclude?: ColorName): ColorName {
  let best: ColorName = COLOR_NAMES[0];
  let bestDistance = Infinity;
  for (const name of COLOR_NAMES) {
    if (name === exclude) continue;
    const [r, g, b] = PALETTE[name];
    const d = (rgb[0] - r) ** 2 + (rgb[1] - g) ** 2 + (rgb[2] - b) ** 2;
    if (d < bestDistance) {
      bestDistance = d;
      best = name;
    }
  }
  return best;
}

function classify(f: ShapeFeatures): ShapeClass {
  const strongest = Math.max(f.harmonic3, f.harmonic4, f.harmonic5);
  if (f.solidity < STAR_SOLIDITY && f.harmonic5 === strongest) return 'star';
  if (strongest < ROUND_LIMIT) return 'circle';
  // Three corners give the profile a 3rd harmonic, four a 4th, five points a 5th.
  if (strongest === f.harmonic3) return 'triangle';
  if (strongest === f.harmonic4) return 'square';
  return 'star';
}

function distancesFrom(rgb: Float32Array, plane: Float32Array): Float32Array {
  const out = new Float32Array(rgb.length / 3);
  for (let p = 0; p < out.length; p++) {
    const o = p * 3;
    out[p] = Math.hypot(rgb[o] - plane[o], rgb[o + 1] - plane[o + 1], rgb[o + 2] - plane[o + 2]);
  }
  return out;
}

// One pass of a separable [1 2 1]/4 blur (edges clamped).
function smooth(rgb: ArrayLike<number>, width: number, height: number): Float32Array {
  const pass = (src: ArrayLike<number>, dx: number, dy: number) => {
    const out = new Float32Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const prev = (Math.min(height - 1, Math.max(0, y - dy)) * width + Math.min(width - 1, Math.max(0, x - dx))) * 3;
        const next = (Math.min(height - 1, Math.max(0, y + dy)) * width + Math.min(width - 1, Math.max(0, x + dx))) * 3;
        const o = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) out[o + c] = 0.25 * src[prev + c] + 0.5 * src[o + c] + 0.25 * src[next + c];
      }
    }
    return out;
  };
  return pass(pass(rgb, 1, 0), 0, 1);
}

function borderIndices(width: number, height: number): number[] {
  const frame = Math.max(1, Math.round(Math.min(width, height) / 32));
  const out: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (x < frame || y < frame || x >= width - frame || y >= height - frame) out.push(y * width + x);
    }
  }
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// The background as a plane per channel (a flat colour, or uneven lighting across the image),
// fitted to the border pixels; border pixels far off the fit (a shape touching the edge) are
// dropped and the plane refitted.
function fitBackground(rgb: Float32Array, width: number, height: number) {
  let border = borderIndices(width, height);
  const u = (p: number) => ((p % width) + 0.5) / width - 0.5;
  const v = (p: number) => (Math.floor(p / width) + 0.5) / height - 0.5;
  let coefficients: number[][] = [];
  let noise = 0;
  for (let round = 0; round < 3; round++) {
    coefficients = [0, 1, 2].map((c) => fitPlane(border.map((p) => [u(p), v(p), rgb[p * 3 + c]])));
    const residual = (p: number) =>
      Math.hypot(...[0, 1, 2].map((c) => rgb[p * 3 + c] - (coefficients[c][0] + coefficients[c][1] * u(p) + coefficients[c][2] * v(p))));
    const residuals = border.map(residual);
    noise = median(residuals);
    const limit = Math.max(12, 3 * noise);
    const kept = border.filter((_, i) => residuals[i] <= limit);
    if (kept.length === border.length || kept.length < border.length / 2) break;
    border = kept;
  }
  const plane = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) plane[p * 3 + c] = coefficients[c][0] + coefficients[c][1] * u(p) + coefficients[c][2] * v(p);
  }
  const centre = coefficients.map((k) => k[0]) as Rgb;
  return { plane, centre, noise };
}

// Least squares z = a + b·u + c·v through the normal equations (3×3, solved by Cramer's rule).
function fitPlane(samples: [number, number, number][]): [number, number, number] {
  let n = 0, su = 0, sv = 0, suu = 0, svv = 0, suv = 0, sz = 0, suz = 0, svz = 0;
  for (const [u, v, z] of samples) {
    n++;
    su += u;
    sv += v;
    suu += u * u;
    svv += v * v;
    suv += u * v;
    sz += z;
    suz += u * z;
    svz += v * z;
  }
  const det3 = (m: number[][]) =>
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  const normal = [[n, su, sv], [su, suu, suv], [sv, suv, svv]];
  const rhs = [sz, suz, svz];
  const d = det3(normal);
  if (Math.abs(d) < 1e-9) return [sz / (n || 1), 0, 0];
  const solve = (col: number) => det3(normal.map((row, i) => row.map((x, j) => (j === col ? rhs[i] : x)))) / d;
  return [solve(0), solve(1), solve(2)];
}

// Far-from-background pixels vote for their nearest palette colour; edge pixels (blends of both
// colours) are left out by keeping only those near the strongest contrast in the image.
function dominantForeground(rgb: Float32Array, distance: Float32Array, threshold: number, background: ColorName) {
  const candidates: number[] = [];
  for (let p = 0; p < distance.length; p++) if (distance[p] > threshold) candidates.push(p);
  if (candidates.length === 0) return null;
  const strong = median(candidates.map((p) => distance[p]).sort((a, b) => a - b).slice(Math.floor(candidates.length * 0.5)));
  const core = candidates.filter((p) => distance[p] >= 0.6 * strong);
  const votes = new Map<ColorName, number[]>();
  for (const p of core) {
    const name = nearestColor([rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2]], background);
    const list = votes.get(name);
    if (list) list.push(p);
    else votes.set(name, [p]);
  }
  let name: ColorName = COLOR_NAMES[0];
  let members: number[] = [];
  for (const [n, list] of votes) {
    if (list.length > members.length) {
      name = n;
      members = list;
    }
  }
  const color = [0, 1, 2].map((c) => median(members.map((p) => rgb[p * 3 + c]))) as Rgb;
  return { name, rgb: color, count: candidates.length };
}

// Per-pixel share of foreground, from how far the pixel has moved off the local background
// towards the shape colour.
function coverage(rgb: Float32Array, plane: Float32Array, bg: Rgb, fg: Rgb): Float32Array {
  const dir = [fg[0] - bg[0], fg[1] - bg[1], fg[2] - bg[2]];
  const norm = dir[0] ** 2 + dir[1] ** 2 + dir[2] ** 2 || 1;
  const out = new Float32Array(rgb.length / 3);
  for (let p = 0; p < out.length; p++) {
    const o = p * 3;
    const t = ((rgb[o] - plane[o]) * dir[0] + (rgb[o + 1] - plane[o + 1]) * dir[1] + (rgb[o + 2] - plane[o + 2]) * dir[2]) / norm;
    out[p] = Math.min(1, Math.max(0, t));
  }
  return out;
}

// The largest 8-connected region of pixels at least half covered; specks of noise fall away.
function largestComponent(alpha: Float32Array, width: number, height: number) {
  const label = new Int32Array(alpha.length).fill(-1);
  let bestLabel = -1;
  let bestArea = 0;
  const stack: number[] = [];
  for (let start = 0; start < alpha.length; start++) {
    if (alpha[start] < 0.5 || label[start] >= 0) continue;
    label[start] = start;
    stack.push(start);
    let area = 0;
    while (stack.length > 0) {
      const p = stack.pop()!;
      area++;
      const x = p % width;
      const y = (p - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const q = ny * width + nx;
          if (alpha[q] >= 0.5 && label[q] < 0) {
            label[q] = start;
            stack.push(q);
          }
        }
      }
    }
    if (area > bestArea) {
      bestArea = area;
      bestLabel = start;
    }
  }
  const mask = new Uint8Array(alpha.length);
  for (let p = 0; p < alpha.length; p++) if (label[p] === bestLabel && bestLabel >= 0) mask[p] = 1;
  return { mask, area: bestArea };
}

function dilate(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      for (let dy = -radius; dy <= radius; dy++) {
        for (let dx = -radius; dx <= radius; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx >= 0 && ny >= 0 && nx < width && ny < height) out[ny * width + nx] = 1;
        }
      }
    }
  }
  return out;
}

function sampleBilinear(alpha: Float32Array, width: number, height: number, x: number, y: number): number {
  // Pixel p covers [x, x+1); its value sits at the centre x + 0.5.
  const fx = x - 0.5;
  const fy = y - 0.5;
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const tx = fx - x0;
  const ty = fy - y0;
  const at = (xx: number, yy: number) => (xx < 0 || yy < 0 || xx >= width || yy >= height ? 0 : alpha[yy * width + xx]);
  return (
    at(x0, y0) * (1 - tx) * (1 - ty) + at(x0 + 1, y0) * tx * (1 - ty) + at(x0, y0 + 1) * (1 - tx) * ty + at(x0 + 1, y0 + 1) * tx * ty
  );
}

// The outline as radius by angle around the centroid. Each radius is the coverage integrated along
// its ray rather than the first edge crossing, so blur and noise shift it little.
function shapeFeatures(alpha: Float32Array, width: number, height: number): ShapeFeatures {
  let mass = 0;
  let sx = 0;
  let sy = 0;
  // Bounding box of everything covered; rays stop once they leave it.
  let minX = width;
  let minY = height;
  let maxX = 0;
  let maxY = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const a = alpha[y * width + x];
      if (a <= 0) continue;
      mass += a;
      sx += a * (x + 0.5);
      sy += a * (y + 0.5);
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
      maxX = Math.max(maxX, x + 1);
      maxY = Math.max(maxY, y + 1);
    }
  }
  const cx = sx / mass;
  const cy = sy / mass;
  const reach = Math.hypot(width, height);
  const step = 0.25;
  const radii = new Float64Array(PROFILE_ANGLES);
  const outline: [number, number][] = [];
  for (let i = 0; i < PROFILE_ANGLES; i++) {
    const angle = (2 * Math.PI * i) / PROFILE_ANGLES;
    const dx = Math.cos(angle);
    const dy = Math.sin(angle);
    let r = 0;
    for (let t = step / 2; t < reach; t += step) {
      const x = cx + t * dx;
      const y = cy + t * dy;
      if (x < minX - 1 || y < minY - 1 || x > maxX + 1 || y > maxY + 1) break;
      r += sampleBilinear(alpha, width, height, x, y) * step;
    }
    radii[i] = r;
    outline.push([r * dx, r * dy]);
  }
  const meanRadius = radii.reduce((a, b) => a + b, 0) / PROFILE_ANGLES;
  const harmonic = (k: number) => {
    let re = 0;
    let im = 0;
    for (let i = 0; i < PROFILE_ANGLES; i++) {
      const angle = (2 * Math.PI * k * i) / PROFILE_ANGLES;
      re += radii[i] * Math.cos(angle);
      im -= radii[i] * Math.sin(angle);
    }
    return (2 * Math.hypot(re, im)) / PROFILE_ANGLES / (meanRadius || 1);
  };
  const area = Math.abs(polygonArea(outline));
  const hullArea = Math.abs(polygonArea(convexHull(outline)));
  return {
    areaFraction: mass / (width * height),
    solidity: hullArea > 0 ? area / hullArea : 1,
    harmonic3: harmonic(3),
    harmonic4: harmonic(4),
    harmonic5: harmonic(5),
  };
}

function polygonArea(points: [number, number][]): number {
  let sum = 0;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    sum += points[j][0] * points[i][1] - points[i][0] * points[j][1];
  }
  return sum / 2;
}

// Andrew's monotone chain.
function convexHull(points: [number, number][]): [number, number][] {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (sorted.length < 3) return sorted;
  const cross = (o: [number, number], a: [number, number], b: [number, number]) =>
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: [number, number][] = [];
  for (const p of sorted) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: [number, number][] = [];
  for (let i = sorted.length - 1; i >= 0; i--) {
    const p = sorted[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}
