// Which FLUX transformer a file holds, read from its tensor names and a few shapes as ComfyUI does:
// `double_stream_modulation_img.lin.weight` (shared modulation) means FLUX.2, the width of
// `txt_in.weight` names the variant, block counts come from the highest block index. Works on BFL
// single files (bare, or under `model.diffusion_model.` / `diffusion_model.`) and diffusers folders.
import { FLUX1_DEV, FLUX1_SCHNELL, FLUX2_DEV, FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, type FluxTransformerConfig } from './config';

export type FluxLayout = 'bfl' | 'diffusers';

export interface FluxDetection {
  config: FluxTransformerConfig;
  layout: FluxLayout;
  /** Prefix in front of the transformer's names in this file ('' when bare). */
  prefix: string;
  /** The known variant's name when the sizes match one (flux2-klein-9b, …). */
  variant?: string;
}

const PREFIXES = ['model.diffusion_model.', 'diffusion_model.', 'transformer.', ''];

function maxIndex(keys: readonly string[], re: RegExp): number {
  let n = -1;
  for (const k of keys) { const m = k.match(re); if (m) n = Math.max(n, Number(m[1])); }
  return n + 1;
}

/** Returns undefined when the names are not a FLUX transformer's. */
export function detectFluxTransformer(keys: readonly string[], shapeOf: (key: string) => readonly number[] | undefined): FluxDetection | undefined {
  for (const prefix of PREFIXES) {
    const has = (k: string) => keys.includes(prefix + k);
    const shape = (k: string) => shapeOf(prefix + k);
    const rest = prefix ? keys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)) : keys;
    const bfl = has('double_stream_modulation_img.lin.weight') || has('img_in.weight');
    const diffusers = has('double_stream_modulation_img.linear.weight') || has('x_embedder.weight');
    if (!bfl && !diffusers) continue;
    const layout: FluxLayout = bfl ? 'bfl' : 'diffusers';
    const generation = has('double_stream_modulation_img.lin.weight') || has('double_stream_modulation_img.linear.weight') ? 2 : 1;
    const imgIn = shape(bfl ? 'img_in.weight' : 'x_embedder.weight');
    const txtIn = shape(bfl ? 'txt_in.weight' : 'context_embedder.weight');
    const qNorm = shape(bfl ? 'double_blocks.0.img_attn.norm.query_norm.scale' : 'transformer_blocks.0.attn.norm_q.weight');
    if (!imgIn || !txtIn || !qNorm) return undefined;
    const depthDouble = maxIndex(rest, bfl ? /^double_blocks\.(\d+)\./ : /^transformer_blocks\.(\d+)\./);
    const depthSingle = maxIndex(rest, bfl ? /^single_blocks\.(\d+)\./ : /^single_transformer_blocks\.(\d+)\./);
    const guidanceEmbed = has(bfl ? 'guidance_in.in_layer.weight' : (generation === 2 ? 'time_guidance_embed.guidance_embedder.linear_1.weight' : 'time_text_embed.guidance_embedder.linear_1.weight'));
    const base = generation === 2 ? FLUX2_KLEIN_9B : (guidanceEmbed ? FLUX1_DEV : FLUX1_SCHNELL);
    const hiddenSize = imgIn[0];
    const headDim = qNorm[0];
    const contextDim = txtIn[1];
    const known = [FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, FLUX2_DEV, FLUX1_DEV, FLUX1_SCHNELL].find((c) =>
      c.generation === generation && c.hiddenSize === hiddenSize && c.contextDim === contextDim && c.depthDouble === depthDouble
      && c.depthSingle === depthSingle && c.guidanceEmbed === guidanceEmbed);
    // Sizes no release has (the tiny model, a pruned one): the axes split the head width evenly.
    const axes = base.axesDim.length;
    const config: FluxTransformerConfig = known ?? {
      ...base, name: `flux${generation}-custom`, hiddenSize, numHeads: hiddenSize / headDim, depthDouble, depthSingle, contextDim,
      inChannels: imgIn[1], guidanceEmbed,
      pooledDim: generation === 2 ? 0 : shape(bfl ? 'vector_in.in_layer.weight' : 'time_text_embed.text_embedder.linear_1.weight')?.[1] ?? base.pooledDim,
      axesDim: generation === 2 ? new Array(axes).fill(headDim / axes) : flux1Axes(headDim),
    };
    return { config, layout, prefix, variant: known?.name };
  }
  return undefined;
}

/**
 * FLUX.1's (16, 56, 56) split of 128 head channels scaled to another head width: the two spatial axes
 * get equal even shares of about 7/16 each, the first axis the rest ([4, 6, 6] for 16).
 */
export function flux1Axes(headDim: number): number[] {
  const spatial = 2 * Math.floor((headDim - 2 * Math.round(headDim / 16)) / 4);
  return [headDim - 2 * spatial, spatial, spatial];
}
