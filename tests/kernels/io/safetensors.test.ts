import { mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32ToBfloat16, float32ToFloat16, float32ToFloat8E4M3, float16ToFloat32, bfloat16ToFloat32, float8E4M3ToFloat32 } from '../../../kernels/io/dtypes';
import {
  loadSafetensors,
  openSafetensors,
  parseSafetensorsHeader,
  SafetensorsError,
  writeSafetensors,
  type TensorToWrite,
} from '../../../kernels/io/safetensors';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'safetensors-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file laid out by hand exactly as the format describes: u64 LE length, JSON, data. */
function handBuilt(header: unknown, data: Uint8Array, opts: { headerText?: string; declaredLength?: bigint } = {}): Buffer {
  const json = Buffer.from(opts.headerText ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.declaredLength ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

async function fileWith(name: string, bytes: Uint8Array): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

const f32 = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

describe('reading files written by hand to the spec', () => {
  it('reads F32 data, metadata and names from a minimal hand-built file', async () => {
    const p = await fileWith(
      'minimal.safetensors',
      handBuilt(
        {
          __metadata__: { format: 'pt', 'ss_network_dim': '16' },
          w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
          b: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
        },
        f32([1, 2, 3, 4, 5]),
      ),
    );
    const r = await openSafetensors(p);
    try {
      expect(r.metadata).toEqual({ format: 'pt', ss_network_dim: '16' });
      expect(r.names()).toEqual(['w', 'b']);
      expect(r.entry('w').shape).toEqual([2, 2]);
      expect(Array.from(await r.read('w'))).toEqual([1, 2, 3, 4]);
      expect(Array.from(await r.read('b'))).toEqual([5]);
      await expect(r.read('nope')).rejects.toThrow(/minimal\.safetensors: tensor "nope": no such tensor/);
    } finally {
      await r.close();
    }
  });
});

describe('round trip through the writer', () => {
  const values = [0, 1, -2.5, 0.1, 1000, -1e-3, 3.14159, 448];
  const tensors: Record<string, TensorToWrite> = {
    'lora_unet.alpha': { dtype: 'F32', shape: [], data: new Float32Array([16]) },
    f32: { dtype: 'F32', shape: [2, 4], data: new Float32Array(values) },
    f64: { dtype: 'F64', shape: [8], data: new Float64Array(values) },
    f16_from_f32: { dtype: 'F16', shape: [8], data: new Float32Array(values) },
    bf16_from_f32: { dtype: 'BF16', shape: [8], data: new Float32Array(values) },
    fp8_from_f32: { dtype: 'F8_E4M3', shape: [8], data: new Float32Array(values) },
    f16_bits: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x0001]) },
    i8: { dtype: 'I8', shape: [4], data: new Int8Array([-128, -1, 0, 127]) },
    u8: { dtype: 'U8', shape: [3], data: Buffer.from([0, 7, 255]) },
    i32: { dtype: 'I32', shape: [2], data: new Int32Array([-5, 1 << 30]) },
    i64: { dtype: 'I64', shape: [3], data: new BigInt64Array([-1n, 42n, 1n << 40n]) },
    bool: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  let path: string;
  beforeAll(async () => {
    path = join(dir, 'roundtrip.safetensors');
    await writeSafetensors(path, tensors, { 'modelspec.title': 'test', ss_network_alpha: '16' });
  });

  it('pads the header to a multiple of 8 bytes with spaces and orders tensors by element size then name', async () => {
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = bytes.subarray(8, 8 + n).toString('utf8');
    expect(text).toMatch(/^\{.*\} *$/);
    const names = Object.keys(JSON.parse(text)).filter((k) => k !== '__metadata__');
    expect(names).toEqual([
      'f64', 'i64', // 8-byte elements
      'empty', 'f32', 'i32', 'lora_unet.alpha', // 4-byte
      'bf16_from_f32', 'f16_bits', 'f16_from_f32', // 2-byte
      'bool', 'fp8_from_f32', 'i8', 'u8', // 1-byte
    ]);
    // Every tensor starts on a multiple of its element size (8 + n is a multiple of 8).
    const r = await openSafetensors(path);
    for (const name of r.names()) {
      const e = r.entry(name);
      expect(e.fileOffset % ({ F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2 }[e.dtype as string] ?? 1)).toBe(0);
    }
    await r.close();
  });

  it('reads back every dtype, raw and as float32, with the metadata', async () => {
    const r = await openSafetensors(path);
    try {
      expect(r.metadata).toEqual({ 'modelspec.title': 'test', ss_network_alpha: '16' });
      expect(Array.from(await r.read('f32'))).toEqual(Array.from(new Float32Array(values)));
      expect(Array.from(await r.read('f64'))).toEqual(Array.from(new Float32Array(values)));
      expect((await r.readRaw('f64')).data).toEqual(new Float64Array(values));
      expect((await r.readRaw('f16_from_f32')).data).toEqual(float32ToFloat16(values));
      expect(await r.read('f16_from_f32')).toEqual(float16ToFloat32(float32ToFloat16(values)));
      expect((await r.readRaw('bf16_from_f32')).data).toEqual(float32ToBfloat16(values));
      expect(await r.read('bf16_from_f32')).toEqual(bfloat16ToFloat32(float32ToBfloat16(values)));
      expect((await r.readRaw('fp8_from_f32')).data).toEqual(float32ToFloat8E4M3(values));
      expect(await r.read('fp8_from_f32')).toEqual(float8E4M3ToFloat32(float32ToFloat8E4M3(values)));
      expect(Array.from(await r.read('f16_bits'))).toEqual([1, -2, 2 ** -24]);
      expect((await r.readRaw('i8')).data).toEqual(new Int8Array([-128, -1, 0, 127]));
      expect(Array.from(await r.read('u8'))).toEqual([0, 7, 255]);
      expect(Array.from(await r.read('i32'))).toEqual([-5, 1 << 30]);
      expect((await r.readRaw('i64')).data).toEqual(new BigInt64Array([-1n, 42n, 1n << 40n]));
      expect(Array.from(await r.read('i64'))).toEqual([-1, 42, 2 ** 40]);
      expect(Array.from(await r.read('bool'))).toEqual([1, 0, 1]);
      expect((await r.readRaw('lora_unet.alpha')).shape).toEqual([]);
      expect(Array.from(await r.read('lora_unet.alpha'))).toEqual([16]);
      const empty = await r.readRaw('empty');
      expect(empty.shape).toEqual([0, 4]);
      expect(empty.data.length).toBe(0);
    } finally {
      await r.close();
    }
  });

  it('loadSafetensors reads a whole small file into a map', async () => {
    const { metadata, tensors: all } = await loadSafetensors(path);
    expect(metadata.ss_network_alpha).toBe('16');
    expect([...all.keys()].sort()).toEqual(Object.keys(tensors).sort());
    expect(all.get('i32')!.data).toEqual(new Int32Array([-5, 1 << 30]));
  });

  it('produces one tensor at a time from functions, in file order', async () => {
    const calls: string[] = [];
    const lazy = (name: string, n: number): TensorToWrite => ({
      dtype: 'F32',
      shape: [n],
      data: async () => {
        calls.push(name);
        return new Float32Array(n).fill(n);
      },
    });
    const p = join(dir, 'lazy.safetensors');
    await writeSafetensors(p, [['b', lazy('b', 3)], ['a', lazy('a', 2)]]);
    expect(calls).toEqual(['a', 'b']);
    const r = await openSafetensors(p);
    expect(Array.from(await r.read('b'))).toEqual([3, 3, 3]);
    await r.close();
  });

  it('streams a narrowed tensor larger than one conversion chunk', async () => {
    const n = (1 << 20) * 2 + 5;
    const src = new Float32Array(n).map((_, i) => Math.sin(i) * 100);
    const p = join(dir, 'big-f16.safetensors');
    await writeSafetensors(p, { w: { dtype: 'F16', shape: [n], data: src } });
    const r = await openSafetensors(p);
    const back = await r.readRaw('w');
    await r.close();
    const want = float32ToFloat16(src);
    // Compare as bytes: a deep-equal over 2M elements is needlessly slow.
    expect(Buffer.compare(Buffer.from(back.data.buffer), Buffer.from(want.buffer))).toBe(0);
  });
});

