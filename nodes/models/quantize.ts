// Quantising a loaded model's frozen weights for the Quantize node: wraps a part's WeightSource in
// QuantizedWeights (int8 per channel, NF4/int4 blockwise, fp8 e4m3; dequantised inside the graph) and
// builds the part once symbolically (the family's trace) so every weight is quantised now and the bytes can be reported.
import { closeSync, openSync, readSync } from 'node:fs';
import { Builder, cast, constant, type ExternalBytes, type Tensor, type WeightSource } from '../../kernels';
import { float16ToFloat32 } from '../../kernels/io/dtypes';
import { QuantizedWeights } from '../../kernels/quant/graph-weights';
import type { QuantScheme as KernelScheme } from '../../kernels/quant';
import type { ModelFamily } from '../../kernels/families/contract';

/**
 * Hands out fp16 checkpoint tensors as float32 constants (widened on the host) so QuantizedWeights,
 * which quantises in-memory float32 constants, also quantises fp16 files.
 */
class Float32Constants implements WeightSource {
  constructor(readonly inner: WeightSource) {}
  get(path: string, shape: readonly number[]): Tensor {
    const t = this.inner.get(path, shape);
    const src = t.source;
    // Weights left in the checkpoint file (external data) are read now: quantising needs their values.
    if (src.kind === 'const' && src.external && t.dtype === 'float32') return constant(new Float32Array(readBytes(src.external).buffer), shape, 'float32', path);
    if (src.kind === 'op' && src.op === 'cast' && src.inputs.length === 1 && src.inputs[0].dtype === 'float16') {
      const from = src.inputs[0].source;
      if (from.kind === 'const' && (from.data || from.external)) {
        const half = from.data ? (from.data as Uint16Array) : new Uint16Array(readBytes(from.external!).buffer);
        return constant(float16ToFloat32(half), shape, 'float32', path);
      }
    }
    return t;
  }
}

function readBytes(ext: ExternalBytes): Uint8Array {
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

export interface QuantizedPart {
  weights: QuantizedWeights;
  /** Bytes of the quantised layers before (float32) and after (packed + scales). */
  fp32Bytes: number;
  quantBytes: number;
  layers: number;
}

/** Quantises every big linear/conv weight of one part of a model (denoiser or a text encoder) now (reads all of them once). */
export function quantizePart(family: ModelFamily, config: unknown, partId: string, source: WeightSource, scheme: KernelScheme): QuantizedPart {
  const part = family.parts(config).find((p) => p.id === partId);
  if (!part) throw new Error(`${family.label} has no part '${partId}'`);
  const weights = new QuantizedWeights(new Float32Constants(source), { scheme });
  part.trace(new Builder(weights));
  const s = weights.summary();
  return {
    weights,
    fp32Bytes: s.linear.fp32Bytes + s.conv.fp32Bytes,
    quantBytes: s.linear.quantBytes + s.conv.quantBytes,
    layers: s.linear.layers + s.conv.layers,
  };
}
