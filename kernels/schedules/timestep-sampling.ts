// Training timestep sampling as ai-toolkit users know it: a timestep type (linear, sigmoid, weighted,
// shift, lognorm_blend), a timestep bias (balanced / high noise / low noise) and a min/max range.
// t is the noise level in [0, 1] (flow-matching σ; t * 1000 is the ai-toolkit/kohya timestep).
//
// Every distribution is a CDF F plus its quantile Q, and a draw is t = Q(p) for one uniform-derived
// level p. ai-toolkit draws an index into a sorted (descending) schedule; picking index u³·N there is
// the level p = 1 - u³ here (high noise), index (1 - u³)·N is p = u³ (low noise). Because sampling
// goes through Q, the exact CDF of what is sampled is known: the preview histogram and the tests use it.
// (ai-toolkit's finite 1000-entry schedule puts the draws with u < 0.1 all on its single noisiest entry;
// here that 10% is spread over the top 0.1% of the distribution, its continuous limit.)
//
// `weighted` is the one type that also weighs the loss: it draws like `linear` and each sample's loss is
// multiplied by ai-toolkit's measured weight for its timestep (timestepLossWeight), on flow-matching models.
import { normalCdf, normalQuantile, Rng } from '../random';
import { AI_TOOLKIT_TIMESTEP_WEIGHTS } from './ai-toolkit-timestep-weights';
import { dynamicShiftMu, unshiftSigma, shiftSigma, type DynamicShiftConfig } from './flow-matching';

export const TIMESTEP_TYPES = ['linear', 'sigmoid', 'weighted', 'shift', 'lognorm_blend'] as const;
export type TimestepType = (typeof TIMESTEP_TYPES)[number];
export const TIMESTEP_BIASES = ['balanced', 'high_noise', 'low_noise'] as const;
export type TimestepBias = (typeof TIMESTEP_BIASES)[number];
/** Labels as ai-toolkit's UI shows them. */
export const TIMESTEP_BIAS_LABELS: Readonly<Record<TimestepBias, string>> = {
  balanced: 'Balanced',
  high_noise: 'High Noise',
  low_noise: 'Low Noise',
};
/** ai-toolkit config values (`content_or_style`) to ours, for importing its configs. */
export const AI_TOOLKIT_TIMESTEP_BIAS: Readonly<Record<string, TimestepBias>> = {
  balanced: 'balanced',
  content: 'high_noise',
  style: 'low_noise',
};

export interface TimestepSamplingConfig {
  timestepType: TimestepType;
  /** ai-toolkit's content_or_style: balanced, high_noise ("content"), low_noise ("style"). Default balanced. */
  timestepBias?: TimestepBias;
  /** Lowest noise level sampled, in [0, 1]. Default 0. */
  minTimestep?: number;
  /** Highest noise level sampled, in [0, 1]. Default 1. */
  maxTimestep?: number;
  /** `sigmoid`: t = sigmoid(scale * z), z ~ N(0, 1). Default 1 (ai-toolkit). */
  sigmoidScale?: number;
  /** `shift`: fixed shift s applied to a uniform draw. Default 3 (SD3). Ignored with `dynamicShift`. */
  shift?: number;
  /** `shift`: resolution-dependent shift s = e^μ, μ from the image's latent token count. */
  dynamicShift?: DynamicShiftConfig & { imageSeqLen: number };
}

/** A distribution of t on [0, 1]: its CDF and quantile function. */
export interface TimestepDistribution {
  cdf(t: number): number;
  quantile(p: number): number;
}

// ai-toolkit's lognorm_blend: 75% from 1 - X/max(X) with X ~ LogNormal(0, 0.333) over 750 draws, 25% uniform.
const LOGNORM_FRACTION = 0.75;
const LOGNORM_SIGMA = 0.333;
/**
 * ai-toolkit divides by the largest of its 750 lognormal draws; we use that maximum's typical value
 * (the 1 - 1/750 quantile) so the distribution is fixed. Draws above it clamp to t = 0.
 */
