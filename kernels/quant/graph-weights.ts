// A WeightSource that quantises a model's big linear and conv weights on first request and hands the
// model dequantising subgraphs instead of float32 constants; everything else passes through. It keeps
// a per-layer record (kind, scheme, bytes) for the Quantize node's report.
import type { Tensor } from '../tensor';
import type { WeightSource, WeightUse } from '../nn/weights';
import { quantizeWeight } from './index';
import { dequantizeInGraph, type StoredQuantized } from './dequant';
import { bytesOf, type WeightFile } from '../nn/weight-file';
import type { QuantizedWeight, QuantizeOptions, QuantScheme } from './types';

export interface QuantizedWeightsOptions extends QuantizeOptions {
  scheme: QuantScheme;
  /** Weights with fewer elements stay float32 (small layers save little and cost accuracy). Default 4096. */
  minElements?: number;
  /** Extra say over which weights are quantised (path and shape); default: every 2-D / 4-D `.weight`. */
  filter?: (path: string, shape: readonly number[]) => boolean;
  /** Keep each float32 original beside its quantised form, for `measureQuantization`. Default false. */
  keepOriginals?: boolean;
  /**
   * Write the packed bytes and scales here and hand them to graphs as external data, instead of
   * keeping them in JS memory beside ORT's copy (not with keepOriginals: the report reads them).
   */
  file?: WeightFile;
}

export interface QuantizedLayer {
  path: string;
  /** `linear` for [out, in] weights, `conv` for [out, in, kh, kw] (quantised as [out, in·kh·kw]). */
  kind: 'linear' | 'conv';
  shape: number[];
  fp32Bytes: number;
  quantBytes: number;
  quantized: QuantizedWeight;
  original?: Float32Array;
  /** Where the packed bytes and scales were written (options.file); `quantized` then holds none. */
  stored?: StoredQuantized;
}

export class QuantizedWeights implements WeightSource {
  readonly layers = new Map<string, QuantizedLayer>();
  constructor(readonly inner: WeightSource, readonly options: QuantizedWeightsOptions) {}

  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    const known = this.layers.get(path);
    if (known) return dequantizeInGraph(known.quantized, path, shape, use?.after, known.stored);
    const t = this.inner.get(path, shape);
    if (!this.wants(path, shape)) return t;
    const src = t.source;
    // Only in-memory float32 constants can be quantised here (external-data weights are quantised on load).
    if (src.kind !== 'const' || !src.data || t.dtype !== 'float32') return t;
    const rows = shape[0];
    const cols = t.size / rows;
    let quantized = quantizeWeight(src.data as Float32Array, [rows, cols], this.options.scheme, this.options);
    const file = this.options.keepOriginals ? undefined : this.options.file;
    const stored = file && { packed: file.append(bytesOf(quantized.packed)), scales: file.append(bytesOf(quantized.scales)) };
    // Empty arrays, not views: a view would keep the packed buffer alive.
    if (stored) quantized = { ...quantized, packed: quantized.packed instanceof Int8Array ? new Int8Array(0) : new Uint8Array(0), scales: new Float32Array(0) };
    this.layers.set(path, { path, kind: shape.length === 2 ? 'linear' : 'conv', shape: [...shape], fp32Bytes: t.size * 4, quantBytes: quantized.bytes, quantized,
      original: this.options.keepOriginals ? (src.data as Float32Array) : undefined, stored });
    return dequantizeInGraph(quantized, path, shape, use?.after, stored);
  }

  private wants(path: string, shape: readonly number[]): boolean {
    if (!path.endsWith('.weight') || (shape.length !== 2 && shape.length !== 4)) return false;
    if (shape.reduce((a, b) => a * b, 1) < (this.options.minElements ?? 4096)) return false;
    return this.options.filter ? this.options.filter(path, shape) : true;
  }

  /** Bytes of the quantised layers before and after, per layer kind. */
  summary(): Record<'linear' | 'conv', { layers: number; fp32Bytes: number; quantBytes: number; savedBytes: number }> {
    const out = { linear: { layers: 0, fp32Bytes: 0, quantBytes: 0, savedBytes: 0 }, conv: { layers: 0, fp32Bytes: 0, quantBytes: 0, savedBytes: 0 } };
    for (const l of this.layers.values()) {
      const s = out[l.kind];
      s.layers++;
      s.fp32Bytes += l.fp32Bytes;
      s.quantBytes += l.quantBytes;
      s.savedBytes += l.fp32Bytes - l.quantBytes;
    }
    return out;
  }
}
