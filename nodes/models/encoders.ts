// What the Dataset node's caches call: the VAE encoder (pixels → UNet-space latents) and the CLIP text
// encoder (captions → hidden states, clip skip applied), each an ORT session compiled once per shape.
import { Builder, compileGraph, input, mul, type WeightSource } from '../../kernels';
import { vaeScale, type SdConfig } from '../../kernels/sd/config';
import { vaeEncode } from '../../kernels/sd/vae';
import { clipTextEncoder } from '../../kernels/sd/clip-text';
import type { ClipTokenizer } from '../../kernels/sd/tokenizer';
import type { LatentEncoder, StoredTensor, TextEmbeddingEncoder } from '../data/cache';
import { cachedSession } from './sessions';

/**
 * Latents for training: the mean of the VAE's latent distribution times the scaling factor (no sampling,
 * so the cache is deterministic and the same image always gives the same latent). One image per run.
 */
export function vaeLatentEncoder(weights: WeightSource, config: SdConfig, id: string): LatentEncoder {
  const scale = vaeScale(config.vae);
  return {
    id: `${id}:vae-mean:${config.vae.scalingFactor}`,
    async encode(pixels: StoredTensor): Promise<StoredTensor[]> {
      const [n, c, h, w] = pixels.dims;
      if (pixels.dims.length !== 4 || c !== config.vae.inChannels) throw new Error(`VAE encode: expected pixels [B, ${config.vae.inChannels}, H, W], got [${pixels.dims}]`);
      if (h % scale || w % scale) throw new Error(`VAE encode: ${w}×${h} is not a multiple of ${scale} (the VAE's downscale)`);
      const session = await cachedSession(weights, `vae-encode:${h}x${w}`, () => {
        const x = input('pixels', [1, c, h, w]);
        const { mean } = vaeEncode(new Builder(weights), config.vae, x);
        return compileGraph([x], { latent: mul(mean, config.vae.scalingFactor) }, { name: 'sd_vae_encoder' });
      });
      const per = c * h * w;
      const out: StoredTensor[] = [];
      for (let i = 0; i < n; i++) {
        const r = await session.run({ pixels: { dtype: 'float32', shape: [1, c, h, w], data: pixels.data.slice(i * per, (i + 1) * per) } });
        out.push({ dims: r.latent.shape.slice(1), data: r.latent.data as Float32Array });
      }
      return out;
    },
  };
}

/** Rows per text-encoder run; shorter chunks are padded with empty captions so one session serves all. */
const TEXT_BATCH = 8;

/** Token ids [n, L] as int64 for a list of prompts. */
export function tokenIds(tokenizer: ClipTokenizer, prompts: readonly string[], length: number): BigInt64Array {
  const ids = new BigInt64Array(prompts.length * length);
  prompts.forEach((p, r) => {
    const tok = tokenizer.tokenize(p, { maxLength: length });
    for (let i = 0; i < length; i++) ids[r * length + i] = BigInt(tok.ids[i]);
  });
  return ids;
}

/** Hidden states [L, D] per caption, from the layer clip skip selects (final layer norm applied, as kohya). */
export function clipTextEmbeddingEncoder(weights: WeightSource, tokenizer: ClipTokenizer, config: SdConfig, clipSkip: number, id: string): TextEmbeddingEncoder {
  const L = config.text.maxPositions;
  return {
    id: `${id}:clip-skip-${clipSkip}`,
    async encode(captions: string[]): Promise<StoredTensor[]> {
      const session = await cachedSession(weights, `text-encode:${TEXT_BATCH}:${clipSkip}`, () => {
        const ids = input('ids', [TEXT_BATCH, L], 'int64');
        const { hidden } = clipTextEncoder(new Builder(weights), config.text, ids, { clipSkip });
        return compileGraph([ids], { hidden }, { name: 'sd_text_encoder' });
      });
      const out: StoredTensor[] = [];
      for (let i = 0; i < captions.length; i += TEXT_BATCH) {
        const chunk = captions.slice(i, i + TEXT_BATCH);
        const rows = [...chunk, ...Array<string>(TEXT_BATCH - chunk.length).fill('')];
        const r = await session.run({ ids: { dtype: 'int64', shape: [TEXT_BATCH, L], data: tokenIds(tokenizer, rows, L) } });
        const hidden = r.hidden.data as Float32Array;
        const per = L * config.text.hiddenSize;
        chunk.forEach((_, k) => out.push({ dims: [L, config.text.hiddenSize], data: hidden.slice(k * per, (k + 1) * per) }));
      }
      return out;
    },
  };
}
