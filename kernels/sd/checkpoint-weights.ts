// A WeightSource over tensors of safetensors files, read lazily one tensor at a time when the model
// asks for it (a 4 GB checkpoint never sits whole in a JS buffer). fp32 tensors can stay on disk as ONNX
// external data; fp16 stays fp16 inside the graph behind a cast; bf16 (which cannot cross into ORT)
// is widened to fp32 on read.
import { openSync, readSync, closeSync } from 'node:fs';
import { constant, externalConstant, type Tensor } from '../tensor';
import { cast } from '../ops/elementwise';
import { bfloat16ToFloat32 } from '../io/dtypes';
import type { TensorEntry } from '../io/safetensors';
import type { WeightSource } from '../nn/weights';

/** Where one model tensor lives: a file, its entry, and the key it has there (for messages). */
export interface TensorLocation { file: string; key: string; entry: TensorEntry }

export interface CheckpointWeightsOptions {
  /**
   * Keep fp32/fp16 tensors in their files as ONNX external data: ORT reads them from the checkpoint
   * itself, so nothing is read into JS. Graphs using them compile with `externalDir`
   * (kernels/compile.ts hard-links the checkpoint beside the model).
   */
  external?: boolean;
}

export class CheckpointWeights implements WeightSource {
  readonly used = new Set<string>();
  private fds = new Map<string, number>();

  constructor(readonly tensors: Map<string, TensorLocation>, readonly label: string, readonly options: CheckpointWeightsOptions = {}) {}

  has(path: string) { return this.tensors.has(path); }

  get(path: string, shape: readonly number[]): Tensor {
    const loc = this.tensors.get(path);
    if (!loc) throw new Error(`${this.label}: missing tensor '${path}' (expected [${shape.join(',')}])`);
    const n = shape.reduce((a, b) => a * b, 1);
    const stored = loc.entry.shape.reduce((a, b) => a * b, 1);
    // Element counts must agree; the stored shape may differ only by the ldm 1×1-conv form of a linear.
    if (n !== stored || !sameModuloTrailingOnes(loc.entry.shape, shape)) {
      throw new Error(`${loc.file}: tensor '${loc.key}' has shape [${loc.entry.shape.join(',')}], expected [${shape.join(',')}]`);
    }
    this.used.add(path);
    const { dtype } = loc.entry;
    if (this.options.external && (dtype === 'F32' || dtype === 'F16')) {
      const t = externalConstant({ path: loc.file, offset: loc.entry.fileOffset, length: loc.entry.byteLength },
        shape, dtype === 'F32' ? 'float32' : 'float16', path);
      return dtype === 'F32' ? t : cast(t, 'float32');
    }
    const bytes = this.read(loc);
    switch (dtype) {
      case 'F32': return constant(new Float32Array(bytes.buffer, 0, n), shape, 'float32', path);
      case 'F16': return cast(constant(new Uint16Array(bytes.buffer, 0, n), shape, 'float16', path), 'float32');
      case 'BF16': return constant(bfloat16ToFloat32(new Uint16Array(bytes.buffer, 0, n)), shape, 'float32', path);
      default: throw new Error(`${loc.file}: tensor '${loc.key}' is ${dtype}; SD weights must be F32, F16 or BF16`);
    }
  }

  /** Reads one tensor's bytes (synchronously: model code asks for weights while building the graph). */
  private read(loc: TensorLocation): Uint8Array {
    let fd = this.fds.get(loc.file);
    if (fd === undefined) { fd = openSync(loc.file, 'r'); this.fds.set(loc.file, fd); }
    const out = new Uint8Array(new ArrayBuffer(loc.entry.byteLength));
    let done = 0;
    while (done < out.length) {
      const got = readSync(fd, out, done, out.length - done, loc.entry.fileOffset + done);
      if (got === 0) throw new Error(`${loc.file}: tensor '${loc.key}': file ended after ${done} of ${out.length} bytes (truncated)`);
      done += got;
    }
    return out;
  }

  /** Tensors of the source the model never asked for. */
  unused(): string[] { return [...this.tensors.keys()].filter((k) => !this.used.has(k)); }

  /** Closes the file handles used for reads (the source can still be used; it reopens on demand). */
  close() { for (const fd of this.fds.values()) closeSync(fd); this.fds.clear(); }
}

function sameModuloTrailingOnes(a: readonly number[], b: readonly number[]) {
  const strip = (s: readonly number[]) => { const r = [...s]; while (r.length > 2 && r[r.length - 1] === 1) r.pop(); return r; };
  const x = strip(a), y = strip(b);
  return x.length === y.length && x.every((d, i) => d === y[i]);
}
