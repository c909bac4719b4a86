// Tensor names of a CLIP vision tower in the three layouts its files come in, mapped onto transformers'
// CLIPVisionModel names (what kernels/vision/clip-vision.ts asks for):
//   transformers  vision_model.encoder.layers.0.self_attn.q_proj.weight   (ComfyUI's clip_vision_h.safetensors)
//   wan           visual.transformer.0.attn.to_qkv.weight                 (Wan's models_clip_open-clip-xlm-roberta-large-vit-huge-14)
//   open_clip     visual.transformer.resblocks.0.attn.in_proj_weight      (open-clip checkpoints)
// Wan and open-clip fuse q, k and v into one [3·d, d] projection (q rows first), keep the class token and
// the position table with extra unit axes (Wan) and store the projection as [d, P] (transposed).

export type ClipVisionNaming = 'transformers' | 'wan' | 'open_clip';

/** Where a transformers-named tensor lives in another layout, and how to read it back. */
export interface ClipVisionKey {
  key: string;
  /** One third of a fused q/k/v tensor: rows [part·d, (part+1)·d). */
  qkvPart?: 0 | 1 | 2;
  /** Stored transposed (the [d, P] projection). */
  transposed?: boolean;
  /** Stored with extra unit axes (Wan's [1, 1, d] class token, [1, T, d] positions): read with a reshape. */
  reshaped?: boolean;
}

type Rule = [transformers: string, wan: string, openClip: string, extra?: Omit<ClipVisionKey, 'key'>];

const LAYER_RULES: Rule[] = [
  ['layer_norm1.weight', 'norm1.weight', 'ln_1.weight'],
  ['layer_norm1.bias', 'norm1.bias', 'ln_1.bias'],
  ['layer_norm2.weight', 'norm2.weight', 'ln_2.weight'],
  ['layer_norm2.bias', 'norm2.bias', 'ln_2.bias'],
  ...(['q', 'k', 'v'] as const).flatMap((p, i): Rule[] => [
    [`self_attn.${p}_proj.weight`, 'attn.to_qkv.weight', 'attn.in_proj_weight', { qkvPart: i as 0 | 1 | 2 }],
    [`self_attn.${p}_proj.bias`, 'attn.to_qkv.bias', 'attn.in_proj_bias', { qkvPart: i as 0 | 1 | 2 }],
  ]),
  ['self_attn.out_proj.weight', 'attn.proj.weight', 'attn.out_proj.weight'],
  ['self_attn.out_proj.bias', 'attn.proj.bias', 'attn.out_proj.bias'],
  ['mlp.fc1.weight', 'mlp.0.weight', 'mlp.c_fc.weight'],
  ['mlp.fc1.bias', 'mlp.0.bias', 'mlp.c_fc.bias'],
  ['mlp.fc2.weight', 'mlp.2.weight', 'mlp.c_proj.weight'],
  ['mlp.fc2.bias', 'mlp.2.bias', 'mlp.c_proj.bias'],
];

const TOP_RULES: Rule[] = [
  ['vision_model.embeddings.patch_embedding.weight', 'patch_embedding.weight', 'conv1.weight'],
  ['vision_model.embeddings.class_embedding', 'cls_embedding', 'class_embedding', { reshaped: true }],
  ['vision_model.embeddings.position_embedding.weight', 'pos_embedding', 'positional_embedding', { reshaped: true }],
  ['vision_model.pre_layrnorm.weight', 'pre_norm.weight', 'ln_pre.weight'],
  ['vision_model.pre_layrnorm.bias', 'pre_norm.bias', 'ln_pre.bias'],
  ['vision_model.post_layernorm.weight', 'post_norm.weight', 'ln_post.weight'],
  ['vision_model.post_layernorm.bias', 'post_norm.bias', 'ln_post.bias'],
  ['visual_projection.weight', 'head', 'proj', { transposed: true }],
];

const LAYER_PREFIX = { transformers: 'vision_model.encoder.layers.', wan: 'transformer.', open_clip: 'transformer.resblocks.' } as const;
const column = { transformers: 0, wan: 1, open_clip: 2 } as const;

/** A transformers name's place in `naming` (without the file's prefix such as `visual.`); undefined for names outside the tower. */
export function clipVisionKeyIn(naming: ClipVisionNaming, name: string): ClipVisionKey | undefined {
  if (naming === 'transformers') return TOP_RULES.some((r) => r[0] === name) || /^vision_model\.encoder\.layers\.\d+\./.test(name) ? { key: name } : undefined;
  const top = TOP_RULES.find((r) => r[0] === name);
  if (top) return { key: top[column[naming]], ...top[3] };
  const m = /^vision_model\.encoder\.layers\.(\d+)\.(.+)$/.exec(name);
  const rule = m && LAYER_RULES.find((r) => r[0] === m[2]);
  return rule ? { key: `${LAYER_PREFIX[naming]}${m![1]}.${rule[column[naming]]}`, ...rule[3] } : undefined;
}

/** Every tensor name of a tower of `numLayers` layers in `naming` (fused q/k/v once), for checks and tests. */
export function clipVisionKeys(naming: ClipVisionNaming, numLayers: number): string[] {
  const c = column[naming];
  const layer = [...new Set(LAYER_RULES.map((r) => r[c]))];
  return [
    ...TOP_RULES.map((r) => r[c]),
    ...Array.from({ length: numLayers }, (_, i) => layer.map((s) => `${LAYER_PREFIX[naming]}${i}.${s}`)).flat(),
  ];
}

/** The tensor that marks each layout, relative to its prefix. */
const MARKERS: [ClipVisionNaming, string][] = [
  ['transformers', 'vision_model.encoder.layers.0.layer_norm1.weight'],
  ['open_clip', 'transformer.resblocks.0.attn.in_proj_weight'],
  ['wan', 'transformer.0.attn.to_qkv.weight'],
];

/**
 * Which layout a file's tensor names are in and the prefix they sit under (`visual.` in Wan's and
 * open-clip's whole-CLIP files, whose text tower is skipped); undefined when it holds no CLIP vision tower.
 */
export function detectClipVisionNaming(keys: Iterable<string>): { naming: ClipVisionNaming; prefix: string } | undefined {
  const all = new Set(keys);
  for (const [naming, marker] of MARKERS) {
    for (const prefix of ['', 'visual.', 'clip_vision.']) {
      if (!all.has(prefix + marker)) continue;
      // A layer name alone could be another transformer's; the patch convolution beside it makes it a vision tower.
      if (all.has(prefix + (naming === 'transformers' ? 'vision_model.embeddings.patch_embedding.weight' : naming === 'wan' ? 'patch_embedding.weight' : 'conv1.weight'))) return { naming, prefix };
    }
  }
  return undefined;
}
