// Makes a small tokenizer.json in the layout transformers gives Mistral's tekken tokenizers: control
// tokens first (ids 0…19 in mistral_common's order, all special), then the byte-level BPE vocabulary,
// tekken's split pattern before a ByteLevel pre-tokenizer, no normaliser. Tests (and the tiny FLUX.2
// [dev] model) run the real tokenizer library on it; the merges are learned, as for the Qwen-style
// file, inside the pieces the library cuts with this file's own (tekken) pre-tokenizer.
import { learnByteLevelMerges, splitThenByteLevel } from './bpe-tokenizer-json';

/** mistral_common's SpecialTokens in id order (<pad> is 11). */
export const TEKKEN_CONTROL_TOKENS = [
  '<unk>', '<s>', '</s>', '[INST]', '[/INST]', '[AVAILABLE_TOOLS]', '[/AVAILABLE_TOOLS]', '[TOOL_RESULTS]', '[/TOOL_RESULTS]',
  '[TOOL_CALLS]', '[IMG]', '<pad>', '[IMG_BREAK]', '[IMG_END]', '[PREFIX]', '[MIDDLE]', '[SUFFIX]', '[SYSTEM_PROMPT]', '[/SYSTEM_PROMPT]', '[TOOL_CONTENT]',
];

/**
 * Tekken's pre-tokenizer pattern: mistral_common's tekken.json config.pattern, which transformers writes
 * into the Split when it converts tekken.json and puts back with fix_mistral_regex. Letters split at case
 * changes (eBay → e|Bay), digits one by one, no contraction rule. The tokenizer.json published with
 * Mistral-Small-3.1 (and FLUX.2-dev's tokenizer/) carries Llama 3's pattern instead (\p{N}{1,3}, whole
 * \p{L}+ runs): that file runs as published, as diffusers runs it (mistral-tokenizer.ts).
 */
export const TEKKEN_SPLIT_PATTERN = '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

export function buildTekkenStyleTokenizerJson(corpus: readonly string[], merges: number): object {
  const preTokenizer = splitThenByteLevel(TEKKEN_SPLIT_PATTERN, true);
  const base = learnByteLevelMerges(corpus, merges, null, preTokenizer);
  const offset = TEKKEN_CONTROL_TOKENS.length;
  const vocab: Record<string, number> = {};
  TEKKEN_CONTROL_TOKENS.forEach((t, i) => { vocab[t] = i; });
  for (const [piece, id] of Object.entries(base.vocab)) vocab[piece] = id + offset;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TEKKEN_CONTROL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false,
      byte_fallback: false, ignore_merges: true, vocab, merges: base.merges,
    },
  };
}
