// Mistral's own tokenizer file, tekken.json (mistral_common; ComfyUI embeds it in its Mistral text
// encoder files as the byte tensor `tekken_model`), turned into the tokenizer.json layout
// @huggingface/tokenizers runs, as transformers converts it: control tokens at their ranks, the
// byte-level vocabulary after them (id = rank + number of control tokens, cut at the default vocabulary
// size), tekken's split pattern, and merges recovered from the ranks — tiktoken-style BPE merges the
// pair whose joined token ranks lowest, so each token's splits into two known tokens become merges in
// the order of the token's rank.
import { openSafetensors } from '../io/safetensors';
import { byteLevelAlphabet } from './bpe-tokenizer-json';

export interface TekkenJson {
  config: { pattern: string; default_vocab_size?: number; default_num_special_tokens?: number };
  vocab: { rank: number; token_bytes: string }[];
  special_tokens: { rank: number; token_str: string }[];
}

export function tekkenToTokenizerJson(tekken: TekkenJson): object {
  const specials = tekken.special_tokens;
  const offset = tekken.config.default_num_special_tokens ?? specials.length;
  const maxRank = (tekken.config.default_vocab_size ?? offset + tekken.vocab.length) - offset;
  const alphabet = byteLevelAlphabet();
  // Tokens by their bytes read as latin1 (one char per byte): a cheap exact key.
  const rankOf = new Map<string, number>();
  for (const t of tekken.vocab) if (t.rank < maxRank) rankOf.set(Buffer.from(t.token_bytes, 'base64').toString('latin1'), t.rank);
  const byteLevel = (latin1: string) => Array.from(latin1, (c) => alphabet[c.charCodeAt(0)]).join('');
  const vocab: Record<string, number> = {};
  for (const s of specials) vocab[s.token_str] = s.rank;
  const merges: { pair: [string, string]; rank: number; left: number; right: number }[] = [];
  for (const [token, rank] of rankOf) {
    vocab[byteLevel(token)] = rank + offset;
    for (let i = 1; i < token.length; i++) {
      const left = rankOf.get(token.slice(0, i)), right = rankOf.get(token.slice(i));
      if (left !== undefined && right !== undefined) merges.push({ pair: [byteLevel(token.slice(0, i)), byteLevel(token.slice(i))], rank, left, right });
    }
  }
  merges.sort((a, b) => a.rank - b.rank || a.left - b.left || a.right - b.right);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s) => ({ id: s.rank, content: s.token_str, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: tekken.config.pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false,
      // tiktoken takes a piece whole when it is a token, before any merge.
      byte_fallback: false, ignore_merges: true, vocab, merges: merges.map((m) => m.pair),
    },
  };
}

/** The tokenizer.json of the tekken.json a text encoder file carries as `tekken_model` (ComfyUI's files), or undefined. */
export async function embeddedTekkenTokenizerJson(file: string): Promise<object | undefined> {
  const r = await openSafetensors(file);
  try {
    if (!r.has('tekken_model')) return undefined;
    const raw = await r.readRaw('tekken_model');
    const bytes = new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength);
    let tekken: TekkenJson;
    try { tekken = JSON.parse(Buffer.from(bytes).toString('utf8')); } catch (e) { throw new Error(`${file}: tekken_model is not tekken JSON (${(e as Error).message})`); }
    if (!tekken.config?.pattern || !Array.isArray(tekken.vocab) || !Array.isArray(tekken.special_tokens)) throw new Error(`${file}: tekken_model lacks config.pattern, vocab or special_tokens`);
    return tekkenToTokenizerJson(tekken);
  } finally {
    await r.close();
  }
}
