// Wan's text encoder: umT5-XXL's encoder (kernels/text's T5 with a relative-position bias table in every
// layer, gated GELU, unscaled attention) over the prompt tokenized by the model's own tokenizer.json,
// 512 tokens with </s> and <pad>. Wan keeps the features of the real tokens (up to and including </s>)
// and zero-pads them back to 512 — the features multiplied by the padding mask, since the masked encoder
// gives real tokens the same features at any padded length.
import type { Builder } from '../nn/builder';
import type { HostTensor, Tensor } from '../tensor';
import { mul } from '../ops/elementwise';
import { reshape } from '../ops/shape-and-reduce';
import { t5Encoder, T5_XXL, type T5Config } from '../text/t5';
import type { T5PromptTokenizer } from '../text/t5-tokenizer';
import { WAN_TEXT_LEN } from './config';

/** google/umt5-xxl's encoder as Wan uses it: [B, 512, 4096]. */
export const UMT5_XXL: T5Config = { ...T5_XXL, name: 'umt5-xxl', vocabSize: 256384, biasPerLayer: true };

/** The umT5 architecture at miniature size (the video default's text encoder); its width is WAN_TINY's textDim. */
export const UMT5_TINY: T5Config = { ...UMT5_XXL, name: 'umt5-tiny', vocabSize: 512, dModel: 32, dKv: 8, dFf: 64, numLayers: 2, numHeads: 4 };

/** Prompts → ids [B, len] (int64) and mask [B, len] (1 up to and including </s>), Wan's whitespace cleaning first. */
export function wanPromptTokens(tokenizer: T5PromptTokenizer, prompts: readonly string[], maxLength = WAN_TEXT_LEN): { ids: HostTensor; mask: HostTensor } {
  const ids = new BigInt64Array(prompts.length * maxLength);
  const mask = new Float32Array(prompts.length * maxLength);
  prompts.forEach((p, i) => {
    const row = tokenizer.tokenize(p.replace(/\s+/g, ' ').trim(), { maxLength }).ids;
    const real = row.indexOf(tokenizer.eosId) + 1;
    row.forEach((id, j) => { ids[i * maxLength + j] = BigInt(id); mask[i * maxLength + j] = j < real ? 1 : 0; });
  });
  return { ids: { dtype: 'int64', shape: [prompts.length, maxLength], data: ids }, mask: { dtype: 'float32', shape: [prompts.length, maxLength], data: mask } };
}

/** Text features [B, L, dModel] as Wan's transformer receives them: real tokens' features, zeros after. */
export function wanTextFeatures(b: Builder, cfg: T5Config, ids: Tensor, mask: Tensor): Tensor {
  const [bsz, len] = ids.shape;
  return mul(t5Encoder(b, cfg, ids, { mask }), reshape(mask, [bsz, len, 1]));
}
