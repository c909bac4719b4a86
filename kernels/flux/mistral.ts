// Mistral Small 3.x 24B's language model as FLUX.2 [dev] uses it (BFL's Mistral3SmallEmbedder, diffusers'
// Flux2Pipeline): the Llama-style decoder (kernels/text/llama-decoder.ts) without q/k norms, run over
// the chat-formatted prompt left-padded to 512 tokens, hidden states after layers 10, 20 and 30
// stacked per token (3 × 5120 = 15360). Sizes from ComfyUI's Mistral3Small24BConfig and transformers'
// Mistral3 text config: RoPE theta 1e9, RMSNorm eps 1e-5, 131072 tokens.
// Files name the language model three ways; all are served under transformers' Llama names (`model.*`):
//   ComfyUI's text_encoders/mistral_3_small_flux2_*.safetensors   model.layers.N…, plus `tekken_model`
//   transformers' Mistral3ForConditionalGeneration (4.52+)        model.language_model.layers.N…
//   older Mistral3 checkpoints                                     language_model.model.layers.N…
// The vision tower, projector and LM head are never read.
import { input } from '../tensor';
import { Builder } from '../nn/builder';
import { ShapeRecorder } from '../nn/weights';
import { llamaDecoderFeatures, type LlamaDecoderConfig } from '../text/llama-decoder';

export type MistralConfig = LlamaDecoderConfig;

/** Mistral Small 3.1/3.2 24B's language model: 3 × 5120 = 15360 features per token. */
export const MISTRAL_SMALL_3_24B: MistralConfig = {
  name: 'mistral-small-3-24b', vocabSize: 131072, hiddenSize: 5120, intermediateSize: 32768, numLayers: 40, numHeads: 32, numKvHeads: 8,
  headDim: 128, ropeTheta: 1_000_000_000, rmsNormEps: 1e-5, outputLayers: [10, 20, 30], maxLength: 512, qkNorm: false, padding: 'left',
};

/**
 * The Mistral architecture at miniature size (the tiny FLUX.2 [dev] test model's encoder): 3 × 16 = 48
 * features per token, vocabulary of a small tekken-style tokenizer.json; 64 tokens hold BFL's system
 * message and a short prompt once the tokenizer has learned merges from the message.
 */
export const MISTRAL_TINY: MistralConfig = {
  name: 'mistral-tiny', vocabSize: 512, hiddenSize: 16, intermediateSize: 40, numLayers: 3, numHeads: 4, numKvHeads: 2,
  headDim: 4, ropeTheta: 1_000_000_000, rmsNormEps: 1e-5, outputLayers: [1, 2, 3], maxLength: 64, qkNorm: false, padding: 'left',
};

/** Prefixes in front of the decoder's `layers.N…`/`embed_tokens`/`norm` names in the layouts above. */
const LANGUAGE_MODEL_PREFIXES = ['model.language_model.', 'language_model.model.', 'model.'];

/**
 * A text encoder file's tensor name under transformers' Llama naming (`model.layers.0.self_attn.q_proj.weight`),
 * or undefined for tensors FLUX.2 does not read (vision tower, projector, LM head, the embedded tokenizer).
 */
export function mistralLanguageModelName(key: string): string | undefined {
  const p = LANGUAGE_MODEL_PREFIXES.find((pre) => key.startsWith(pre));
  const rest = p && key.slice(p.length);
  // `model.` also heads transformers' `model.vision_tower.*` and `model.multi_modal_projector.*`.
  return rest && /^(layers\.\d+\.|embed_tokens\.|norm\.)/.test(rest) ? `model.${rest}` : undefined;
}

/**
 * Names and shapes of the whole language model (all layers, the final norm; no LM head: ComfyUI's
 * files drop it) without a weight, and its parameter count.
 */
export function mistralLanguageModelShapes(cfg: MistralConfig): { tensors: Map<string, number[]>; parameterCount: number } {
  const rec = new ShapeRecorder();
  const b = new Builder(rec);
  llamaDecoderFeatures(b, { ...cfg, outputLayers: [cfg.numLayers] }, input('ids', [1, 2], 'int64'), input('mask', [1, 2]));
  b.scope('model').param('norm.weight', [cfg.hiddenSize]);
  let parameterCount = 0;
  for (const s of rec.shapes.values()) parameterCount += s.reduce((a, d) => a * d, 1);
  return { tensors: rec.shapes, parameterCount };
}

