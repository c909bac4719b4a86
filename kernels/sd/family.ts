// Which model family a checkpoint belongs to, from its tensor names (and a shape or two), so that a
// file of another family is named ("this is an SDXL checkpoint") instead of half-loaded as SD 1.x.

export type ModelFamily =
  | 'sd1' | 'sd2' | 'sdxl' | 'sdxl-refiner' | 'sd3' | 'flux' | 'pixart' | 'auraflow' | 'hunyuan' | 'wan' | 'ltx'
  | 'lora' | 'vae-only' | 'text-encoder-only' | 'unet-only' | 'unknown';

export const FAMILY_LABEL: Record<ModelFamily, string> = {
  sd1: 'Stable Diffusion 1.x',
  sd2: 'Stable Diffusion 2.x',
  sdxl: 'SDXL',
  'sdxl-refiner': 'SDXL refiner',
  sd3: 'Stable Diffusion 3',
  flux: 'Flux',
  pixart: 'PixArt',
  auraflow: 'AuraFlow',
  hunyuan: 'Hunyuan-DiT/Video',
  wan: 'Wan',
  ltx: 'LTX-Video',
  lora: 'LoRA/LyCORIS adapter',
  'vae-only': 'standalone VAE',
  'text-encoder-only': 'standalone text encoder',
  'unet-only': 'standalone UNet',
  unknown: 'unrecognised model',
};

export interface FamilyEvidence { family: ModelFamily; reason: string }

/** Looks at tensor names (and `shapeOf` for the cross-attention width) of a single file or a diffusers UNet. */
export function detectFamily(keys: readonly string[], shapeOf: (key: string) => readonly number[] | undefined = () => undefined): FamilyEvidence {
  const has = (re: RegExp) => keys.find((k) => re.test(k));
  let k: string | undefined;
  if ((k = has(/(^|\.)lora_(up|down|A|B)\.weight$|(_lora|\.lora|\.lora_linear_layer)\.(up|down)\.weight$|\.hada_w1_a$|\.lokr_w1$|^lora_(unet|te\d?)_/))) return { family: 'lora', reason: `adapter tensor '${k}'` };
  if ((k = has(/^conditioner\.embedders\.1\./))) return { family: 'sdxl', reason: `'${k}' (SDXL's second text encoder)` };
  if ((k = has(/^conditioner\.embedders\.0\.model\.transformer\./))) return { family: 'sdxl-refiner', reason: `'${k}' (refiner's OpenCLIP-G encoder)` };
  if ((k = has(/(^|\.)label_emb\.0\.0\.weight$|^add_embedding\.linear_1\.weight$/))) return { family: 'sdxl', reason: `'${k}' (size conditioning)` };
  if ((k = has(/(^|\.)(double_blocks|single_blocks)\.0\.|^(transformer\.)?single_transformer_blocks\.0\./))) return { family: 'flux', reason: `'${k}'` };
  if ((k = has(/(^|\.)joint_blocks\.0\.|^(transformer\.)?transformer_blocks\.0\.attn\.add_q_proj\./))) return { family: 'sd3', reason: `'${k}'` };
  if ((k = has(/(^|\.)adaln_single\./))) return { family: 'pixart', reason: `'${k}'` };
  if ((k = has(/(^|\.)(cond_seq_linear|register_tokens)/))) return { family: 'auraflow', reason: `'${k}'` };
  if ((k = has(/^(model\.diffusion_model\.)?(blocks\.0\.cross_attn\.k_img|patch_embedding\.weight)/))) return { family: 'wan', reason: `'${k}'` };
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
