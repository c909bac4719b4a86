// Quantising a loaded model's frozen weights for the Quantize node: wraps a part's WeightSource in
// QuantizedWeights (int8 per channel, NF4/int4 blockwise, fp8 e4m3; dequantised inside the graph) and
// builds the part once symbolically so every weight is quantised now and the bytes can be reported.
import { closeSync, openSync, readSync } from 'node:fs';
import { Builder, cast, constant, input, type ExternalBytes, type Tensor, type WeightSource } from '../../kernels';
import { float16ToFloat32 } from '../../kernels/io/dtypes';
import { QuantizedWeights } from '../../kernels/quant/graph-weights';
import type { QuantScheme as KernelScheme } from '../../kernels/quant';
import type { SdConfig } from '../../kernels/sd/config';
import { unet } from '../../kernels/sd/unet';
import { clipTextEncoder } from '../../kernels/sd/clip-text';

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

function traceUnet(w: WeightSource, cfg: SdConfig) {
  const down = 2 ** (cfg.unet.blockOutChannels.length - 1);
  unet(new Builder(w), cfg.unet, {
    sample: input('sample', [1, cfg.unet.inChannels, down, down]),
    timestep: input('timestep', [1]),
    context: input('context', [1, cfg.text.maxPositions, cfg.unet.crossAttentionDim]),
  });
}

function traceTextEncoder(w: WeightSource, cfg: SdConfig) {
  clipTextEncoder(new Builder(w), cfg.text, input('ids', [1, cfg.text.maxPositions], 'int64'));
}

/** Quantises every big linear/conv weight of the UNet or text encoder now (reads all of them once). */
export function quantizePart(part: 'unet' | 'text_encoder', source: WeightSource, cfg: SdConfig, scheme: KernelScheme): QuantizedPart {
  const weights = new QuantizedWeights(new Float32Constants(source), { scheme });
  if (part === 'unet') traceUnet(weights, cfg);
  else traceTextEncoder(weights, cfg);
  const s = weights.summary();
  return {
    weights,
    fp32Bytes: s.linear.fp32Bytes + s.conv.fp32Bytes,
    quantBytes: s.linear.quantBytes + s.conv.quantBytes,
    layers: s.linear.layers + s.conv.layers,
  };
}
