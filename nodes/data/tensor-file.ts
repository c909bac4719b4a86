// One float32 tensor per file in the safetensors layout (8-byte header length, JSON header, data),
// so cache entries can be inspected with any safetensors tool. Written to a temp name, then renamed.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface StoredTensor {
  dims: number[];
  data: Float32Array;
}

const NAME = 'tensor';

export async function writeTensorFile(file: string, tensor: StoredTensor): Promise<void> {
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  if (count !== tensor.data.length) throw new Error(`${file}: tensor of shape [${tensor.dims}] needs ${count} values, got ${tensor.data.length}`);
  let header = JSON.stringify({ [NAME]: { dtype: 'F32', shape: tensor.dims, data_offsets: [0, count * 4] } });
  header += ' '.repeat((8 - (header.length % 8)) % 8); // keeps the data 8-byte aligned
  const bytes = Buffer.alloc(8 + header.length + count * 4);
  bytes.writeBigUInt64LE(BigInt(header.length), 0);
  bytes.write(header, 8, 'utf8');
  Buffer.from(tensor.data.buffer, tensor.data.byteOffset, count * 4).copy(bytes, 8 + header.length);
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, bytes);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function readTensorFile(file: string): Promise<StoredTensor> {
  const bytes = await readFile(file);
  const fail = (why: string): never => {
    throw new Error(`${file}: cannot read cached tensor: ${why}`);
  };
  if (bytes.length < 8) fail('file is truncated');
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (8 + headerLength > bytes.length) fail('file is truncated in the header');
  let entry: { dtype?: string; shape?: number[]; data_offsets?: [number, number] } | undefined;
  try {
    entry = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'))[NAME];
  } catch {
    fail('header is not JSON');
  }
  if (!entry || entry.dtype !== 'F32' || !entry.shape || !entry.data_offsets) return fail('not a float32 tensor file');
  const [start, end] = entry.data_offsets;
  const count = entry.shape.reduce((a, b) => a * b, 1);
  if (end - start !== count * 4 || 8 + headerLength + end !== bytes.length) fail('file is truncated or has the wrong size');
  const data = new Float32Array(count);
  Buffer.from(data.buffer).set(bytes.subarray(8 + headerLength + start, 8 + headerLength + end));
  return { dims: entry.shape, data };
}

/** True when the file exists and its size matches its header (a cheap check for a complete entry). */
export async function isCompleteTensorFile(file: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'r');
    const { size } = await handle.stat();
    if (size < 8) return false;
    const head = Buffer.alloc(8);
    await handle.read(head, 0, 8, 0);
    const headerLength = Number(head.readBigUInt64LE(0));
    if (8 + headerLength > size) return false;
    const header = Buffer.alloc(headerLength);
    await handle.read(header, 0, headerLength, 8);
    const entry = JSON.parse(header.toString('utf8'))[NAME];
    return 8 + headerLength + entry.data_offsets[1] === size;
  } catch {
    return false;
  } finally {
    await handle?.close();
  }
}
