// The project's seeded random number generator: every random choice in training (noise, dropout
// masks, timesteps, data order) comes from an Rng, so a run is reproducible and resumes exactly from
// `state()`. Built on Philox4x32-10, so a state is just (key, block counter, position in block).
import { philox4x32 } from './philox';

/** Plain JSON-serialisable snapshot of an Rng; `Rng.fromState` continues the exact sequence. */
export interface RngState {
  algorithm: 'philox4x32-10';
  /** The stream's 64-bit key as two uint32 words. */
  key: [number, number];
  /** Index of the current 4-word block as [low, high] uint32 words. */
  block: [number, number];
  /** Words of the current block already used (0..4). */
  used: number;
  /** Second Box–Muller value waiting to be returned by `normal()`, if any. */
  spareNormal: number | null;
}

const TWO_32 = 2 ** 32;
const TWO_53 = 2 ** 53;
/** Counter word 2 marks key derivation, so fork keys never coincide with a stream's data blocks. */
const FORK_DOMAIN = 0x666f726b; // "fork"

/** Two independent 32-bit FNV-1a hashes (different offset bases) of the label's UTF-8 bytes, avalanched. */
function hashLabel(label: string): [number, number] {
  const bytes = new TextEncoder().encode(label);
  let h1 = 0x811c9dc5;
  let h2 = 0x050c5d1f;
  for (const b of bytes) {
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x01000193);
  }
  return [fmix32(h1 ^ bytes.length), fmix32(h2 + 0x9e3779b9)];
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function keyFromSeed(seed: number | string): [number, number] {
  if (typeof seed === 'string') return hashLabel(seed);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`Rng seed must be a non-negative integer below 2^53 or a string, got ${seed}`);
  }
  return [seed % TWO_32 >>> 0, Math.floor(seed / TWO_32) >>> 0];
}

function isUint32(x: unknown): x is number {
  return Number.isInteger(x) && (x as number) >= 0 && (x as number) < TWO_32;
}

export class Rng {
  private readonly key: [number, number];
  private blockLo = 0;
  private blockHi = 0;
  private used = 4; // forces the first draw to compute block 0
  private readonly words = new Uint32Array(4);
  private spareNormal: number | null = null;

  /** A stream for `seed` (a non-negative integer below 2^53, or a string). */
  constructor(seed: number | string) {
    this.key = keyFromSeed(seed);
    // Start "before" block 0: the first refill advances to block 0.
    this.blockLo = TWO_32 - 1;
    this.blockHi = TWO_32 - 1;
  }

  static fromState(s: RngState): Rng {
    const ok =
      s !== null &&
      typeof s === 'object' &&
      s.algorithm === 'philox4x32-10' &&
      Array.isArray(s.key) &&
      s.key.length === 2 &&
      s.key.every(isUint32) &&
      Array.isArray(s.block) &&
      s.block.length === 2 &&
      s.block.every(isUint32) &&
      Number.isInteger(s.used) &&
      s.used >= 0 &&
      s.used <= 4 &&
      (s.spareNormal === null || Number.isFinite(s.spareNormal));
    if (!ok) throw new TypeError(`not an Rng state: ${JSON.stringify(s)}`);
    const rng = new Rng(0);
    rng.key[0] = s.key[0];
    rng.key[1] = s.key[1];
    rng.blockLo = s.block[0];
    rng.blockHi = s.block[1];
    rng.used = s.used;
    rng.spareNormal = s.spareNormal;
    if (rng.used < 4) philox4x32(rng.blockLo, rng.blockHi, 0, 0, rng.key[0], rng.key[1], rng.words);
    return rng;
  }

  state(): RngState {
    return {
      algorithm: 'philox4x32-10',
      key: [this.key[0], this.key[1]],
      block: [this.blockLo, this.blockHi],
      used: this.used,
      spareNormal: this.spareNormal,
    };
  }

