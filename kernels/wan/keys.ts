// Wan-format ↔ diffusers tensor and module names of the Wan transformer, both ways. Wan's checkpoints
// (and ComfyUI's files, under `model.diffusion_model.`) use the original module paths; diffusers'
// WanTransformer3DModel renames every one of them but fuses and splits nothing, so the map is a
// renaming of path prefixes. One trap: Wan's affine LayerNorm before cross-attention is `norm3` and
// diffusers calls it `norm2` (diffusers numbers the norms in the order they run).
// Facts from diffusers' scripts/convert_wan_to_diffusers.py (its rename table).

/** [Wan path, diffusers path] inside `blocks.N.`. */
const BLOCK: readonly [string, string][] = [
  ['self_attn.q', 'attn1.to_q'], ['self_attn.k', 'attn1.to_k'], ['self_attn.v', 'attn1.to_v'], ['self_attn.o', 'attn1.to_out.0'],
  ['self_attn.norm_q', 'attn1.norm_q'], ['self_attn.norm_k', 'attn1.norm_k'],
  ['cross_attn.q', 'attn2.to_q'], ['cross_attn.k', 'attn2.to_k'], ['cross_attn.v', 'attn2.to_v'], ['cross_attn.o', 'attn2.to_out.0'],
  ['cross_attn.norm_q', 'attn2.norm_q'], ['cross_attn.norm_k', 'attn2.norm_k'],
  ['cross_attn.k_img', 'attn2.add_k_proj'], ['cross_attn.v_img', 'attn2.add_v_proj'], ['cross_attn.norm_k_img', 'attn2.norm_added_k'],
  ['norm3', 'norm2'],
  ['ffn.0', 'ffn.net.0.proj'], ['ffn.2', 'ffn.net.2'],
  ['modulation', 'scale_shift_table'],
];

/** [Wan path, diffusers path] at the top level. */
const TOP: readonly [string, string][] = [
  ['patch_embedding', 'patch_embedding'],
  ['text_embedding.0', 'condition_embedder.text_embedder.linear_1'], ['text_embedding.2', 'condition_embedder.text_embedder.linear_2'],
  ['time_embedding.0', 'condition_embedder.time_embedder.linear_1'], ['time_embedding.2', 'condition_embedder.time_embedder.linear_2'],
  ['time_projection.1', 'condition_embedder.time_proj'],
  ['img_emb.proj.0', 'condition_embedder.image_embedder.norm1'], ['img_emb.proj.1', 'condition_embedder.image_embedder.ff.net.0.proj'],
  ['img_emb.proj.3', 'condition_embedder.image_embedder.ff.net.2'], ['img_emb.proj.4', 'condition_embedder.image_embedder.norm2'],
  // 2.1 FLF2V's learned positions of the two frames' CLIP tokens.
  ['img_emb.emb_pos', 'condition_embedder.image_embedder.pos_embed'],
  ['head.head', 'proj_out'], ['head.modulation', 'scale_shift_table'],
];

/** The entry whose `from` side is `path` itself or a dotted prefix of it; the rest of the path is kept. */
function rename(path: string, table: readonly [string, string][], from: 0 | 1): string | undefined {
  for (const entry of table) {
    const p = entry[from];
    if (path === p || path.startsWith(`${p}.`)) return entry[1 - from] + path.slice(p.length);
  }
  return undefined;
}

function convert(path: string, from: 0 | 1): string {
  const m = path.match(/^blocks\.(\d+)\.(.+)$/);
  const out = m ? rename(m[2], BLOCK, from) : rename(path, TOP, from);
  if (out === undefined) throw new Error(`'${path}' is not a ${from === 0 ? 'Wan-format' : 'diffusers'} name of the Wan transformer`);
  return m ? `blocks.${m[1]}.${out}` : out;
}

/** Wan-format tensor or module path → diffusers (`blocks.0.self_attn.q.weight` → `blocks.0.attn1.to_q.weight`). */
export const wanToDiffusers = (path: string) => convert(path, 0);
/** diffusers tensor or module path → Wan format. */
export const diffusersToWan = (path: string) => convert(path, 1);
