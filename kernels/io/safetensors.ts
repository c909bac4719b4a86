// safetensors files: a validated header index with lazy per-tensor reads by byte offset (a 6 GB
// checkpoint is never read whole), and a streamed writer that renames a finished temp file into place.
// Format: u64 little-endian header length N, N bytes of JSON, then the data buffer.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  float32ToFloat8E4M3,
  float8E4M3ToFloat32,
  float8E5M2ToFloat32,
} from './dtypes';

export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** The typed array that holds each dtype's raw bits (fp16/bf16 as Uint16 bits, fp8 as Uint8 bits). */
export type RawArray =
  | Float64Array
  | Float32Array
  | Uint16Array
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array;

export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: RawArray;
}

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /** [begin, end) relative to the start of the data buffer, as stored in the header. */
  dataOffsets: readonly [number, number];
  /** Absolute position of the first byte in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  /** Entries in data-buffer order. */
  entries: TensorEntry[];
}

/** A problem with a safetensors file; `file` and (when it concerns one tensor) `tensor` say where. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly tensor: string | undefined,
    problem: string,
  ) {
    super(`${file}${tensor !== undefined ? `: tensor "${tensor}"` : ''}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

/** The reference implementation refuses headers above 100 MB; so do we, before allocating. */
const MAX_HEADER_BYTES = 100_000_000;
const IS_LITTLE_ENDIAN = endianness() === 'LE';

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Validates a header (the JSON bytes) against a data buffer of `dataByteLength` bytes. Pure, so
 * corrupt headers can be tested without files. Every error names `file` and, where one is at fault,
 * the tensor.
 */