  clone(): Rng {
    return Rng.fromState(this.state());
  }

  /**
   * An independent stream named `label` ("noise", "dropout", "timesteps", "data-order", "noise/step-12").
   * It depends only on this stream's key and the label, not on how far this stream has been drawn,
   * so the same fork is obtained whenever it is asked for.
   */
  fork(label: string): Rng {
    const [h0, h1] = hashLabel(label);
    const k = philox4x32(h0, h1, FORK_DOMAIN, 0, this.key[0], this.key[1]);
    const child = new Rng(0);
    child.key[0] = k[0];
    child.key[1] = k[1];
    return child;
  }

  nextUint32(): number {
    if (this.used === 4) {
      this.blockLo = (this.blockLo + 1) >>> 0;
      if (this.blockLo === 0) this.blockHi = (this.blockHi + 1) >>> 0;
      philox4x32(this.blockLo, this.blockHi, 0, 0, this.key[0], this.key[1], this.words);
      this.used = 0;
    }
    return this.words[this.used++];
  }

  /** Uniform double in [low, high) with 53 random bits (two words). */
  uniform(low = 0, high = 1): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    const u = (a * 67108864 + b) / TWO_53;
    return low + (high - low) * u;
  }

  /** Normal sample by Box–Muller; the pair's second value is kept (and saved in `state()`). */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + std * z;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    return mean + std * r * Math.cos(2 * Math.PI * u2);
  }

  /** Uniform integer in [low, high), unbiased (rejection sampling). */
  int(low: number, high: number): number {
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high) || high <= low || high - low > TWO_53) {
      throw new RangeError(`Rng.int needs integers low < high with high - low <= 2^53, got [${low}, ${high})`);
    }
    const range = high - low;
    if (range <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % range);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return low + (x % range);
      }
    }
    const limit = TWO_53 - (TWO_53 % range);
    for (;;) {
      const x = this.uniform() * TWO_53;
      if (x < limit) return low + (x % range);
    }
  }

  /** A new array with the items in random order (Fisher–Yates); the input is not changed. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** Index i drawn with probability weights[i] / sum(weights). */
  choiceIndex(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) {
      if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`choice weights must be finite and >= 0, got ${w}`);
      total += w;
    }
    if (!(total > 0)) throw new RangeError('choice weights must have a positive sum');
    const target = this.uniform() * total;
    let acc = 0;
    let last = -1;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] === 0) continue;
      acc += weights[i];
      last = i;
      if (target < acc) return i;
    }
    return last; // rounding left target == total: the last item with weight
  }

  /** One item, uniformly or with the given weights. */
  choice<T>(items: readonly T[], weights?: readonly number[]): T {
    if (items.length === 0) throw new RangeError('choice from an empty list');
    if (weights === undefined) return items[this.int(0, items.length)];
    if (weights.length !== items.length) {
      throw new RangeError(`choice has ${items.length} items but ${weights.length} weights`);
    }
    return items[this.choiceIndex(weights)];
  }

  /** Fills `out` with uniform float32 values in [low, high) (24 random bits each, one word each). */
  fillUniform(out: Float32Array, low = 0, high = 1): Float32Array {
    const scale = (high - low) / 16777216;
    for (let i = 0; i < out.length; i++) out[i] = low + (this.nextUint32() >>> 8) * scale;
    return out;
  }

  /**
   * Fills `out` with normal float32 values (Box–Muller over pairs of 32-bit words: two values per
   * pair). Used for noise tensors; independent of `normal()`'s spare value.
   */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    const n = out.length;
    for (let i = 0; i < n; i += 2) {
      const u1 = (this.nextUint32() + 1) / TWO_32; // (0, 1]
      const theta = (2 * Math.PI * this.nextUint32()) / TWO_32;
      const r = std * Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + r * Math.cos(theta);
      if (i + 1 < n) out[i + 1] = mean + r * Math.sin(theta);
    }
    return out;
  }
}
