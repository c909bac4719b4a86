// Quantising a loaded model's frozen weights for the Quantize node: wraps a part's WeightSource in
// QuantizedWeights (int8 per channel, NF4/int4 blockwise, fp8 e4m3; dequantised inside the graph) and
// builds the part once symbolically (the family's trace) so every weight is quantised now and the bytes can be reported.
import { Builder, cast, constant, type ExternalBytes, type Tensor, type WeightSource } from '../../kernels';
import { bfloat16ToFloat32, float16ToFloat32 } from '../../kernels/io/dtypes';
import { QuantizedWeights } from '../../kernels/quant/graph-weights';
import { readExternal, type WeightFile } from '../../kernels/nn/weight-file';
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
    if (src.kind === 'const' && src.external && t.dtype === 'float32') return constant(new Float32Array(readExternal(src.external).buffer), shape, 'float32', path);
    // fp16 and bf16 weights (an fp16 file, or Load Model's precision) are widened on the host.
    const half = src.kind === 'op' && src.op === 'cast' && src.inputs.length === 1 ? src.inputs[0] : undefined;
    if (half && (half.dtype === 'float16' || half.dtype === 'bfloat16')) {
      const from = half.source;
      if (from.kind === 'const' && (from.data || from.external)) {
        const bits = from.data ? (from.data as Uint16Array) : new Uint16Array(readExternal(from.external!).buffer);
        return constant(half.dtype === 'float16' ? float16ToFloat32(bits) : bfloat16ToFloat32(bits), shape, 'float32', path);
      }
    }
    return t;
  }
}

export interface QuantizedPart {
  weights: QuantizedWeights;
  /** Bytes of the quantised layers before (float32) and after (packed + scales). */
  fp32Bytes: number;
  quantBytes: number;
  layers: number;
}

/**
 * Quantises every big linear/conv weight of one part of a model (denoiser or a text encoder) now (reads
 * all of them once). With `file`, the packed weights are written there and graphs read them as external
 * data (ORT then holds the only copy).
 */
export function quantizePart(family: ModelFamily, config: unknown, partId: string, source: WeightSource, scheme: KernelScheme, file?: WeightFile): QuantizedPart {
  const part = family.parts(config).find((p) => p.id === partId);
  if (!part) throw new Error(`${family.label} has no part '${partId}'`);
  const weights = new QuantizedWeights(new Float32Constants(source), { scheme, file });
  part.trace(new Builder(weights));
  const s = weights.summary();
  return {
    weights,
    fp32Bytes: s.linear.fp32Bytes + s.conv.fp32Bytes,
    quantBytes: s.linear.quantBytes + s.conv.quantBytes,
    layers: s.linear.layers + s.conv.layers,
  };
}
