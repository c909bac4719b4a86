// Tekken's pre-tokenization as @huggingface/tokenizers runs it. tekken.json's pattern (transformers'
// fix_mistral_regex pattern) splits letters at case changes and digits one by one; the library
// translates the file's Oniguruma pattern itself and cuts exactly where the pattern, run by the
// JavaScript engine directly, cuts. The tiny tekken-style tokenizer.json learns its merges inside those
// pieces (the library cuts the corpus), round trips text, and equals the file made from its tekken.json.
// A file carrying the pattern the published Mistral-Small-3.1 tokenizer.json has (Llama 3's) runs as
// published: the library applies whatever Split the file names.
import { describe, it, expect } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { buildTekkenStyleTokenizerJson, TEKKEN_SPLIT_PATTERN } from '../../../kernels/flux/tekken-tokenizer-json';
import { byteLevelAlphabet, splitThenByteLevel } from '../../../kernels/flux/bpe-tokenizer-json';
import { tekkenToTokenizerJson } from '../../../kernels/flux/tekken';
import { MistralPromptTokenizer } from '../../../kernels/flux/mistral-tokenizer';
import { tekkenOf } from './tiny-dev-files';

/** The pattern in Mistral-Small-3.1-24B's published tokenizer.json (Llama 3's; transformers warns it is not tekken's). */
const PUBLISHED_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const SAMPLES = ['eBay sells NaOH at pH 7', 'in 2025, 1234567 items', "don't STOP: CamelCaseWord café ✨\n\n  ok", 'a/b/c\r\nx'];

/** A tokenizer whose vocabulary is the 256 byte characters: what its pre-tokenizer cuts is all it shows. */
function cutterFor(pattern: string): Tokenizer {
  const vocab = Object.fromEntries(byteLevelAlphabet().map((c, i) => [c, i]));
  return new Tokenizer({
    version: '1.0', added_tokens: [], normalizer: null, pre_tokenizer: splitThenByteLevel(pattern, true), post_processor: null, decoder: null,
    model: { type: 'BPE', vocab, merges: [], dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false },
  }, {});
}

/** Text → ByteLevel characters, to compare with the library's pieces. */
const byteLevel = (s: string) => { const a = byteLevelAlphabet(); return Array.from(new TextEncoder().encode(s), (b) => a[b]).join(''); };

describe('tekken split in @huggingface/tokenizers', () => {
  it('the library cuts where tekken\'s pattern cuts (the JavaScript engine\'s own matches of the same pattern)', () => {
    const cut = cutterFor(TEKKEN_SPLIT_PATTERN);
    const direct = new RegExp(TEKKEN_SPLIT_PATTERN, 'gu');
    for (const text of SAMPLES) expect(cut.pre_tokenizer!.pre_tokenize(text)).toEqual((text.match(direct) ?? []).map(byteLevel));
    // What sets tekken apart: case changes and single digits.
    expect(cut.pre_tokenizer!.pre_tokenize('eBay NaOH 2025')).toEqual(['e', 'Bay', 'ĠNa', 'OH', 'Ġ', '2', '0', '2', '5']);
  });

  it('a file with the published (Llama 3) pattern is cut as that pattern says: whole letter runs, digits in threes', () => {
    const cut = cutterFor(PUBLISHED_PATTERN);
    expect(cut.pre_tokenizer!.pre_tokenize('eBay NaOH 2025')).toEqual(['eBay', 'ĠNaOH', 'Ġ', '202', '5']);
    expect(cut.pre_tokenizer!.pre_tokenize('iPhone')).toEqual(['iPhone']);
    expect(cutterFor(TEKKEN_SPLIT_PATTERN).pre_tokenizer!.pre_tokenize('iPhone')).toEqual(['i', 'Phone']);
  });

  it('the tekken-style tokenizer.json learns merges inside tekken\'s pieces, round trips text, and equals the file made from its tekken.json', () => {
    const corpus = ['eBay eBay eBay NaOH NaOH NaOH 2025 2025', 'a red circle on a blue background', 'CamelCase CamelCase'];
    const json = buildTekkenStyleTokenizerJson(corpus, 40) as Parameters<typeof tekkenOf>[0] & { model: { merges: [string, string][] } };
    const cut = cutterFor(TEKKEN_SPLIT_PATTERN);
    const pieces = new Set(corpus.flatMap((t) => cut.pre_tokenizer!.pre_tokenize(t)));
    // Every learned token lies inside one of tekken's pieces: none spans e|Bay, Na|OH or 2|0.
    for (const [a, b] of json.model.merges) expect([...pieces].some((p) => p.includes(a + b)), `${a}+${b}`).toBe(true);
    expect(json.model.merges.length).toBeGreaterThan(5);
    expect(json.model.vocab.eB).toBeUndefined();
    expect(json.model.vocab.Bay).toBeDefined();
    const tok = new Tokenizer(json, {});
    for (const text of [...SAMPLES, ...corpus]) {
      const ids = tok.encode(text, { add_special_tokens: false }).ids;
      expect(tok.decode(ids, { skip_special_tokens: false })).toBe(text);
    }
    expect(tok.encode('eBay', { add_special_tokens: false }).tokens).toEqual(['e', 'Bay']);
    // transformers' conversion of the matching tekken.json carries tekken's pattern and tokenizes the same.
    const converted = tekkenToTokenizerJson(tekkenOf(json));
    const a = new MistralPromptTokenizer(json, {}, 200), b = new MistralPromptTokenizer(converted, {}, 200);
    for (const text of SAMPLES) expect(b.promptIds(text)).toEqual(a.promptIds(text));
  });
});
