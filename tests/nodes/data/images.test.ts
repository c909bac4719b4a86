// Image decoding: EXIF orientation, alpha over white, BMP, crop/flip to a bucket, clear errors for bad files.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBmp } from '../../../nodes/data/bmp';
import { decodeImage, loadBucketRgb, probeImage, rgbToChw } from '../../../nodes/data/images';
import { encodeBmp } from './fixtures/bmp-writer';
import { stripes, tempFolder, writeImage, writeRaw } from './fixtures/folders';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(() => cleanup());

const pixel = (img: { data: Buffer; width: number }, x: number, y: number) => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];
const near = (a: number[], b: number[], tol = 6) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

describe('decoding', () => {
  it('applies EXIF orientation', async () => {
    // Stored 40x20: red left half, blue right half; orientation 6 = rotate 90° clockwise to display.
    const file = path.join(dir, 'rotated.jpg');
    const raw = stripes(40, 20, [[255, 0, 0], [0, 0, 255]]);
    await writeFile(file, await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer());
    expect(await probeImage(file)).toEqual({ width: 20, height: 40 });
    const img = await decodeImage(file);
    expect([img.width, img.height]).toEqual([20, 40]);
    expect(near(pixel(img, 10, 5), [255, 0, 0], 30)).toBe(true);
    expect(near(pixel(img, 10, 35), [0, 0, 255], 30)).toBe(true);
  });

  it('composites transparency over white', async () => {
    const rgba = Buffer.alloc(4 * 4 * 4);
    for (let i = 0; i < 16; i++) rgba.set(i < 8 ? [255, 0, 0, 0] : [255, 0, 0, 128], i * 4);
    const file = await writeRaw(path.join(dir, 'alpha.png'), rgba, 4, 4, 4);
    const img = await decodeImage(file);
    expect(pixel(img, 0, 0)).toEqual([255, 255, 255]);
    expect(near(pixel(img, 0, 3), [255, 127, 127], 2)).toBe(true);
  });

  it('reads 24-bit and 32-bit BMP (which sharp cannot)', async () => {
    const rgba = Buffer.alloc(3 * 2 * 4);
    const colors = [[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [10, 20, 30, 255], [255, 255, 0, 0], [1, 2, 3, 255]];
    colors.forEach((c, i) => rgba.set(c, i * 4));
    const bmp24 = path.join(dir, 'a24.bmp');
    const bmp32 = path.join(dir, 'a32.bmp');
    await writeFile(bmp24, encodeBmp({ data: rgba, width: 3, height: 2 }, 24));
    await writeFile(bmp32, encodeBmp({ data: rgba, width: 3, height: 2 }, 32));
    expect(decodeBmp(await readFile(bmp32), bmp32).data).toEqual(rgba);
    const a = await decodeImage(bmp24);
    expect([a.width, a.height]).toEqual([3, 2]);
    expect(pixel(a, 0, 0)).toEqual([255, 0, 0]);
    expect(pixel(a, 0, 1)).toEqual([10, 20, 30]);
    expect(pixel(a, 1, 1)).toEqual([255, 255, 0]); // 24-bit: no alpha
    const b = await decodeImage(bmp32);
    expect(pixel(b, 1, 1)).toEqual([255, 255, 255]); // transparent → white
    expect(pixel(b, 2, 1)).toEqual([1, 2, 3]);
    expect(await probeImage(bmp32)).toEqual({ width: 3, height: 2 });
  });

  it('rejects compressed or paletted BMPs by name', () => {
    const bytes = encodeBmp({ data: Buffer.alloc(16), width: 2, height: 2 }, 24);
    bytes.writeUInt16LE(8, 28);
    expect(() => decodeBmp(bytes, 'x.bmp')).toThrow(/x\.bmp: cannot read BMP: 8-bit/);
  });
});

describe('bad files', () => {
  it('names a zero-byte file', async () => {
    const file = path.join(dir, 'empty.png');
    await writeFile(file, '');
    await expect(probeImage(file)).rejects.toThrow(`${file}: cannot read image: image file is empty (0 bytes)`);
  });

  it.each(['jpg', 'png', 'webp', 'bmp'])('names a truncated %s file', async (ext) => {
    const file = path.join(dir, `truncated.${ext}`);
    const whole = ext === 'bmp' ? encodeBmp({ data: Buffer.alloc(64 * 64 * 4, 90), width: 64, height: 64 }) : await readFile(await writeImage(file, 64, 64));
    await writeFile(file, whole.subarray(0, Math.floor(whole.length * 0.6)));
    await expect(probeImage(file)).rejects.toThrow(file);
  });

  it('names a file that is not an image at all', async () => {
    const file = path.join(dir, 'text.jpg');
    await writeFile(file, 'hello, not a jpeg');
    await expect(probeImage(file)).rejects.toThrow(`${file}: cannot read image`);
  });
});

describe('bucket crop and flips', () => {
  it('scales to cover, crops the centre and flips', async () => {
    // 300x100 with red | green | blue thirds → 64x64 bucket shows only the green middle.
    const file = await writeRaw(path.join(dir, 'thirds.png'), stripes(300, 100, [[255, 0, 0], [0, 255, 0], [0, 0, 255]]), 300, 100, 3);
    const rgb = await loadBucketRgb(file, { width: 64, height: 64 }, { flipX: false, flipY: false });
    expect(rgb.length).toBe(64 * 64 * 3);
    expect(near(pixel({ data: rgb, width: 64 }, 32, 32), [0, 255, 0])).toBe(true);
    expect(near(pixel({ data: rgb, width: 64 }, 1, 32), [0, 255, 0], 20)).toBe(true);

    // A wider crop shows red on the left; flipX puts it on the right, flipY keeps it left.
    const wide = { width: 192, height: 64 };
    const plain = await loadBucketRgb(file, wide, { flipX: false, flipY: false });
    const flippedX = await loadBucketRgb(file, wide, { flipX: true, flipY: false });
    const flippedY = await loadBucketRgb(file, wide, { flipX: false, flipY: true });
    expect(near(pixel({ data: plain, width: 192 }, 2, 10), [255, 0, 0])).toBe(true);
    expect(near(pixel({ data: flippedX, width: 192 }, 189, 10), [255, 0, 0])).toBe(true);
    expect(near(pixel({ data: flippedY, width: 192 }, 2, 60), [255, 0, 0])).toBe(true);
  });

  it('flipY mirrors rows', async () => {
    const data = Buffer.alloc(64 * 64 * 3);
    for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) data.set([y * 4, 0, 0], (y * 64 + x) * 3);
    const file = await writeRaw(path.join(dir, 'rows.png'), data, 64, 64, 3);
    const flipped = await loadBucketRgb(file, { width: 64, height: 64 }, { flipX: false, flipY: true });
    expect(flipped[0]).toBe(63 * 4);
    expect(flipped[(63 * 64) * 3]).toBe(0);
  });

  it('converts to planar floats in [-1, 1]', () => {
    const chw = rgbToChw(new Uint8Array([0, 255, 51, 255, 0, 102]), 2, 1);
    expect([...chw].map((v) => +v.toFixed(3))).toEqual([-1, 1, 1, -1, -0.6, -0.2]);
  });
});
