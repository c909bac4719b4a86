// Which model family a checkpoint belongs to, from its tensor names (and a shape or two), including
// families loragraph cannot train yet — so a file is named ("this is a Qwen-Image checkpoint") instead
// of half-loaded as another family. Key facts follow ComfyUI's model_detection and the model authors'
// single-file layouts. Order matters: distinctive keys are tested before generic ones.
import { flux2Label } from '../flux/config';
import { detectFluxTransformer } from '../flux/detect';

export type DetectedFamily =
  | 'sd1' | 'sd2' | 'sdxl' | 'sdxl-refiner' | 'sd3' | 'flux1' | 'flux2' | 'zimage' | 'qwen-image' | 'wan'
  | 'pixart' | 'auraflow' | 'hunyuan' | 'ltx'
  | 'lora' | 'vae-only' | 'text-encoder-only' | 'unet-only' | 'unknown';

export const FAMILY_LABELS: Record<DetectedFamily, string> = {
  sd1: 'Stable Diffusion 1.x',
  sd2: 'Stable Diffusion 2.x',
  sdxl: 'SDXL',
  'sdxl-refiner': 'SDXL refiner',
  sd3: 'Stable Diffusion 3',
  flux1: 'FLUX.1',
  flux2: 'FLUX.2',
  zimage: 'Z-Image',
  'qwen-image': 'Qwen-Image',
  wan: 'Wan',
  pixart: 'PixArt',
  auraflow: 'AuraFlow',
  hunyuan: 'Hunyuan-DiT/Video',
  ltx: 'LTX-Video',
  lora: 'LoRA/LyCORIS adapter',
  'vae-only': 'standalone VAE',
  'text-encoder-only': 'standalone text encoder',
  'unet-only': 'standalone UNet',
  unknown: 'unrecognised model',
};

export interface FamilyEvidence {
  family: DetectedFamily;
  reason: string;
  /** The variant as users know it when the names and shapes tell it ('FLUX.2 [dev]'); else FAMILY_LABELS[family]. */
  label?: string;
}

/** "an SDXL", "a Wan": the article a label takes in messages. */
export function withArticle(label: string): string {
  return `${/^(SDXL|LTX|[AEIOUaeiou])/.test(label) ? 'an' : 'a'} ${label}`;
}

/**
 * Looks at the tensor names of a single file, a diffusers part or a separate diffusion-model file;
 * `shapeOf` gives a tensor's shape (cross-attention width tells SD 2.x and SDXL UNets apart).
 */
