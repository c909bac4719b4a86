// Makes a small tokenizer.json in the layout transformers gives Mistral's tekken tokenizers: control
// tokens first (ids 0…19 in mistral_common's order, all special), then the byte-level BPE vocabulary,
// tekken's split pattern before a ByteLevel pre-tokenizer, no normaliser. Tests (and the tiny FLUX.2
// [dev] model) run the real tokenizer library on it; the merges are learned as for the Qwen-style file.
import { buildByteLevelBpeTokenizerJson } from './bpe-tokenizer-json';

/** mistral_common's SpecialTokens in id order (<pad> is 11). */
export const TEKKEN_CONTROL_TOKENS = [
  '<unk>', '<s>', '</s>', '[INST]', '[/INST]', '[AVAILABLE_TOOLS]', '[/AVAILABLE_TOOLS]', '[TOOL_RESULTS]', '[/TOOL_RESULTS]',
  '[TOOL_CALLS]', '[IMG]', '<pad>', '[IMG_BREAK]', '[IMG_END]', '[PREFIX]', '[MIDDLE]', '[SUFFIX]', '[SYSTEM_PROMPT]', '[/SYSTEM_PROMPT]', '[TOOL_CONTENT]',
];

/** Tekken's pre-tokenizer pattern as transformers writes it (Oniguruma syntax). */
export const TEKKEN_SPLIT_PATTERN = '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

export function buildTekkenStyleTokenizerJson(corpus: readonly string[], merges: number): object {
  const base = buildByteLevelBpeTokenizerJson(corpus, merges) as { model: { vocab: Record<string, number>; merges: [string, string][] } };
  const offset = TEKKEN_CONTROL_TOKENS.length;
  const vocab: Record<string, number> = {};
  TEKKEN_CONTROL_TOKENS.forEach((t, i) => { vocab[t] = i; });
  for (const [piece, id] of Object.entries(base.model.vocab)) vocab[piece] = id + offset;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TEKKEN_CONTROL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: TEKKEN_SPLIT_PATTERN }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false,
      byte_fallback: false, ignore_merges: true, vocab, merges: base.model.merges,
    },
  };
}
