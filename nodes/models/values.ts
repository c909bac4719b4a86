// Constructors for the MODEL, CLIP and VAE socket values (nodes/sockets.ts), shared by Load Model and
// Quantize so a quantised value is built exactly like a loaded one, with its own encoder ids. Each value
// carries its family; every model call goes through the family contract.
import type { WeightSource } from '../../kernels';
import type { ModelFamily } from '../../kernels/families/contract';
import type { ClipValue, ModelSource, ModelValue, QuantScheme, TextEncoderValue, VaeValue } from '../sockets';
import { textEmbeddingEncoder, vaeLatentEncoder } from './encoders';

/** Bytes the weights take once in a graph (reported by the source when it knows, else estimated by the caller). */
export type ByteCount = () => number;

export function modelValue(family: ModelFamily, source: ModelSource, config: unknown, denoiser: WeightSource, quantization: QuantScheme, bytes: ByteCount): ModelValue {
  return Object.freeze({ kind: 'model' as const, family, source, config, denoiser, quantization, byteSize: bytes });
}

export function clipValue(family: ModelFamily, source: ModelSource, config: unknown, encoders: readonly TextEncoderValue[], clipSkip: number, quantization: QuantScheme, bytes: ByteCount): ClipValue {
  const maxSkip = Math.min(...family.textEncoders(config).map((e) => e.maxClipSkip));
  if (!Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > Math.max(1, maxSkip)) {
    throw new Error(`clipSkip: must be 1 to ${Math.max(1, maxSkip)} for this text encoder, got ${clipSkip}`);
  }
  const id = `${source.id}:te:${quantization}`;
  const frozen = Object.freeze(encoders.map((e) => Object.freeze({ ...e })));
  return Object.freeze({
    kind: 'clip' as const, family, source, config, encoders: frozen, clipSkip, quantization,
    textEmbeddingEncoder: textEmbeddingEncoder(family, config, frozen, clipSkip, id),
    byteSize: bytes,
  });
}

export function vaeValue(family: ModelFamily, source: ModelSource, config: unknown, weights: WeightSource, bytes: ByteCount): VaeValue {
  return Object.freeze({ kind: 'vae' as const, family, source, config, weights, latentEncoder: vaeLatentEncoder(family, config, weights, `${source.id}:vae`), byteSize: bytes });
}
