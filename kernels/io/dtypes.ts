// Bit-exact conversions between float32 and the narrow float formats checkpoints store (fp16, bf16,
// fp8 e4m3fn, fp8 e5m2). Only fp32/fp16 cross the ORT boundary; the rest are read/written here.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Largest finite fp8 e4m3fn value (OCP FP8 spec: S.1111.110 = 1.75 * 2^8). */
export const FLOAT8_E4M3_MAX = 448;
/** Largest finite fp16 value. */
export const FLOAT16_MAX = 65504;

/** Shift `m` right by `shift` bits, rounding to nearest with ties to even (shift in 1..31). */
function shiftRightRoundEven(m: number, shift: number): number {
  const q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

// ---------------------------------------------------------------- fp16

/** IEEE binary16 bits of `x`, round-to-nearest-even; overflow gives ±Inf, NaN stays NaN. */
export function floatToHalfBits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e >= 1) {
    // Normal: rounding may carry into the exponent, and a carry out of 0x7bff lands on Inf (0x7c00),
    // which is exactly IEEE's overflow-after-rounding behaviour.
    return sign | shiftRightRoundEven((e << 23) | mant, 13);
  }
  if (exp === 0) return sign; // float32 subnormals are far below fp16's smallest subnormal (2^-24)
  // Subnormal in fp16: value / 2^-24 = (1.mant) * 2^(exp-126); a result of 0x400 is the smallest normal.
  const shift = 126 - exp;
  if (shift > 24) return sign; // below half the smallest subnormal (ties at exactly half go to even 0)
  return sign | shiftRightRoundEven(mant | 0x800000, shift);
}

let halfTable: Float32Array | undefined;

/** float32 value of IEEE binary16 bits `h`. */
export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function getHalfTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloat(h);
  }
  return halfTable;
}

export function float32ToFloat16(src: ArrayLike<number>, out = new Uint16Array(src.length)): Uint16Array {
  checkLength(src.length, out.length);
  for (let i = 0; i < src.length; i++) out[i] = floatToHalfBits(src[i]);
  return out;
}

export function float16ToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  checkLength(src.length, out.length);
  const table = getHalfTable();
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return out;
}

// ---------------------------------------------------------------- bf16

/** bfloat16 bits of `x` (the top half of float32), round-to-nearest-even; NaN stays a quiet NaN. */
export function floatToBfloat16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40;
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

export function bfloat16BitsToFloat(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

export function float32ToBfloat16(src: ArrayLike<number>, out = new Uint16Array(src.length)): Uint16Array {
  checkLength(src.length, out.length);
  for (let i = 0; i < src.length; i++) out[i] = floatToBfloat16Bits(src[i]);
  return out;
}

export function bfloat16ToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  checkLength(src.length, out.length);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

// ---------------------------------------------------------------- fp8 e4m3fn

/**
 * fp8 e4m3fn bits of `x` (OCP FP8: bias 7, no infinities, NaN = S.1111.111), round-to-nearest-even,
 * saturating: anything beyond ±448 (including ±Inf) becomes ±448, as ONNX Cast(saturate=1) does.
 */
export function floatToFloat8E4M3Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  const sign = (b >>> 24) & 0x80;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7f : sign | 0x7e;
  if (exp === 0) return sign;
  const e = exp - 127 + 7;
  if (e >= 16) return sign | 0x7e;
  if (e >= 1) {
    const q = shiftRightRoundEven((e << 23) | mant, 20);
    return sign | Math.min(q, 0x7e); // 0x7f would be NaN: clamp to the largest finite value instead
  }
  // Subnormal in e4m3: value / 2^-9 = (1.mant) * 2^(exp-118) = (mant|2^23) >> (141-exp) = >> (21-e).
  const shift = 21 - e;
  if (shift > 24) return sign;
  return sign | shiftRightRoundEven(mant | 0x800000, shift);
}

const e4m3Table = new Float32Array(256);
for (let v = 0; v < 256; v++) {
  const sign = v & 0x80 ? -1 : 1;
  const exp = (v >>> 3) & 0xf;
  const mant = v & 7;
  if (exp === 0xf && mant === 7) e4m3Table[v] = NaN;
  else if (exp === 0) e4m3Table[v] = sign * mant * 2 ** -9;
  else e4m3Table[v] = sign * (1 + mant / 8) * 2 ** (exp - 7);
}

export function float8E4M3BitsToFloat(v: number): number {
  return e4m3Table[v & 0xff];
}

export function float32ToFloat8E4M3(src: ArrayLike<number>, out = new Uint8Array(src.length)): Uint8Array {
  checkLength(src.length, out.length);
  for (let i = 0; i < src.length; i++) out[i] = floatToFloat8E4M3Bits(src[i]);
  return out;
}

export function float8E4M3ToFloat32(src: Uint8Array, out = new Float32Array(src.length)): Float32Array {
  checkLength(src.length, out.length);
  for (let i = 0; i < src.length; i++) out[i] = e4m3Table[src[i]];
  return out;
}

// ---------------------------------------------------------------- fp8 e5m2 (read only)

/** fp8 e5m2 is the top byte of an fp16, so decoding goes through the fp16 table. */
export function float8E5M2ToFloat32(src: Uint8Array, out = new Float32Array(src.length)): Float32Array {
  checkLength(src.length, out.length);
  const table = getHalfTable();
  for (let i = 0; i < src.length; i++) out[i] = table[src[i] << 8];
  return out;
}

function checkLength(src: number, out: number): void {
  if (src !== out) throw new RangeError(`dtype conversion: output has ${out} elements, input has ${src}`);
}
