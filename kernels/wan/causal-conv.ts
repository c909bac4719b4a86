// Wan's causal 3D convolution: a Conv3d over [N, C, T, H, W] whose time axis is padded only in front
// (2·p frames for padding p), so frame t never sees a later frame. Lowered as one 2D convolution per
// output frame batch: the kt time-shifted windows are stacked on the channel axis and the [O, C, kt,
// kh, kw] weight is read as [O, kt·C, kh, kw] — the same sums as a 3D convolution, no new op, and the
// gradients come from conv2d's rules.
//
// Chunked video encoding (first frame, then 4 at a time) carries a cache per convolution: the last
// 2·p input frames of the previous chunk stand in for the front padding, so a chunked pass computes
// exactly what a whole-clip pass computes.
import type { Tensor } from '../tensor';
import { add } from '../ops/elementwise';
import { conv2d } from '../ops/nn';
import { concat, pad, reshape, slice, transpose } from '../ops/shape-and-reduce';

export interface Conv3dOptions {
  /** Frames skipped between outputs (Wan's temporal downsampling uses 2). */
  timeStride?: number;
  /** Frames of zeros in front (causal padding). */
  timePadFront?: number;
  /** Symmetric spatial padding [rows, cols]. */
  spatialPadding?: [number, number];
}

/** x [N, C, T, H, W] ⊛ w [O, C, kt, kh, kw] (+ bias [O]) → [N, O, T', H', W']. */
export function conv3d(x: Tensor, w: Tensor, bias: Tensor | undefined, o: Conv3dOptions = {}): Tensor {
  const [n, c] = x.shape;
  const [out, cin, kt, kh, kw] = w.shape;
  if (x.rank !== 5 || w.rank !== 5 || cin !== c) throw new Error(`conv3d takes x [N, C, T, H, W] and w [O, C, kt, kh, kw]; got [${x.shape}] and [${w.shape}]`);
  const st = o.timeStride ?? 1;
  const xp = pad(x, [0, 0, o.timePadFront ?? 0, 0, 0], [0, 0, 0, 0, 0]);
  const frames = xp.shape[2];
  const to = Math.floor((frames - kt) / st) + 1;
  if (to <= 0) throw new Error(`conv3d: ${frames} frames are fewer than the kernel's ${kt}`);
  const [h, wd] = x.shape.slice(3);
  // Window i holds frames i, i + st, … for the To outputs; stacked tap-major on channels.
  const windows = Array.from({ length: kt }, (_, i) => everyNthFrame(xp, i, to, st));
  const stacked = kt === 1 ? windows[0] : concat(windows, 1); // [N, kt·C, To, H, W]
  const perFrame = reshape(transpose(stacked, [0, 2, 1, 3, 4]), [n * to, kt * c, h, wd]);
  const w2 = reshape(transpose(w, [0, 2, 1, 3, 4]), [out, kt * c, kh, kw]);
  const [ph, pw] = o.spatialPadding ?? [0, 0];
  const y = conv2d(perFrame, w2, undefined, { padding: [ph, pw] });
  const [, , ho, wo] = y.shape;
  const back = transpose(reshape(y, [n, to, out, ho, wo]), [0, 2, 1, 3, 4]);
  return bias ? add(back, reshape(bias, [1, out, 1, 1, 1])) : back;
}

/**
 * Frames start, start + st, … (count of them) of [N, C, T, H, W]. Built from an unstrided slice and a
 * reshape (strided slices have no gradient rule): the run of count·st frames is cut, padded past the end
 * when it overhangs, viewed as [count, st] and the first of each st taken.
 */
function everyNthFrame(x: Tensor, start: number, count: number, st: number): Tensor {
  if (st === 1) return slice(x, [start], [start + count], [2]);
  const [n, c, t, h, w] = x.shape;
  const run = slice(x, [start], [Math.min(t, start + count * st)], [2]);
  const padded = pad(run, [0, 0, 0, 0, 0], [0, 0, count * st - run.shape[2], 0, 0]);
  return reshape(slice(reshape(padded, [n, c, count, st, h, w]), [0], [1], [3]), [n, c, count, h, w]);
}

/** The input frames each causal convolution keeps from one chunk for the next, by module path. */
export type CausalCache = Map<string, Tensor>;

/**
 * Wan's CausalConv3d with padding (pt, ph, pw): 2·pt frames in front. With a cache (chunked encoding)
 * the previous chunk's last frames replace as many of those zero frames, and this chunk's last 2·pt
 * input frames (with the older ones when the chunk is shorter) are kept for the next.
 */
export function causalConv3d(x: Tensor, w: Tensor, bias: Tensor | undefined, padding: [number, number, number], cache?: { store: CausalCache; key: string }): Tensor {
  const front = 2 * padding[0];
  let input = x;
  if (cache && front > 0) {
    const prev = cache.store.get(cache.key);
    input = prev ? concat([prev, x], 2) : x;
    const t = input.shape[2];
    cache.store.set(cache.key, slice(input, [Math.max(0, t - front)], [t], [2]));
  }
  return conv3d(input, w, bias, { timePadFront: front - (input.shape[2] - x.shape[2]), spatialPadding: [padding[1], padding[2]] });
}