const LOGNORM_MAX = Math.exp(LOGNORM_SIGMA * normalQuantile(1 - 1 / 750));

/**
 * The per-sample loss weight a timestep type asks for at noise level t: for `weighted`, ai-toolkit's table
 * (entry i at t = (1000 − i)/1000, linear in between, the end entries held beyond them); 1 for every other
 * type. ai-toolkit applies it on flow-matching models only, which is where the trainer feeds it.
 */
export function timestepLossWeight(type: TimestepType, t: number): number {
  if (type !== 'weighted') return 1;
  const last = AI_TOOLKIT_TIMESTEP_WEIGHTS.length - 1;
  const x = Math.min(last, Math.max(0, 1000 * (1 - t)));
  const i = Math.min(last - 1, Math.floor(x));
  const f = x - i;
  return AI_TOOLKIT_TIMESTEP_WEIGHTS[i] * (1 - f) + AI_TOOLKIT_TIMESTEP_WEIGHTS[i + 1] * f;
}

/** Inverts a continuous non-decreasing CDF on [0, 1] through a table (error ~1e-8 in t). */
function tabulatedQuantile(cdf: (t: number) => number, points = 4097): (p: number) => number {
  const ts = new Float64Array(points);
  const fs = new Float64Array(points);
  for (let i = 0; i < points; i++) {
    ts[i] = i / (points - 1);
    fs[i] = cdf(ts[i]);
  }
  return (p: number) => {
    if (p <= fs[0]) return 0;
    if (p >= fs[points - 1]) return 1;
    let lo = 0;
    let hi = points - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (fs[mid] <= p) lo = mid;
      else hi = mid;
    }
    const span = fs[hi] - fs[lo];
    return span > 0 ? ts[lo] + ((p - fs[lo]) / span) * (ts[hi] - ts[lo]) : ts[lo];
  };
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** The effective fixed shift for a `shift` config (e^μ when dynamic). */
export function effectiveShift(cfg: TimestepSamplingConfig): number {
  if (cfg.dynamicShift) return Math.exp(dynamicShiftMu(cfg.dynamicShift.imageSeqLen, cfg.dynamicShift));
  return cfg.shift ?? 3;
}

/** The timestep type's own distribution, before bias and range. */
export function baseTimestepDistribution(cfg: TimestepSamplingConfig): TimestepDistribution {
  switch (cfg.timestepType) {
    case 'linear':
    case 'weighted': // uniform like ai-toolkit's; the weighting is on the loss (timestepLossWeight)
      return { cdf: clamp01, quantile: clamp01 };
    case 'sigmoid': {
      const scale = cfg.sigmoidScale ?? 1;
      if (!(scale > 0)) throw new RangeError(`sigmoidScale must be > 0, got ${scale}`);
      return {
        cdf: (t) => (t <= 0 ? 0 : t >= 1 ? 1 : normalCdf(Math.log(t / (1 - t)) / scale)),
        quantile: (p) => 1 / (1 + Math.exp(-scale * normalQuantile(clamp01(p)))),
      };
    }
    case 'shift': {
      const s = effectiveShift(cfg);
      if (!(s > 0)) throw new RangeError(`shift must be > 0, got ${s}`);
      return {
        cdf: (t) => unshiftSigma(clamp01(t), s),
        quantile: (p) => shiftSigma(clamp01(p), s),
      };
    }
    case 'lognorm_blend': {
      const cdf = (t: number) => {
        if (t < 0) return 0;
        if (t >= 1) return 1;
        // P(1 - X/c <= t) = P(X >= c(1 - t)) for the lognormal part.
        const lognormPart = 1 - normalCdf(Math.log(LOGNORM_MAX * (1 - t)) / LOGNORM_SIGMA);
        return (1 - LOGNORM_FRACTION) * t + LOGNORM_FRACTION * lognormPart;
      };
      return { cdf, quantile: tabulatedQuantile(cdf) };
    }
    default:
      throw new RangeError(`unknown timestep type "${String(cfg.timestepType)}" (known: ${TIMESTEP_TYPES.join(', ')})`);
  }
}