export function detectFamily(keys: readonly string[], shapeOf: (key: string) => readonly number[] | undefined = () => undefined): FamilyEvidence {
  const has = (re: RegExp) => keys.find((k) => re.test(k));
  let k: string | undefined;
  if ((k = has(/(^|\.)lora_(up|down|A|B)\.weight$|(_lora|\.lora|\.lora_linear_layer)\.(up|down)\.weight$|\.hada_w1_a$|\.lokr_w1$|^lora_(unet|te\d?)_/))) return { family: 'lora', reason: `adapter tensor '${k}'` };
  // SDXL and its fine-tunes (Pony, Illustrious, NoobAI…) share the base layout: two text encoders.
  if ((k = has(/^conditioner\.embedders\.1\./))) return { family: 'sdxl', reason: `'${k}' (SDXL's second text encoder)` };
  if ((k = has(/^conditioner\.embedders\.0\.model\.transformer\./))) return { family: 'sdxl-refiner', reason: `'${k}' (refiner's OpenCLIP-G encoder)` };
  if ((k = has(/(^|\.)label_emb\.0\.0\.weight$|^add_embedding\.linear_1\.weight$/))) {
    // The refiner also has size conditioning but one 1280-wide text encoder and 384-channel levels.
    const w = shapeOf(k)?.[1];
    if (w === 2560) return { family: 'sdxl-refiner', reason: `'${k}' of width 2560 (refiner's aesthetic-score conditioning)` };
    return { family: 'sdxl', reason: `'${k}' (size conditioning)` };
  }
  if ((k = has(/(^|\.)double_stream_modulation_(img|txt)\./))) {
    // klein and dev share the names; dev alone embeds the guidance scale (ComfyUI reads the variant the same way).
    const flux = detectFluxTransformer(keys, shapeOf);
    return { family: 'flux2', reason: `'${k}' (FLUX.2's shared modulation)${flux?.config.guidanceEmbed ? ' with a guidance embedder' : ''}`, ...(flux ? { label: flux2Label(flux.config) } : {}) };
  }
  if ((k = has(/(^|\.)(double_blocks|single_blocks)\.0\.|^(transformer\.)?single_transformer_blocks\.0\./))) return { family: 'flux1', reason: `'${k}'` };
  // Qwen-Image's blocks look like SD3's joint blocks (add_q_proj): its text norm comes first.
  if ((k = has(/(^|\.)txt_norm\.weight$/)) && has(/(^|\.)img_in\.weight$/)) return { family: 'qwen-image', reason: `'${k}' with img_in (Qwen-Image's MMDiT)` };
  if ((k = has(/(^|\.)joint_blocks\.0\.|^(transformer\.)?transformer_blocks\.0\.attn\.add_q_proj\./))) return { family: 'sd3', reason: `'${k}'` };
  // Z-Image is a Lumina-2-style single-stream DiT with noise/context refiners over Qwen3 captions.
  if ((k = has(/(^|\.)(cap_embedder\.1\.weight|context_refiner\.0\.|noise_refiner\.0\.)/))) return { family: 'zimage', reason: `'${k}' (Lumina-2/Z-Image caption embedder and refiners)` };
  if ((k = has(/(^|\.)adaln_single\./))) return { family: 'pixart', reason: `'${k}'` };
  if ((k = has(/(^|\.)(cond_seq_linear|register_tokens)/))) return { family: 'auraflow', reason: `'${k}'` };
  // Wan names bare, under ComfyUI's model.diffusion_model. or a trainer's diffusion_model.; diffusers' bare or under transformer.
  if ((k = has(/^((model\.)?diffusion_model\.)?(head\.modulation$|blocks\.0\.cross_attn\.k_img|patch_embedding\.weight$)|^(transformer\.)?condition_embedder\.time_proj\./))) return { family: 'wan', reason: `'${k}'` };
  if ((k = has(/(^|\.)(txt_in\.individual_token_refiner|mlp_t5\.)/))) return { family: 'hunyuan', reason: `'${k}'` };
  if ((k = has(/(^|\.)scale_shift_table$/))) return { family: 'ltx', reason: `'${k}'` };
  if ((k = has(/^cond_stage_model\.model\.(transformer\.resblocks|ln_final)/))) return { family: 'sd2', reason: `'${k}' (OpenCLIP text encoder)` };
  const attn2 = has(/(^|\.)(input_blocks|down_blocks)\.\d+\.(1|attentions\.\d+)\.transformer_blocks\.0\.attn2\.to_k\.weight$/);
  if (attn2) {
    const width = shapeOf(attn2)?.[1];
    if (width === 1024) return { family: 'sd2', reason: `cross-attention width 1024 at '${attn2}'` };
    if (width === 2048 || width === 1280) return { family: 'sdxl', reason: `cross-attention width ${width} at '${attn2}'` };
  }
  const unet = has(/^model\.diffusion_model\.input_blocks\.0\.0\.weight$/);
  const clip = has(/^cond_stage_model\.transformer\.text_model\./);
  const vae = has(/^first_stage_model\./);
  if (unet && (clip || vae)) return { family: 'sd1', reason: `'${unet}' with ${clip ? 'a CLIP text encoder' : 'a VAE'}` };
  if (unet) return { family: 'sd1', reason: `'${unet}'` };
  if ((k = has(/^(encoder|decoder)\.(down|up|mid)/)) && !has(/^(model|cond_stage_model|text_model)\./)) return { family: 'vae-only', reason: `'${k}'` };
  if ((k = has(/^text_model\.encoder\.layers\.0\./))) return { family: 'text-encoder-only', reason: `'${k}'` };
  if ((k = has(/^(input_blocks|down_blocks)\.0\./))) return { family: 'unet-only', reason: `'${k}'` };
  return { family: 'unknown', reason: `none of its ${keys.length} tensor names match a known layout` };
}

/** A diffusers folder's family from model_index.json's `_class_name` (undefined when it says nothing). */
export function familyOfPipelineClass(cls: string): DetectedFamily | undefined {
  if (/XL/.test(cls)) return 'sdxl';
  if (/Flux2/.test(cls)) return 'flux2';
  if (/Flux/.test(cls)) return 'flux1';
  if (/StableDiffusion3/.test(cls)) return 'sd3';
  if (/ZImage/.test(cls)) return 'zimage';
  if (/QwenImage/.test(cls)) return 'qwen-image';
  if (/^Wan/.test(cls)) return 'wan';
  return undefined; // SD 1.x or 2.x (StableDiffusionPipeline): the UNet's config decides
}
