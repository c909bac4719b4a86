// Constructors for the MODEL, CLIP and VAE socket values (nodes/sockets.ts), shared by Load Model and
// Quantize so a quantised value is built exactly like a loaded one, with its own encoder ids.
import type { WeightSource } from '../../kernels';
import type { SdConfig } from '../../kernels/sd/config';
import type { ClipTokenizer } from '../../kernels/sd/tokenizer';
import type { ClipValue, ModelSource, ModelValue, QuantScheme, VaeValue } from '../sockets';
import { clipTextEmbeddingEncoder, vaeLatentEncoder } from './encoders';

/** Bytes the weights take once in a graph (reported by the source when it knows, else estimated by the caller). */
export type ByteCount = () => number;

export function modelValue(source: ModelSource, config: SdConfig, unet: WeightSource, quantization: QuantScheme, bytes: ByteCount): ModelValue {
  return Object.freeze({ kind: 'model' as const, source, config, unet, quantization, byteSize: bytes });
}

export function clipValue(source: ModelSource, config: SdConfig, weights: WeightSource, tokenizer: ClipTokenizer, clipSkip: number, quantization: QuantScheme, bytes: ByteCount): ClipValue {
  if (!Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > config.text.numLayers) {
    throw new Error(`clipSkip: must be 1 to ${config.text.numLayers} for this text encoder, got ${clipSkip}`);
  }
  const id = `${source.id}:te:${quantization}`;
  return Object.freeze({
    kind: 'clip' as const, source, config, weights, tokenizer, clipSkip, quantization,
    textEmbeddingEncoder: clipTextEmbeddingEncoder(weights, tokenizer, config, clipSkip, id),
    byteSize: bytes,
  });
}

export function vaeValue(source: ModelSource, config: SdConfig, weights: WeightSource, bytes: ByteCount): VaeValue {
  return Object.freeze({ kind: 'vae' as const, source, config, weights, latentEncoder: vaeLatentEncoder(weights, config, `${source.id}:vae`), byteSize: bytes });
}