describe('writing safely', () => {
  it('leaves an existing file untouched and no temp file behind when producing a tensor fails', async () => {
    const p = join(dir, 'keep.safetensors');
    await writeSafetensors(p, { a: { dtype: 'F32', shape: [1], data: new Float32Array([7]) } });
    const before = await readFile(p);
    const failing: TensorToWrite = {
      dtype: 'F32',
      shape: [2],
      data: () => {
        throw new Error('encoder crashed');
      },
    };
    await expect(
      writeSafetensors(p, { a: { dtype: 'F32', shape: [1], data: new Float32Array([1]) }, z: failing }),
    ).rejects.toThrow('encoder crashed');
    expect(await readFile(p)).toEqual(before);
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('names the file and tensor when data does not fit the declaration', async () => {
    const p = join(dir, 'bad-write.safetensors');
    await expect(writeSafetensors(p, { w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } })).rejects.toThrow(
      /bad-write\.safetensors: tensor "w": shape \[2, 2\] has 4 elements but the data has 3/,
    );
    await expect(writeSafetensors(p, { w: { dtype: 'I32', shape: [2], data: new Float32Array(2) } })).rejects.toThrow(
      /tensor "w": dtype I32 needs Int32Array data, got Float32Array/,
    );
    await expect(writeSafetensors(p, { m: { dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 2]) } })).rejects.toThrow(
      /tensor "m": BOOL data must hold only 0 and 1/,
    );
    await expect(
      writeSafetensors(p, { w: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, { n: 3 as unknown as string }),
    ).rejects.toThrow(/metadata "n" must be a string/);
    expect((await readdir(dir)).filter((f) => f.startsWith('bad-write') || f.includes('.tmp-'))).toEqual([]);
  });
});

