// What the Train node's caches call: the family's VAE encoder (pixels → normalised latents) and its text
// encoders (captions → the text conditioning, clip skip applied), each an ORT session compiled once per
// shape. A family with several text outputs (SDXL: hidden states and a pooled vector) stores them packed
// in one tensor per caption; `unpackTextConditioning` splits a batch of them back into named feeds.
import { Builder, compileGraph, input, type HostTensor, type WeightSource } from '../../kernels';
import type { ConditioningInput, ModelFamily } from '../../kernels/families/contract';
import { idsInputName } from '../../kernels/families/training-graph';
import { tokenIdTensor } from '../../kernels/families/pipeline';
import type { LatentEncoder, StoredTensor, TextEmbeddingEncoder } from '../data/cache';
import type { TextEncoderValue } from '../sockets';
import { cachedSession } from './sessions';

/**
 * Latents for training: the mean of the VAE's latent distribution, normalised as the family's latent
 * format says (no sampling, so the cache is deterministic and the same image always gives the same latent).
 * One image per run.
 */
export function vaeLatentEncoder(family: ModelFamily, config: unknown, weights: WeightSource, id: string): LatentEncoder {
  const format = family.latentFormat(config);
  const scale = format.spatialCompression;
  return {
    id: `${id}:vae-mean:${format.scale}${format.shift ? `:${format.shift}` : ''}`,
    // Video VAEs (time compression > 1) take clips [B, 3, F, H, W].
    supportsFrames: format.temporalCompression > 1,
    async encode(pixels: StoredTensor): Promise<StoredTensor[]> {
      const video = pixels.dims.length === 5 && format.temporalCompression > 1;
      const [n, c] = pixels.dims;
      const [h, w] = pixels.dims.slice(-2);
      if ((pixels.dims.length !== 4 && !video) || c !== 3) throw new Error(`VAE encode: expected pixels [B, 3, H, W]${format.temporalCompression > 1 ? ' or [B, 3, F, H, W]' : ''}, got [${pixels.dims}]`);
      if (h % scale || w % scale) throw new Error(`VAE encode: ${w}×${h} is not a multiple of ${scale} (the VAE's downscale)`);
      const one = [1, ...pixels.dims.slice(1)];
      const session = await cachedSession(weights, `vae-encode:${one.slice(2).join('x')}`, () => {
        const x = input('pixels', one);
        return compileGraph([x], { latent: family.vaeEncode(new Builder(weights), config, x) }, { name: `${family.id}_vae_encoder` });
      });
      const per = one.reduce((a, b) => a * b, 1);
      const out: StoredTensor[] = [];
      for (let i = 0; i < n; i++) {
        const r = await session.run({ pixels: { dtype: 'float32', shape: one, data: pixels.data.slice(i * per, (i + 1) * per) } });
        out.push({ dims: r.latent.shape.slice(1), data: r.latent.data as Float32Array });
      }
      return out;
    },
  };
}

/**
 * The family's `source: 'latent'` conditioning of one clip, by input name (Wan I2V: the first-frame mask
 * and image latent [20, F', h, w]), built beside the VAE encoder; undefined when the family has none.
 * Deterministic like the latents, so it can be cached with them.
 */
export function latentConditioningEncoder(family: ModelFamily, config: unknown, weights: WeightSource, id: string): { id: string; names: string[]; encode(pixels: StoredTensor): Promise<Record<string, StoredTensor>> } | undefined {
  const latent = family.conditioning(config).filter((c) => c.source === 'latent');
  const names = latent.map((c) => c.name);
  if (!names.length || !family.latentConditioning) return undefined;
  // The inputs' shapes tell configs of one model apart in the session cache (Wan 2.1 FLF2V on both frames, or the first only).
  const shapes = latent.map((c) => `${c.name}[${c.shape}]`).join(',');
  return {
    id: `${id}:latent-conditioning`,
    names,
    async encode(pixels: StoredTensor): Promise<Record<string, StoredTensor>> {
      if (pixels.dims[0] !== 1) throw new Error(`latent conditioning: one clip at a time, got a batch of ${pixels.dims[0]}`);
      const session = await cachedSession(weights, `latent-conditioning:${pixels.dims.slice(1).join('x')}:${shapes}`, () => {
        const x = input('pixels', pixels.dims);
        return compileGraph([x], family.latentConditioning!(new Builder(weights), config, x), { name: `${family.id}_latent_conditioning` });
      });
      const r = await session.run({ pixels: { dtype: 'float32', shape: [...pixels.dims], data: pixels.data } });
      return Object.fromEntries(names.map((n) => [n, { dims: r[n].shape.slice(1), data: r[n].data as Float32Array }]));
    },
  };
}

