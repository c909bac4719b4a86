// A decoder for uncompressed Windows BMP files (24-bit, 32-bit, 32-bit with bit-field masks),
// because sharp/libvips cannot read BMP. Returns RGBA pixels top-down.

export interface RgbaImage {
  data: Buffer;
  width: number;
  height: number;
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

export function isBmp(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d; // "BM"
}

/** Decodes a BMP; `name` is used in error messages. */
export function decodeBmp(bytes: Buffer, name: string): RgbaImage {
  const fail = (why: string): never => {
    throw new Error(`${name}: cannot read BMP: ${why}`);
  };
  if (!isBmp(bytes)) fail('not a BMP file (missing "BM" signature)');
  if (bytes.length < 54) fail(`file is truncated (${bytes.length} bytes)`);
  const pixelOffset = bytes.readUInt32LE(10);
  const headerSize = bytes.readUInt32LE(14);
  if (headerSize < 40) fail(`unsupported header (${headerSize} bytes; OS/2 BMPs are not supported)`);
  const width = bytes.readInt32LE(18);
  const rawHeight = bytes.readInt32LE(22);
  const bitsPerPixel = bytes.readUInt16LE(28);
  const compression = bytes.readUInt32LE(30);
  if (width <= 0 || rawHeight === 0) fail(`invalid size ${width}x${rawHeight}`);
  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  if (bitsPerPixel !== 24 && bitsPerPixel !== 32) fail(`${bitsPerPixel}-bit BMPs are not supported (24 or 32-bit only)`);

  // Channel masks: fixed BGR(A) layout for BI_RGB, explicit masks for BI_BITFIELDS.
  let masks = bitsPerPixel === 32 ? [0x00ff0000, 0x0000ff00, 0x000000ff, 0] : null;
  if (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) {
    if (bitsPerPixel !== 32) fail('bit-field masks are only supported for 32-bit BMPs');
    // Masks follow a 40-byte header, or sit inside V4/V5 headers at the same offset.
    const at = 14 + 40;
    if (bytes.length < at + 12) fail('file is truncated in the colour masks');
    const hasAlphaMask = compression === BI_ALPHABITFIELDS || headerSize >= 56;
    masks = [bytes.readUInt32LE(at), bytes.readUInt32LE(at + 4), bytes.readUInt32LE(at + 8), hasAlphaMask ? bytes.readUInt32LE(at + 12) : 0];
  } else if (compression !== BI_RGB) {
    fail(`compressed BMPs are not supported (compression ${compression})`);
  }

  const rowBytes = Math.ceil((width * bitsPerPixel) / 32) * 4;
  const needed = pixelOffset + rowBytes * (height - 1) + Math.ceil((width * bitsPerPixel) / 8);
  if (bytes.length < needed) fail(`file is truncated (${bytes.length} of ${needed} bytes)`);

  const out = Buffer.alloc(width * height * 4);
  const channel = (value: number, mask: number) => {
    if (mask === 0) return 255;
    const shift = 31 - Math.clz32(mask & -mask); // index of the lowest set bit
    const bits = 32 - Math.clz32(mask >>> shift);
    const v = ((value & mask) >>> 0) >>> shift;
    return bits >= 8 ? v >>> (bits - 8) : Math.round((v * 255) / ((1 << bits) - 1));
  };
  for (let y = 0; y < height; y++) {
    const row = pixelOffset + (topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (bitsPerPixel === 24) {
        const p = row + x * 3;
        out[o] = bytes[p + 2];
        out[o + 1] = bytes[p + 1];
        out[o + 2] = bytes[p];
        out[o + 3] = 255;
      } else {
        const value = bytes.readUInt32LE(row + x * 4);
        const m = masks!;
        out[o] = channel(value, m[0]);
        out[o + 1] = channel(value, m[1]);
        out[o + 2] = channel(value, m[2]);
        out[o + 3] = channel(value, m[3]);
      }
    }
  }
  // Many writers leave the alpha byte of 32-bit BMPs at 0 while meaning "opaque".
  if (bitsPerPixel === 32 && masks![3] !== 0) {
    let anyVisible = false;
    for (let i = 3; i < out.length; i += 4) if (out[i] !== 0) { anyVisible = true; break; }
    if (!anyVisible) for (let i = 3; i < out.length; i += 4) out[i] = 255;
  }
  return { data: out, width, height };
}
