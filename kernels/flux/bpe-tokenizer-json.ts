// Makes a small byte-level BPE tokenizer.json in Qwen2/Qwen3's layout (NFC normaliser, the Qwen split
// regex then ByteLevel pre-tokenizer, BPE model, ByteLevel decoder, the chat special tokens) by
// learning merges from a corpus. The tiny Qwen3-architecture text encoder ships one; tests write one
// to run the real tokenizer library on a real-style file. The corpus is cut into pieces by the
// tokenizer library running the file's own normaliser and pre-tokenizer, so merges are learned inside
// the pieces the file will split text into (Qwen's pattern here, tekken's for tekken-tokenizer-json.ts).
import { Tokenizer } from '@huggingface/tokenizers';

/** GPT-2's reversible byte → printable character table used by ByteLevel. */
export function byteLevelAlphabet(): string[] {
  const printable = new Set<number>();
  for (let b = 33; b <= 126; b++) printable.add(b);
  for (let b = 161; b <= 172; b++) printable.add(b);
  for (let b = 174; b <= 255; b++) printable.add(b);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable.has(b) ? b : 256 + extra++));
  return out;
}

/** Qwen2's pre-tokenizer split pattern, as written in its tokenizer.json (Oniguruma syntax). */
export const QWEN_SPLIT_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** A tokenizer.json pre-tokenizer: the Split regex (Oniguruma syntax, isolated pieces), then bytes → ByteLevel characters. */
export function splitThenByteLevel(pattern: string, trimOffsets: boolean): object {
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: false },
    ],
  };
}

export const QWEN_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
/** Qwen3's thinking markers: added tokens, but not special (they survive skip_special_tokens). */
export const QWEN3_THINK_TOKENS = ['<think>', '</think>'];

/**
 * Learns up to `merges` BPE merges from `corpus` (most frequent adjacent pair first, ties by first
 * appearance; pairs seen once are not merged) over the byte-level pieces @huggingface/tokenizers cuts
 * the corpus into with `normalizer` and `preTokenizer` (tokenizer.json objects): the 256 byte
 * characters, then one token per merge.
 */
export function learnByteLevelMerges(corpus: readonly string[], merges: number, normalizer: object | null, preTokenizer: object): { vocab: Record<string, number>; merges: [string, string][] } {
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, i) => { vocab[c] = i; });
  const cutter = new Tokenizer({
    version: '1.0', added_tokens: [], normalizer, pre_tokenizer: preTokenizer, post_processor: null, decoder: null,
    model: { type: 'BPE', vocab, merges: [], dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false },
  }, {});
  const words = new Map<string, number>();
  for (const text of corpus) {
    const normalized = cutter.normalizer ? cutter.normalizer.normalize(text) : text;
    // ByteLevel already turned each piece's bytes into one character each.
    for (const piece of cutter.pre_tokenizer!.pre_tokenize(normalized)) {
      const w = Array.from(piece).join('\u0000');
      words.set(w, (words.get(w) ?? 0) + 1);
    }
  }
  let split = [...words].map(([w, n]) => ({ symbols: w.split('\u0000'), n }));
  const learned: [string, string][] = [];
  for (let m = 0; m < merges; m++) {
    const counts = new Map<string, number>();
    for (const { symbols, n } of split) for (let i = 0; i + 1 < symbols.length; i++) {
      const k = `${symbols[i]}\u0000${symbols[i + 1]}`;
      counts.set(k, (counts.get(k) ?? 0) + n);
    }
    let best: string | undefined;
    let bestN = 1; // a pair seen once is not worth a token
    for (const [k, n] of counts) if (n > bestN) { best = k; bestN = n; }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    learned.push([a, b]);
    vocab[a + b] = Object.keys(vocab).length;
    split = split.map(({ symbols, n }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) { out.push(a + b); i++; } else out.push(symbols[i]);
      }
      return { symbols: out, n };
    });
  }
  return { vocab, merges: learned };
}

/**
 * Learns merges from `corpus` along Qwen's split (learnByteLevelMerges) and returns the tokenizer.json
 * object. The chat tokens follow the learned vocabulary, or start at `firstAddedId` when given (a fixed
 * place at the end of the embedding, whatever the corpus taught).
 */
export function buildByteLevelBpeTokenizerJson(corpus: readonly string[], merges: number, opts: { firstAddedId?: number } = {}): object {
  const normalizer = { type: 'NFC' };
  const preTokenizer = splitThenByteLevel(QWEN_SPLIT_PATTERN, false);
  const { vocab, merges: learned } = learnByteLevelMerges(corpus, merges, normalizer, preTokenizer);
  const learnedSize = Object.keys(vocab).length;
  if (opts.firstAddedId !== undefined && opts.firstAddedId < learnedSize) throw new Error(`tokenizer: added tokens at ${opts.firstAddedId} would overlap the ${learnedSize} learned tokens`);
  let next = opts.firstAddedId ?? learnedSize;
  const added = [...QWEN_SPECIAL_TOKENS.map((t) => [t, true] as const), ...QWEN3_THINK_TOKENS.map((t) => [t, false] as const)].map(([content, special]) => ({
    id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special,
  }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: byteLevel,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false,
      byte_fallback: false, ignore_merges: false, vocab, merges: learned,
    },
  };
}