/** Rows per text-encoder run; shorter chunks are padded with empty captions so one session serves all. */
const TEXT_BATCH = 8;

/** The text conditioning inputs of a family (what the cache stores per caption), in order. */
export function textConditioning(family: ModelFamily, config: unknown): ConditioningInput[] {
  return family.conditioning(config).filter((c) => c.source === 'text');
}

const sizeOf = (c: ConditioningInput) => c.shape.reduce((a, b) => a * b, 1);

/** Token ids of every encoder for `captions`, by feed name (`ids`, `ids_2`, …). */
export function tokenFeeds(family: ModelFamily, config: unknown, encoders: readonly TextEncoderValue[], captions: readonly string[]): Record<string, HostTensor> {
  return Object.fromEntries(family.textEncoders(config).map((e, i) => [idsInputName(i), tokenIdTensor(encoders[i].tokenizer, captions, e.maxLength)]));
}

/**
 * One stored tensor per caption: the single text output as it is ([L, D] for SD 1.x), or several outputs
 * flattened one after another in `textConditioning` order.
 */
export function textEmbeddingEncoder(family: ModelFamily, config: unknown, encoders: readonly TextEncoderValue[], clipSkip: number, id: string): TextEmbeddingEncoder {
  const outputs = textConditioning(family, config);
  return {
    id: `${id}:clip-skip-${clipSkip}`,
    async encode(captions: string[]): Promise<StoredTensor[]> {
      // Sessions live as long as the weights they read: one encoder's weights, or this list of several.
      const owner = encoders.length === 1 ? encoders[0].weights : encoders;
      const session = await cachedSession(owner, `text-encode:${TEXT_BATCH}:${clipSkip}`, () => {
        const ids = family.textEncoders(config).map((e, i) => input(idsInputName(i), [TEXT_BATCH, e.maxLength], 'int64'));
        const cond = family.encodeText(encoders.map((e) => new Builder(e.weights)), config, ids, { clipSkip });
        return compileGraph(ids, cond, { name: `${family.id}_text_encoder` });
      });
      const out: StoredTensor[] = [];
      for (let i = 0; i < captions.length; i += TEXT_BATCH) {
        const chunk = captions.slice(i, i + TEXT_BATCH);
        const rows = [...chunk, ...Array<string>(TEXT_BATCH - chunk.length).fill('')];
        const r = await session.run(tokenFeeds(family, config, encoders, rows));
        chunk.forEach((_, k) => {
          if (outputs.length === 1) {
            const per = sizeOf(outputs[0]);
            out.push({ dims: [...outputs[0].shape], data: (r[outputs[0].name].data as Float32Array).slice(k * per, (k + 1) * per) });
            return;
          }
          const data = new Float32Array(outputs.reduce((n, c) => n + sizeOf(c), 0));
          let at = 0;
          for (const c of outputs) {
            const per = sizeOf(c);
            data.set((r[c.name].data as Float32Array).subarray(k * per, (k + 1) * per), at);
            at += per;
          }
          out.push({ dims: [data.length], data });
        });
      }
      return out;
    },
  };
}

/** Splits stacked stored text conditioning [B, …] (as `textEmbeddingEncoder` made it) into named feeds. */
export function unpackTextConditioning(family: ModelFamily, config: unknown, items: readonly StoredTensor[]): Record<string, HostTensor> {
  const outputs = textConditioning(family, config);
  const total = outputs.reduce((n, c) => n + sizeOf(c), 0);
  const feeds: Record<string, HostTensor> = {};
  const datas = outputs.map((c) => new Float32Array(items.length * sizeOf(c)));
  items.forEach((item, b) => {
    if (item.data.length !== total) throw new Error(`text encoder returned [${item.dims}] per caption; the model expects ${outputs.map((c) => `${c.name} [${c.shape}]`).join(' + ')}`);
    let at = 0;
    outputs.forEach((c, j) => {
      const per = sizeOf(c);
      datas[j].set(item.data.subarray(at, at + per), b * per);
      at += per;
    });
  });
  outputs.forEach((c, j) => { feeds[c.name] = { dtype: 'float32', shape: [items.length, ...c.shape], data: datas[j] }; });
  return feeds;
}
