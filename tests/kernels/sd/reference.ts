// Plain-JS float64 reference implementations of the SD building blocks, for numerics tests.
export type Arr = Float64Array;

export const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

/** x [N, C, H, W], groups, per-channel affine. */
export function groupNorm(x: Arr, [n, c, h, w]: number[], groups: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number): Arr {
  const out = new Float64Array(x.length);
  const per = (c / groups) * h * w;
  for (let b = 0; b < n; b++) for (let g = 0; g < groups; g++) {
    const base = (b * c + g * (c / groups)) * h * w;
    let mean = 0; for (let i = 0; i < per; i++) mean += x[base + i]; mean /= per;
    let v = 0; for (let i = 0; i < per; i++) v += (x[base + i] - mean) ** 2; v /= per;
    for (let i = 0; i < per; i++) {
      const ch = g * (c / groups) + Math.floor(i / (h * w));
      out[base + i] = ((x[base + i] - mean) / Math.sqrt(v + eps)) * gamma[ch] + beta[ch];
    }
  }
  return out;
}

export function conv2d(x: Arr, [n, ci, h, w]: number[], wt: ArrayLike<number>, bias: ArrayLike<number>, co: number, k: number, pad: number, stride = 1): { y: Arr; shape: number[] } {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1, ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(n * co * oh * ow);
  for (let b = 0; b < n; b++) for (let o = 0; o < co; o++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
    let s = bias[o];
    for (let c = 0; c < ci; c++) for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
      const yy = i * stride + u - pad, xx = j * stride + v - pad;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
      s += x[((b * ci + c) * h + yy) * w + xx] * wt[((o * ci + c) * k + u) * k + v];
    }
    y[((b * co + o) * oh + i) * ow + j] = s;
  }
  return { y, shape: [n, co, oh, ow] };
}

/** x [rows, in] · Wᵀ (W [out, in]) + b */
export function linear(x: Arr, rows: number, inF: number, wt: ArrayLike<number>, outF: number, bias?: ArrayLike<number>): Arr {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) {
    let s = bias ? bias[o] : 0;
    for (let i = 0; i < inF; i++) s += x[r * inF + i] * wt[o * inF + i];
    y[r * outF + o] = s;
  }
  return y;
}

export function layerNorm(x: Arr, rows: number, d: number, g: ArrayLike<number>, b: ArrayLike<number>, eps: number): Arr {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let m = 0; for (let i = 0; i < d; i++) m += x[r * d + i]; m /= d;
    let v = 0; for (let i = 0; i < d; i++) v += (x[r * d + i] - m) ** 2; v /= d;
    for (let i = 0; i < d; i++) y[r * d + i] = ((x[r * d + i] - m) / Math.sqrt(v + eps)) * g[i] + b[i];
  }
  return y;
}

export const silu = (x: Arr) => x.map((v) => v / (1 + Math.exp(-v)));
export const quickGelu = (x: Arr) => x.map((v) => v / (1 + Math.exp(-1.702 * v)));
export const addArr = (a: Arr, b: Arr) => a.map((v, i) => v + b[i]);

/** Multi-head attention for one batch: q [L, C], k/v [S, C]. */
export function mha(q: Arr, k: Arr, v: Arr, L: number, S: number, C: number, heads: number, causal = false): Arr {
  const d = C / heads;
  const out = new Float64Array(L * C);
  for (let h = 0; h < heads; h++) for (let i = 0; i < L; i++) {
    const scores = new Float64Array(S);
    let max = -Infinity;
    for (let j = 0; j < S; j++) {
      let s = 0; for (let e = 0; e < d; e++) s += q[i * C + h * d + e] * k[j * C + h * d + e];
      s /= Math.sqrt(d);
      if (causal && j > i) s = -Infinity;
      scores[j] = s; max = Math.max(max, s);
    }
    let z = 0; for (let j = 0; j < S; j++) { scores[j] = Math.exp(scores[j] - max); z += scores[j]; }
    for (let e = 0; e < d; e++) { let s = 0; for (let j = 0; j < S; j++) s += scores[j] * v[j * C + h * d + e]; out[i * C + h * d + e] = s / z; }
  }
  return out;
}

export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 1e-6; for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let err = 0; for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return err / scale;
}