/** CDF of the bias's level p on [0, 1] and its inverse (the map from a uniform u to p). */
function biasLevel(bias: TimestepBias): { cdf: (x: number) => number; fromUniform: (u: number) => number } {
  switch (bias) {
    case 'balanced':
      return { cdf: clamp01, fromUniform: (u) => u };
    case 'high_noise': // p = 1 - u³: P(p <= x) = 1 - (1 - x)^(1/3)
      return { cdf: (x) => 1 - Math.cbrt(1 - clamp01(x)), fromUniform: (u) => 1 - u * u * u };
    case 'low_noise': // p = u³: P(p <= x) = x^(1/3)
      return { cdf: (x) => Math.cbrt(clamp01(x)), fromUniform: (u) => u * u * u };
    default:
      throw new RangeError(`unknown timestep bias "${String(bias)}" (known: ${TIMESTEP_BIASES.join(', ')})`);
  }
}

/** The full distribution that `sampleTimesteps` draws from: type, then bias, restricted to the range. */
export function timestepDistribution(cfg: TimestepSamplingConfig): TimestepDistribution & { sampleLevel(u: number): number } {
  const base = baseTimestepDistribution(cfg);
  const bias = biasLevel(cfg.timestepBias ?? 'balanced');
  const tMin = cfg.minTimestep ?? 0;
  const tMax = cfg.maxTimestep ?? 1;
  if (!(tMin >= 0 && tMax <= 1 && tMin < tMax)) {
    throw new RangeError(`timestep range needs 0 <= minTimestep < maxTimestep <= 1, got [${tMin}, ${tMax}]`);
  }
  // Restrict in level space so the bias acts within the range (ai-toolkit maps its index range the same way).
  const pLo = tMin <= 0 ? 0 : base.cdf(tMin);
  const pHi = base.cdf(tMax);
  if (!(pHi > pLo)) throw new RangeError(`timestep range [${tMin}, ${tMax}] holds no probability under ${cfg.timestepType}`);
  const clampRange = (t: number) => (t < tMin ? tMin : t > tMax ? tMax : t);
  return {
    cdf(t) {
      if (t < tMin) return 0;
      if (t >= tMax) return 1;
      return bias.cdf((base.cdf(t) - pLo) / (pHi - pLo));
    },
    quantile(p) {
      return clampRange(base.quantile(pLo + (pHi - pLo) * clamp01(p)));
    },
    sampleLevel(u) {
      return clampRange(base.quantile(pLo + (pHi - pLo) * bias.fromUniform(u)));
    },
  };
}

/** Draws `count` noise levels t in [0, 1] from the project Rng (one uniform per draw). */
export function sampleTimesteps(rng: Rng, count: number, cfg: TimestepSamplingConfig): Float64Array {
  const dist = timestepDistribution(cfg);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = dist.sampleLevel(rng.uniform());
  return out;
}

export interface TimestepHistogram {
  /** bins + 1 equally spaced edges from 0 to 1. */
  edges: number[];
  /** Probability of each bin (sums to 1). */
  probability: number[];
}

/** The exact distribution as a histogram over [0, 1] (for the Timestep Schedule node's preview). */
export function timestepHistogram(cfg: TimestepSamplingConfig, bins = 50): TimestepHistogram {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`histogram bins must be a positive integer, got ${bins}`);
  const dist = timestepDistribution(cfg);
  const edges = Array.from({ length: bins + 1 }, (_, i) => i / bins);
  const probability: number[] = [];
  let prev = 0; // bins are (a, b], except the first, which also holds any mass at exactly t = 0
  for (let i = 1; i <= bins; i++) {
    const c = dist.cdf(edges[i]);
    probability.push(c - prev);
    prev = c;
  }
  return { edges, probability };
}