describe('lazy reads', () => {
  it('opens a 6 GB file and reads one small tensor without touching the rest', async () => {
    // A sparse file: the 6 GB tensor occupies no disk and would take minutes (and 6 GB of RAM) to read.
    const huge = 6 * 1024 ** 3;
    const header = {
      small: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      'model.diffusion_model.huge': { dtype: 'U8', shape: [huge], data_offsets: [16, 16 + huge] },
    };
    const p = join(dir, 'sparse-6gb.safetensors');
    const head = handBuilt(header, f32([1, 2, 3, 4]));
    const h = await open(p, 'w');
    await h.write(head, 0, head.length, 0);
    await h.truncate(head.length + huge);
    await h.close();

    const t0 = performance.now();
    const r = await openSafetensors(p);
    expect(Array.from(await r.read('small'))).toEqual([1, 2, 3, 4]);
    expect(r.entry('model.diffusion_model.huge').byteLength).toBe(huge);
    await r.close();
    expect(performance.now() - t0).toBeLessThan(2000);
    await rm(p);
  });
});

describe('corrupt files: clear errors naming the file and the tensor', () => {
  const good = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  async function openError(name: string, bytes: Uint8Array): Promise<SafetensorsError> {
    const p = await fileWith(name, bytes);
    const err = await openSafetensors(p).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as Error).message).toContain(p);
    return err as SafetensorsError;
  }

  it('file shorter than the 8-byte length prefix', async () => {
    const e = await openError('tiny.safetensors', new Uint8Array([1, 2, 3]));
    expect(e.message).toMatch(/truncated: 3 bytes/);
  });

  it('header length beyond the file', async () => {
    const e = await openError('longheader.safetensors', handBuilt(good, f32([1, 2]), { declaredLength: 10_000n }));
    expect(e.message).toMatch(/header length 10000 runs beyond the file/);
  });

  it('header that is not JSON', async () => {
    const e = await openError('badjson.safetensors', handBuilt(null, f32([1, 2]), { headerText: '{"w": {"dtype": "F32",' }));
    expect(e.message).toMatch(/bad JSON header/);
  });

  it('header that is JSON but not an object', async () => {
    const e = await openError('array.safetensors', handBuilt([1, 2], new Uint8Array(0)));
    expect(e.message).toMatch(/expected a JSON object/);
  });

  it('unknown dtype', async () => {
    const e = await openError(
      'dtype.safetensors',
      handBuilt({ 'unet.w': { dtype: 'F7', shape: [2], data_offsets: [0, 8] } }, f32([1, 2])),
    );
    expect(e.tensor).toBe('unet.w');
    expect(e.message).toMatch(/tensor "unet\.w": unknown dtype "F7"/);
  });

  it('byte span that does not match dtype x shape', async () => {
    const e = await openError(
      'size.safetensors',
      handBuilt({ w: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, f32([1, 2])),
    );
    expect(e.message).toMatch(/tensor "w": dtype F16 with shape \[3\] needs 6 bytes but data_offsets \[0, 8\] span 8/);
  });

  it('overlapping data offsets name both tensors', async () => {
    const e = await openError(
      'overlap.safetensors',
      handBuilt(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        f32([1, 2, 3]),
      ),
    );
    expect(e.message).toMatch(/tensor "b": data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/);
  });

  it('offsets past the data buffer (a truncated file) name the tensor', async () => {
    const full = handBuilt(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, last: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } },
      f32([1, 2, 3, 4, 5, 6]),
    );
    const e = await openError('cut.safetensors', full.subarray(0, full.length - 5));
    expect(e.tensor).toBe('last');
    expect(e.message).toMatch(/run past the end of the data buffer \(19 bytes\): the file is truncated/);
  });

  it('a hole between tensors, and trailing bytes after the last one', async () => {
    const hole = await openError(
      'hole.safetensors',
      handBuilt(
        { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
        f32([1, 2, 3]),
      ),
    );
    expect(hole.message).toMatch(/tensor "b": data_offsets do not cover the buffer: bytes \[4, 8\)/);
    const trailing = await openError('trailing.safetensors', handBuilt(good, f32([1, 2, 3])));
    expect(trailing.message).toMatch(/tensors end at byte 8 but the data buffer has 12 bytes/);
  });

  it('malformed shape, offsets and metadata', async () => {
    const shape = await openError('shape.safetensors', handBuilt({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32([1])));
    expect(shape.message).toMatch(/tensor "w": shape \[-1\] is not a list of non-negative integers/);
    const offs = await openError('offs.safetensors', handBuilt({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32([1])));
    expect(offs.message).toMatch(/tensor "w": data_offsets \[4,0\] is not \[begin, end\]/);
    const meta = await openError('meta.safetensors', handBuilt({ __metadata__: { steps: 300 }, ...good }, f32([1, 2])));
    expect(meta.message).toMatch(/__metadata__ key "steps" is not a string/);
  });

  it('a file that shrinks after opening reports the truncated tensor on read', async () => {
    const p = join(dir, 'shrinks.safetensors');
    await writeSafetensors(p, { w: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) } });
    const r = await openSafetensors(p);
    const h = await open(p, 'r+');
    await h.truncate(100);
    await h.close();
    await expect(r.read('w')).rejects.toThrow(/shrinks\.safetensors: tensor "w": file ended after \d+ of 4000 bytes: truncated/);
    await r.close();
  });

  it('parseSafetensorsHeader validates a header buffer without any file', () => {
    const bytes = new TextEncoder().encode(JSON.stringify(good));
    expect(parseSafetensorsHeader('mem', bytes, 8).entries[0]).toMatchObject({ name: 'w', fileOffset: 8 + bytes.length });
    expect(() => parseSafetensorsHeader('mem', bytes, 12)).toThrow(/mem: data_offsets do not cover the buffer/);
  });
});