/** What no tensor shows: the head width, RoPE theta and RMSNorm eps (and the head counts, to check against the shapes). */
export type MistralStatedSizes = Partial<Pick<MistralConfig, 'headDim' | 'ropeTheta' | 'rmsNormEps' | 'numHeads' | 'numKvHeads'>>;

/**
 * The sizes a transformers config.json states (Mistral3ForConditionalGeneration nests the language model
 * under `text_config`, a MistralForCausalLM has it at the top). Mistral Small 3's head width is stated,
 * 128, and is not hidden / heads (5120 / 32 = 160).
 */
export function mistralStatedSizes(configJson: unknown): MistralStatedSizes {
  const root = (configJson ?? {}) as Record<string, unknown>;
  const c = (typeof root.text_config === 'object' && root.text_config ? root.text_config : root) as Record<string, unknown>;
  const num = (k: string) => (typeof c[k] === 'number' && Number.isFinite(c[k]) ? c[k] as number : undefined);
  const out: MistralStatedSizes = {
    headDim: num('head_dim'), ropeTheta: num('rope_theta'), rmsNormEps: num('rms_norm_eps'),
    numHeads: num('num_attention_heads'), numKvHeads: num('num_key_value_heads'),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as MistralStatedSizes;
}

/**
 * Mistral sizes from a text encoder's tensor shapes (names already under `model.`). No tensor shows the
 * head width (no q/k norms), RoPE theta or eps: a config.json beside the weights states them (`stated`);
 * else a file's `loragraph_head_dim`, else Mistral Small 3's (128, 1e9, 1e-5). Stated head counts must
 * agree with the q/k projections. A Qwen3 (q_norm present) is not a Mistral. ComfyUI's pruned file
 * keeps layers 0–29, enough for FLUX.2.
 */
export function mistralConfigFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[], metadata: Record<string, string> = {}, maxLength = 512, stated: MistralStatedSizes = {}): MistralConfig | undefined {
  const embed = shapeOf('model.embed_tokens.weight');
  const q = shapeOf('model.layers.0.self_attn.q_proj.weight');
  const k = shapeOf('model.layers.0.self_attn.k_proj.weight');
  const gate = shapeOf('model.layers.0.mlp.gate_proj.weight');
  if (!embed || !q || !k || !gate || shapeOf('model.layers.0.self_attn.q_norm.weight')) return undefined;
  let layers = 0;
  for (const key of keys) { const m = /^model\.layers\.(\d+)\./.exec(key); if (m) layers = Math.max(layers, Number(m[1]) + 1); }
  const headDim = stated.headDim ?? Number(metadata.loragraph_head_dim ?? MISTRAL_SMALL_3_24B.headDim);
  if (!(headDim > 0 && q[0] % headDim === 0 && k[0] % headDim === 0)) return undefined;
  if ((stated.numHeads !== undefined && stated.numHeads * headDim !== q[0]) || (stated.numKvHeads !== undefined && stated.numKvHeads * headDim !== k[0])) return undefined;
  // FLUX.2 [dev] reads hidden states 10, 20, 30; a smaller encoder (the tiny one) thirds its depth.
  const outputLayers = layers >= 30 ? [10, 20, 30] : [1, 2, 3].map((i) => Math.round((i * layers) / 3));
  const full = embed[0] === MISTRAL_SMALL_3_24B.vocabSize && embed[1] === MISTRAL_SMALL_3_24B.hiddenSize;
  return {
    ...MISTRAL_SMALL_3_24B, name: full ? MISTRAL_SMALL_3_24B.name : `mistral-${embed[1]}`, vocabSize: embed[0], hiddenSize: embed[1],
    intermediateSize: gate[0], numLayers: layers, numHeads: q[0] / headDim, numKvHeads: k[0] / headDim, headDim, outputLayers, maxLength,
    ropeTheta: stated.ropeTheta ?? MISTRAL_SMALL_3_24B.ropeTheta, rmsNormEps: stated.rmsNormEps ?? MISTRAL_SMALL_3_24B.rmsNormEps,
  };
}