export function parseSafetensorsHeader(
  file: string,
  headerBytes: Uint8Array,
  dataByteLength: number,
  headerByteLength = headerBytes.length,
): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new SafetensorsError(file, undefined, `bad JSON header: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(file, undefined, 'bad header: expected a JSON object of tensors');
  }
  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  const dataStart = 8 + headerByteLength;
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SafetensorsError(file, undefined, '__metadata__ must be an object of strings');
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(file, undefined, `__metadata__ key "${k}" is not a string`);
        }
        metadata[k] = v;
      }
      continue;
    }
    const fail = (problem: string): never => {
      throw new SafetensorsError(file, name, problem);
    };
    if (typeof value !== 'object' || value === null) fail('header entry is not an object');
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isDtype(dtype)) fail(`unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    const dt = dtype as SafetensorsDtype;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const expected = elementCount(dims) * DTYPE_BYTES[dt];
    if (end - begin !== expected) {
      fail(
        `dtype ${dt} with shape [${dims.join(', ')}] needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    if (end > dataByteLength) {
      fail(
        `data_offsets [${begin}, ${end}] run past the end of the data buffer (${dataByteLength} bytes): the file is truncated or the offsets are wrong`,
      );
    }
    entries.push({
      name,
      dtype: dt,
      shape: dims,
      dataOffsets: [begin, end],
      fileOffset: dataStart + begin,
      byteLength: end - begin,
    });
  }
  // The data buffer must be covered exactly: sorted by begin, each tensor starts where the last ended.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  let previous: TensorEntry | undefined;
  for (const e of entries) {
    const [begin, end] = e.dataOffsets;
    if (begin < cursor) {
      throw new SafetensorsError(
        file,
        e.name,
        `data_offsets [${begin}, ${end}] overlap tensor "${previous!.name}" [${previous!.dataOffsets[0]}, ${previous!.dataOffsets[1]}]`,
      );
    }
    if (begin > cursor) {
      throw new SafetensorsError(
        file,
        e.name,
        `data_offsets do not cover the buffer: bytes [${cursor}, ${begin}) before this tensor belong to no tensor`,
      );
    }
    cursor = end;
    if (end > begin) previous = e;
  }
  if (cursor !== dataByteLength) {
    throw new SafetensorsError(
      file,
      undefined,
      `data_offsets do not cover the buffer: tensors end at byte ${cursor} but the data buffer has ${dataByteLength} bytes`,
    );
  }
  return { metadata, entries };
}

/** An open safetensors file: the header index plus reads of single tensors by offset. */
export class SafetensorsReader {
  private readonly byName: Map<string, TensorEntry>;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly header: SafetensorsHeader,
  ) {
    this.byName = new Map(header.entries.map((e) => [e.name, e]));
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Tensor names in data-buffer order. */
  names(): string[] {
    return this.header.entries.map((e) => e.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.byName.get(name);
    if (!e) throw new SafetensorsError(this.path, name, 'no such tensor in this file');
    return e;
  }

  /** The tensor as stored (fp16/bf16 as Uint16 bits, fp8 as Uint8 bits, I64 as BigInt64Array). */
  async readRaw(name: string): Promise<RawTensor> {
    const e = this.entry(name);
    const bytes = new Uint8Array(new ArrayBuffer(e.byteLength));
    let done = 0;
    while (done < e.byteLength) {
      const { bytesRead } = await this.handle.read(bytes, done, e.byteLength - done, e.fileOffset + done);
      if (bytesRead === 0) {
        throw new SafetensorsError(this.path, name, `file ended after ${done} of ${e.byteLength} bytes: truncated`);
      }
      done += bytesRead;
    }
    return { dtype: e.dtype, shape: [...e.shape], data: viewAs(e.dtype, bytes.buffer) };
  }

  /** The tensor converted to float32 (integers and bools by value). */
  async read(name: string): Promise<Float32Array> {
    const raw = await this.readRaw(name);
    return toFloat32(raw);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

function viewAs(dtype: SafetensorsDtype, buf: ArrayBuffer): RawArray {
  switch (dtype) {
    case 'F64':
      return new Float64Array(buf);
    case 'F32':
      return new Float32Array(buf);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'I16':
      return new Int16Array(buf);
    case 'I8':
      return new Int8Array(buf);
    case 'F8_E4M3':
    case 'F8_E5M2':
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
  }
}

/** Converts a raw tensor's data to float32 by value. */
export function toFloat32(raw: RawTensor): Float32Array {
  const { dtype, data } = raw;
  switch (dtype) {
    case 'F32':
      return data as Float32Array;
    case 'F16':
      return float16ToFloat32(data as Uint16Array);
    case 'BF16':
      return bfloat16ToFloat32(data as Uint16Array);
    case 'F8_E4M3':
      return float8E4M3ToFloat32(data as Uint8Array);
    case 'F8_E5M2':
      return float8E5M2ToFloat32(data as Uint8Array);
    case 'I64': {
      const src = data as BigInt64Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    default:
      return Float32Array.from(data as Exclude<RawArray, BigInt64Array>);
  }
}

/** Opens `path` and validates its header; reads no tensor data. Close the reader when done. */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  if (!IS_LITTLE_ENDIAN) throw new SafetensorsError(path, undefined, 'big-endian hosts are not supported');
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size < 8) {
      throw new SafetensorsError(path, undefined, `truncated: ${size} bytes, too short for the 8-byte header length`);
    }
    const lenBuf = Buffer.alloc(8);
    await readExactly(handle, lenBuf, 0, path);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(size - 8)) {
      throw new SafetensorsError(path, undefined, `header length ${n} runs beyond the file (${size} bytes): truncated or not a safetensors file`);
    }
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(path, undefined, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    }
    const headerLength = Number(n);
    const headerBytes = Buffer.alloc(headerLength);
    await readExactly(handle, headerBytes, 8, path);
    const header = parseSafetensorsHeader(path, headerBytes, size - 8 - headerLength, headerLength);
    return new SafetensorsReader(path, handle, header);
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/**
 * Reads every tensor of a small file (a LoRA, an optimizer state) at once. For checkpoints use
 * `openSafetensors` and read tensors one by one.
 */
export async function loadSafetensors(path: string): Promise<{ metadata: Record<string, string>; tensors: Map<string, RawTensor> }> {
  const reader = await openSafetensors(path);
  try {
    const tensors = new Map<string, RawTensor>();
    for (const name of reader.names()) tensors.set(name, await reader.readRaw(name));
    return { metadata: reader.metadata, tensors };
  } finally {
    await reader.close();
  }
}

async function readExactly(handle: FileHandle, buf: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError(path, undefined, 'truncated while reading the header');
    done += bytesRead;
  }
}

// ---------------------------------------------------------------- writing

/**
 * A tensor to write. `data` is either the raw array for `dtype` (see RawArray) or, for F32/F16/BF16/
 * F8_E4M3, a Float32Array converted while streaming. It may be a function so big files can produce
 * one tensor at a time instead of holding all of them.
 */
export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: RawArray | (() => RawArray | Promise<RawArray>);
}

type RawArrayConstructor =
  | Float64ArrayConstructor
  | Float32ArrayConstructor
  | Uint16ArrayConstructor
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor;
const RAW_ARRAY_FOR: Record<SafetensorsDtype, RawArrayConstructor> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array, // a Node Buffer is a Uint8Array too
  BOOL: Uint8Array,
};
const CONVERTIBLE_FROM_F32: ReadonlySet<SafetensorsDtype> = new Set(['F16', 'BF16', 'F8_E4M3']);
/** Elements converted per write when narrowing from float32: bounds the extra memory to a few MB. */
const CONVERT_CHUNK = 1 << 20;

/** What writeSafetensors puts in the header, and the data size, for tensors given by dtype and shape. */
function layoutHeader<T extends { dtype: SafetensorsDtype; shape: readonly number[] }>(list: [string, T][], metadata: Record<string, string>) {
  const sorted = [...list].sort(([a, ta], [b, tb]) => DTYPE_BYTES[tb.dtype] - DTYPE_BYTES[ta.dtype] || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of sorted) {
    const bytes = elementCount(t.shape) * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  return { header, sorted, dataBytes: offset };
}

/** The exact size of the file writeSafetensors would write for these tensors and metadata. */
export function safetensorsFileBytes(tensors: Iterable<[string, { dtype: SafetensorsDtype; shape: readonly number[] }]>, metadata: Record<string, string> = {}): number {
  const { header, dataBytes } = layoutHeader([...tensors], metadata);
  return 8 + Math.ceil(Buffer.byteLength(JSON.stringify(header), 'utf8') / 8) * 8 + dataBytes;
}

/**
 * Writes a safetensors file: header padded with spaces to a multiple of 8 bytes, tensors ordered by
 * element size (largest first, which keeps every tensor aligned for memory-mapping readers) then by
 * name. Data is streamed to `<path>.tmp-*` and renamed into place only when complete.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | Iterable<[string, TensorToWrite]>,
  metadata: Record<string, string> = {},
): Promise<void> {
  if (!IS_LITTLE_ENDIAN) throw new SafetensorsError(path, undefined, 'big-endian hosts are not supported');
  const list = Symbol.iterator in tensors ? [...(tensors as Iterable<[string, TensorToWrite]>)] : Object.entries(tensors);
  const seen = new Set<string>();
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError(path, name, 'the name "__metadata__" is reserved');
    if (seen.has(name)) throw new SafetensorsError(path, name, 'tensor name given twice');
    seen.add(name);
    if (!isDtype(t.dtype)) throw new SafetensorsError(path, name, `unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(path, name, `shape [${t.shape.join(', ')}] is not a list of non-negative integers`);
    }
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(path, undefined, `metadata "${k}" must be a string`);
  }
  const { header, sorted, dataBytes: offset } = layoutHeader(list, metadata);
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));

  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const handle = await open(tmp, 'w');
  let ok = false;
  try {
    await writeAll(handle, prefix);
    await writeAll(handle, json);
    for (const [name, t] of sorted) {
      const data = typeof t.data === 'function' ? await t.data() : t.data;
      await writeTensorData(handle, path, name, t, data);
    }
    await handle.sync();
    ok = true;
  } finally {
    await handle.close();
    if (!ok) await rm(tmp, { force: true });
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function writeTensorData(
  handle: FileHandle,
  path: string,
  name: string,
  t: TensorToWrite,
  data: RawArray,
): Promise<void> {
  const n = elementCount(t.shape);
  if (data.length !== n) {
    throw new SafetensorsError(path, name, `shape [${t.shape.join(', ')}] has ${n} elements but the data has ${data.length}`);
  }
  const kind = data.constructor.name;
  if (data instanceof RAW_ARRAY_FOR[t.dtype]) {
    if (t.dtype === 'BOOL' && (data as Uint8Array).some((v) => v > 1)) {
      throw new SafetensorsError(path, name, 'BOOL data must hold only 0 and 1');
    }
    await writeAll(handle, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return;
  }
  if (data instanceof Float32Array && CONVERTIBLE_FROM_F32.has(t.dtype)) {
    const src = data;
    for (let start = 0; start < n; start += CONVERT_CHUNK) {
      const part = src.subarray(start, Math.min(n, start + CONVERT_CHUNK));
      const converted =
        t.dtype === 'F16' ? float32ToFloat16(part) : t.dtype === 'BF16' ? float32ToBfloat16(part) : float32ToFloat8E4M3(part);
      await writeAll(handle, new Uint8Array(converted.buffer, converted.byteOffset, converted.byteLength));
    }
    return;
  }
  const raw = RAW_ARRAY_FOR[t.dtype].name;
  const accepted = CONVERTIBLE_FROM_F32.has(t.dtype) ? `${raw} or Float32Array` : raw;
  throw new SafetensorsError(path, name, `dtype ${t.dtype} needs ${accepted} data, got ${kind}`);
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

