// Makes a small byte-level BPE tokenizer.json in Qwen2/Qwen3's layout (NFC normaliser, the Qwen split
// regex then ByteLevel pre-tokenizer, BPE model, ByteLevel decoder, the chat special tokens) by
// learning merges from a corpus. The tiny Qwen3-architecture text encoder ships one; tests write one
// to run the real tokenizer library on a real-style file.

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
// The same split in JavaScript syntax (no inline case-insensitive group), for learning merges.
const JS_SPLIT = /'(?:[sStTmMdD]|[rR][eE]|[vV][eE]|[lL][lL])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

export const QWEN_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
/** Qwen3's thinking markers: added tokens, but not special (they survive skip_special_tokens). */
export const QWEN3_THINK_TOKENS = ['<think>', '</think>'];

/**
 * Learns up to `merges` BPE merges from `corpus` (most frequent adjacent pair first, ties by first
 * appearance; pairs seen once are not merged) over byte-level symbols, and returns the tokenizer.json
 * object. The chat tokens follow the learned vocabulary, or start at `firstAddedId` when given (a fixed
 * place at the end of the embedding, whatever the corpus taught).
 */
export function buildByteLevelBpeTokenizerJson(corpus: readonly string[], merges: number, opts: { firstAddedId?: number } = {}): object {
  const alphabet = byteLevelAlphabet();
  const encoder = new TextEncoder();
  const words = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of text.normalize('NFC').match(JS_SPLIT) ?? []) {
      const w = [...encoder.encode(piece)].map((b) => alphabet[b]).join('\u0000');
      words.set(w, (words.get(w) ?? 0) + 1);
    }
  }
  let split = [...words].map(([w, n]) => ({ symbols: w.split('\u0000'), n }));
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, i) => { vocab[c] = i; });
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
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: QWEN_SPLIT_PATTERN }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: byteLevel,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false,
      byte_fallback: false, ignore_merges: false, vocab, merges: learned,
    },
  };
}
