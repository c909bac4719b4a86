// Two 4-bit values per byte in ONNX's INT4/UINT4 layout: element 2i in the low nibble, 2i+1 in the
// high nibble, an odd count padded with a zero nibble.

/** Packs values 0..15 (or signed -8..7, stored as two's complement nibbles). */
export function packNibbles(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    const v = values[i] & 0xf;
    out[i >> 1] |= i & 1 ? v << 4 : v;
  }
  return out;
}

export function unpackUint4(packed: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (packed[i >> 1] >> ((i & 1) * 4)) & 0xf;
  return out;
}

export function unpackInt4(packed: Uint8Array, count: number): Int8Array {
  const out = new Int8Array(count);
  for (let i = 0; i < count; i++) {
    const v = (packed[i >> 1] >> ((i & 1) * 4)) & 0xf;
    out[i] = v >= 8 ? v - 16 : v;
  }
  return out;
}
