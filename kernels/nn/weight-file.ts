// A scratch file for frozen weights made on the host (narrowed to bf16/fp16, or quantised): each is
// written once and handed to graphs as external data, so ORT reads it from disk into its own memory
// and the process does not also keep a JS copy for as long as the model lives (measured by bench:sd15).
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExternalBytes } from '../tensor';

// Offsets aligned to pages: ORT may map external data, which needs aligned offsets.
const ALIGN = 4096;
const open = new Set<WeightFile>();
let cleanupHooked = false;

export class WeightFile {
  readonly path: string;
  private fd: number | undefined;
  private end = 0;
  private readonly dir: string;

  /** A new file in a new folder under `parent` (default: the OS temp folder); removed at process exit or `remove()`. */
  constructor(parent = tmpdir(), label = 'weights') {
    mkdirSync(parent, { recursive: true });
    this.dir = mkdtempSync(join(parent, 'loragraph-weights-'));
    this.path = join(this.dir, `${label.replace(/[^\w.-]/g, '_')}.bin`);
    this.fd = openSync(this.path, 'w');
    open.add(this);
    if (!cleanupHooked) { cleanupHooked = true; process.once('exit', () => { for (const f of open) f.remove(); }); }
  }

  /** Writes `bytes` and returns where they are (for `externalConstant`). */
  append(bytes: Uint8Array): ExternalBytes {
    if (this.fd === undefined) throw new Error(`${this.path}: the weight file was removed`);
    const offset = Math.ceil(this.end / ALIGN) * ALIGN;
    for (let done = 0; done < bytes.byteLength;) done += writeSync(this.fd, bytes, done, bytes.byteLength - done, offset + done);
    this.end = offset + bytes.byteLength;
    return { path: this.path, offset, length: bytes.byteLength };
  }

  get bytes() { return this.end; }

  remove() {
    if (this.fd !== undefined) { closeSync(this.fd); this.fd = undefined; }
    rmSync(this.dir, { recursive: true, force: true });
    open.delete(this);
  }
}

/** The bytes of a typed array (no copy). */
export const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Reads external bytes (a tensor left in its checkpoint file) into memory. */
export function readExternal(ext: ExternalBytes): Uint8Array {
  const out = new Uint8Array(ext.length);
  const fd = openSync(ext.path, 'r');
  try {
    for (let done = 0; done < ext.length;) {
      const n = readSync(fd, out, done, ext.length - done, ext.offset + done);
      if (n === 0) throw new Error(`${ext.path}: file ends inside a tensor (offset ${ext.offset + done})`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
