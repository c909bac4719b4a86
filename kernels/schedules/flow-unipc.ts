// UniPC (Zhao et al. 2023) for rectified-flow models, as Wan's official `flow_unipc` sampler and diffusers'
// UniPCMultistepScheduler with flow sigmas run it: the B(h) = e^h − 1 variant ("bh2"), data prediction
// (x̂0 = x − σ·v), a predictor of up to `order` steps of history and a corrector that re-uses the model call
// the next step makes anyway — so N steps cost N model calls, as Euler's do, at second-order accuracy.
// Time runs in λ = log(α/σ) with α = 1 − σ; the last step lands on σ = 0 with the first-order update.

/** The model's velocity (noise − data) at `x` and noise level σ; `step` counts from 0. */
export type FlowVelocity = (x: Float32Array, sigma: number, step: number) => Promise<Float32Array>;

export interface FlowUniPCOptions {
  /** History the predictor uses (1–3; Wan and diffusers: 2). */
  order?: number;
  /** Fall back to lower orders over the last steps (Wan: on; keeps few-step sampling stable). */
  lowerOrderFinal?: boolean;
  onStep?: (step: number, steps: number) => void;
}

const lambda = (sigma: number) => Math.log(1 - sigma) - Math.log(sigma);

/** Solves the small dense system A·x = b (Gaussian elimination with partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row.slice(0, n), b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

/**
 * One UniPC-bh2 update from σ_s (where the newest data prediction `m0` was made) to σ_t, with earlier data
 * predictions `prev` (newest first, at noise levels `prevSigmas`). `mt` (the data prediction at the
 * predicted x_t) makes it the corrector: every coefficient is solved for; without it, the predictor.
 */
function unipcUpdate(x: Float32Array, sigmaS: number, sigmaT: number, m0: Float32Array, prev: Float32Array[], prevSigmas: number[], mt?: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  const alphaT = 1 - sigmaT;
  if (sigmaT === 0) {
    // λ_t = ∞: the exponential integrator's first-order step is the data prediction itself.
    out.set(m0);
    return out;
  }
  const lambdaS = lambda(sigmaS);
  const h = lambda(sigmaT) - lambdaS;
  const rks = prevSigmas.map((s) => (lambda(s) - lambdaS) / h);
  const order = prev.length + 1;
  const hh = -h; // data prediction integrates e^{−λ}
  const hPhi1 = Math.expm1(hh);
  const bH = Math.expm1(hh); // bh2
  // b_i = i!·φ_{i+1}(hh)/B(h) via φ's recursion; R_i = rks^(i−1) (with r = 1 for the newest point).
  const r = [...rks, 1];
  const R: number[][] = [];
  const b: number[] = [];
  let hPhiK = hPhi1 / hh - 1;
  let factorial = 1;
  for (let i = 1; i <= order; i++) {
    R.push(r.map((rk) => rk ** (i - 1)));
    b.push((hPhiK * factorial) / bH);
    factorial *= i + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }
  let rhos: number[];
  if (mt) rhos = order === 1 ? [0.5] : solve(R, b);
  else rhos = order === 1 ? [] : order === 2 ? [0.5] : solve(R.slice(0, -1).map((row) => row.slice(0, -1)), b.slice(0, -1));
  const ratio = sigmaT / sigmaS;
  for (let i = 0; i < x.length; i++) {
    let res = 0;
    for (let k = 0; k < prev.length; k++) res += (rhos[k]! * (prev[k]![i]! - m0[i]!)) / rks[k]!;
    if (mt) res += rhos[order - 1]! * (mt[i]! - m0[i]!);
    out[i] = ratio * x[i]! - alphaT * hPhi1 * m0[i]! - alphaT * bH * res;
  }
  return out;
}

/**
 * The noise levels flow UniPC runs on a model's schedule `shift` (the noise level of an evenly spaced time
 * t ∈ [0, 1]): t from 1 − 1/1000 down in `steps` steps, shifted, then 0. It starts just below 1, as
 * diffusers' flow-sigma UniPC and Wan's flow_unipc do, because UniPC steps in λ = log((1 − σ)/σ), which is
 * −∞ at σ = 1.
 */
export function flowUniPCSigmas(steps: number, shift: (t: number) => number): number[] {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  return [...Array.from({ length: steps }, (_, i) => shift((1 - 1 / 1000) * (1 - i / steps))), 0];
}

/**
 * Integrates the flow ODE from `x` at sigmas[0] down the given noise levels (descending, below 1, the last
 * usually 0); returns the final sample. `x` is not changed.
 */
export async function sampleFlowUniPC(velocity: FlowVelocity, x0: Float32Array, sigmas: readonly number[], o: FlowUniPCOptions = {}): Promise<Float32Array> {
  const maxOrder = o.order ?? 2;
  if (!(Number.isInteger(maxOrder) && maxOrder >= 1 && maxOrder <= 3)) throw new RangeError(`UniPC order must be 1, 2 or 3, got ${maxOrder}`);
  const steps = sigmas.length - 1;
  if (steps < 1) throw new RangeError('UniPC: needs at least two noise levels');
  for (let i = 0; i <= steps; i++) {
    const s = sigmas[i]!;
    if (!(s >= 0 && s < 1)) throw new RangeError(`UniPC: noise level ${i} is ${s}; flow UniPC needs levels in [0, 1) (λ = log((1 − σ)/σ) is −∞ at σ = 1: start at 1 − 1/1000 as Wan does)`);
    if (i > 0 && !(s < sigmas[i - 1]!)) throw new RangeError(`UniPC: noise levels must decrease (level ${i} is ${s} after ${sigmas[i - 1]})`);
    if (i < steps && s === 0) throw new RangeError(`UniPC: only the last noise level may be 0 (level ${i} is)`);
  }
  const lowerOrderFinal = o.lowerOrderFinal ?? true;
  let x: Float32Array = Float32Array.from(x0);
  /** Data predictions, newest first, and their noise levels. */
  const history: Float32Array[] = [];
  const historySigmas: number[] = [];
  let lastX: Float32Array | undefined;
  let lastOrder = 0;
  for (let k = 0; k < steps; k++) {
    const sigma = sigmas[k]!;
    const v = await velocity(x, sigma, k);
    if (v.length !== x.length) throw new Error(`UniPC: the model returned ${v.length} values for ${x.length}`);
    const m = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) m[i] = x[i]! - sigma * v[i]!;
    if (lastX) {
      // Corrector for the step just taken, with the model call this step needed anyway.
      x = unipcUpdate(lastX, historySigmas[0]!, sigma, history[0]!, history.slice(1, lastOrder), historySigmas.slice(1, lastOrder), m);
    }
    history.unshift(m);
    historySigmas.unshift(sigma);
    history.length = Math.min(history.length, maxOrder);
    historySigmas.length = history.length;
    let order = Math.min(maxOrder, history.length);
    if (lowerOrderFinal) order = Math.min(order, steps - k);
    if (sigmas[k + 1] === 0) order = 1; // higher orders divide by r = 0 at λ = ∞
    lastX = x;
    lastOrder = order;
    x = unipcUpdate(x, sigma, sigmas[k + 1]!, m, history.slice(1, order), historySigmas.slice(1, order));
    o.onStep?.(k + 1, steps);
  }
  return x;
}
