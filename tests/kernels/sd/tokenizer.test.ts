// The CLIP tokenizer: BPE merges applied by rank, CLIP's text cleanup and word split, BOS/EOS,
// truncation to 77 and padding, decoding, and clear errors for malformed vocab/merges files.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { byteToChar } from '../../../kernels/sd/tokenizer/byte-unicode';

// A hand-made vocabulary whose expected ids can be worked out on paper.
const HAND_VOCAB: Record<string, number> = {
  l: 0, o: 1, w: 2, e: 3, r: 4, n: 5, s: 6, t: 7,
  'l</w>': 8, 'o</w>': 9, 'w</w>': 10, 'e</w>': 11, 'r</w>': 12, 'n</w>': 13, 's</w>': 14, 't</w>': 15,
  lo: 16, low: 17, 'er</w>': 18, 'low</w>': 19, 'lower</w>': 20, ne: 21, new: 22, 'est</w>': 23, es: 24,
  ',</w>': 25, '(': 26, '(</w>': 27, ')</w>': 28,
  '<|startoftext|>': 29, '<|endoftext|>': 30,
};
const HAND_MERGES = ['#version: 0.2', 'l o', 'lo w', 'e r</w>', 'lo w</w>', 'n e', 'ne w', 'e s', 'es t</w>', 'low er</w>'].join('\n');
const BOS = 29;
const EOS = 30;

function handTokenizer(options = {}) {
  return ClipTokenizer.fromStrings(JSON.stringify(HAND_VOCAB), HAND_MERGES, options);
}

const tinyTokenizer = ClipTokenizer.fromFolder(join(import.meta.dirname, '../../../assets/tiny/tokenizer'));
const id = (token: string) => {
  const value = tinyTokenizer.tokenToId(token);
  if (value === undefined) throw new Error(`no token ${token}`);
  return value;
};
const byteIds = (text: string) => {
  const bytes = [...new TextEncoder().encode(text)];
  return bytes.map((b, i) => id(byteToChar[b] + (i === bytes.length - 1 ? '</w>' : '')));
};

describe('BPE merges on a hand-made vocabulary', () => {
  const tok = handTokenizer();

  it('merges pairs in rank order until the word is one token', () => {
    expect(tok.encode('low')).toEqual([19]);
    expect(tok.encode('lower')).toEqual([20]);
  });

  it('merges the best-ranked pair first, not the leftmost', () => {
    // "ner": "n e" (rank 4) comes first in the word, but "e r</w>" (rank 2) ranks higher.
    expect(tok.encode('ner')).toEqual([5, 18]);
  });

  it('stops when no remaining pair has a merge', () => {
    expect(tok.encode('newest')).toEqual([22, 23]);
    expect(tok.encode('lowest')).toEqual([17, 23]);
  });

  it('marks only the last character of a word with </w>', () => {
    // "lolo": the first "l o" merges, the final "l o</w>" is a different pair and does not.
    expect(tok.encode('lolo')).toEqual([16, 0, 9]);
  });

  it('lowercases, collapses whitespace and splits punctuation into its own words', () => {
    expect(tok.encode('  LOWER,\t\n Low  ')).toEqual([20, 25, 19]);
  });

  it('reads the special tokens written in the text as themselves', () => {
    expect(tok.encode('<|startoftext|>low<|endoftext|>')).toEqual([BOS, 19, EOS]);
  });

  it('wraps in BOS/EOS and pads with EOS by default', () => {
    const out = tok.tokenize('low lower', { maxLength: 6 });
    expect([...out.ids]).toEqual([BOS, 19, 20, EOS, EOS, EOS]);
    expect(out.length).toBe(4);
    expect(out.truncated).toBe(false);
  });

  it('pads with a configured pad token', () => {
    const sd2Style = handTokenizer({ padToken: ',</w>' });
    expect([...sd2Style.tokenize('low', { maxLength: 5 }).ids]).toEqual([BOS, 19, EOS, 25, 25]);
  });

  it('cuts long prompts and keeps EOS last', () => {
    const out = tok.tokenize('low lower low lower low', { maxLength: 4 });
    expect([...out.ids]).toEqual([BOS, 19, 20, EOS]);
    expect(out.truncated).toBe(true);
    expect(out.length).toBe(4);
  });

  it('decodes ids back to words separated by spaces, skipping specials', () => {
    expect(tok.decode([BOS, 20, 22, 23, 25, EOS, EOS])).toBe('lower newest ,');
    expect(tok.decode([BOS, 19, EOS], { skipSpecialTokens: false })).toBe('<|startoftext|>low <|endoftext|>');
  });

  it('names the token when BPE produces one the vocabulary lacks', () => {
    expect(() => tok.encode('x')).toThrow(/"x<\/w>".*not in the vocabulary/);
  });
});

describe('the tiny model vocabulary (CLIP layout)', () => {
  it('has the byte tokens, their </w> forms and the specials where CLIP puts them', () => {
    expect(id('!')).toBe(0);
    expect(id('a')).toBe(64);
    expect(id('a</w>')).toBe(320); // "a" is id 320 in CLIP ViT-L/14's vocabulary too
    expect(id('Ġ')).toBe(220); // the space byte
    expect(tinyTokenizer.eosId).toBe(tinyTokenizer.vocabSize - 1);
    expect(tinyTokenizer.bosId).toBe(tinyTokenizer.vocabSize - 2);
    expect(tinyTokenizer.padId).toBe(tinyTokenizer.eosId);
  });

  it('gives every word of a caption its own token', () => {
    const ids = tinyTokenizer.encode('a red circle on a blue background');
    expect(ids).toEqual(['a', 'red', 'circle', 'on', 'a', 'blue', 'background'].map((w) => id(`${w}</w>`)));
  });

  it('splits punctuation, digits and contractions as CLIP does', () => {
    expect(tinyTokenizer.encode('star, 2024!')).toEqual([id('star</w>'), id(',</w>'), id('2</w>'), id('0</w>'), id('2</w>'), id('4</w>'), id('!</w>')]);
    expect(tinyTokenizer.decode(tinyTokenizer.encode("It's a STAR!!"))).toBe("it 's a star !!");
  });

  it('encodes accents, CJK and emoji byte by byte and decodes them back', () => {
    expect(tinyTokenizer.encode('猫')).toEqual(byteIds('猫'));
    expect(tinyTokenizer.encode('🙂')).toEqual(byteIds('🙂'));
    for (const text of ['café crème', 'naïve façade', '猫 と 犬', 'a 🙂 star', 'ÅNGSTRÖM']) {
      expect(tinyTokenizer.decode(tinyTokenizer.encode(text))).toBe(text.toLowerCase());
    }
  });

  it('decodes HTML entities as CLIP does', () => {
    expect(tinyTokenizer.encode('black &amp; white &#38;amp; &lt;3 &#x1F642;')).toEqual(tinyTokenizer.encode('black & white & <3 🙂'));
    expect(tinyTokenizer.decode(tinyTokenizer.encode('&bogus; &#0;'))).toBe('& bogus ; �');
  });

  it('treats composed and decomposed accents alike (NFC)', () => {
    expect(tinyTokenizer.encode('cafe\u0301')).toEqual(tinyTokenizer.encode('caf\u00e9'));
  });

  it('does not parse emphasis syntax: brackets and weights are plain tokens', () => {
    const ids = tinyTokenizer.encode('(red:1.5) [circle]');
    expect(tinyTokenizer.decode(ids)).toBe('( red : 1 . 5 ) [ circle ]');
    expect(ids).toContain(id('red</w>'));
    expect(ids).toContain(id('circle</w>'));
    expect(ids).toHaveLength(10);
  });

  it('truncates a long prompt to 77 ids with BOS first and EOS last', () => {
    const prompt = Array.from({ length: 120 }, (_, i) => (i % 2 ? 'red' : 'circle')).join(' ');
    const body = tinyTokenizer.encode(prompt);
    const out = tinyTokenizer.tokenize(prompt);
    expect(out.ids).toBeInstanceOf(Int32Array);
    expect(out.ids).toHaveLength(77);
    expect(out.length).toBe(77);
    expect(out.truncated).toBe(true);
    expect(out.ids[0]).toBe(tinyTokenizer.bosId);
    expect(out.ids[76]).toBe(tinyTokenizer.eosId);
    expect([...out.ids.slice(1, 76)]).toEqual(body.slice(0, 75));
  });

  it('pads a short prompt to 77 with EOS, or leaves it unpadded on request', () => {
    const out = tinyTokenizer.tokenize('a red star');
    expect(out.length).toBe(5);
    expect([...out.ids.slice(5)]).toEqual(new Array(72).fill(tinyTokenizer.eosId));
    expect(tinyTokenizer.tokenize('a red star', { padding: false }).ids).toHaveLength(5);
    expect([...tinyTokenizer.tokenize('').ids.slice(0, 3)]).toEqual([tinyTokenizer.bosId, tinyTokenizer.eosId, tinyTokenizer.eosId]);
  });

  it('re-encodes its own decoding to the same ids for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (text) => {
        const ids = tinyTokenizer.encode(text);
        expect(tinyTokenizer.encode(tinyTokenizer.decode(ids))).toEqual(ids);
      }),
      { numRuns: 300 },
    );
  });
});

describe('malformed tokenizer files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-tokenizer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const goodVocab = write('vocab.json', JSON.stringify(HAND_VOCAB));
  const goodMerges = write('merges.txt', HAND_MERGES);

  it('loads the good pair from files', () => {
    expect(ClipTokenizer.fromFiles(goodVocab, goodMerges).encode('lower')).toEqual([20]);
  });

  it('names a vocab.json that is not JSON', () => {
    const bad = write('broken-vocab.json', '{"a": 1,');
    expect(() => ClipTokenizer.fromFiles(bad, goodMerges)).toThrow(/broken-vocab\.json: not valid JSON/);
  });

  it('names a vocab.json with a non-integer id or a shared id', () => {
    const fractional = write('fractional.json', JSON.stringify({ ...HAND_VOCAB, l: 0.5 }));
    expect(() => ClipTokenizer.fromFiles(fractional, goodMerges)).toThrow(/fractional\.json: token "l" has id 0\.5/);
    const shared = write('shared.json', JSON.stringify({ ...HAND_VOCAB, l: 1 }));
    expect(() => ClipTokenizer.fromFiles(shared, goodMerges)).toThrow(/shared\.json: tokens .* share id 1/);
  });

  it('names a vocabulary without the special tokens', () => {
    const { '<|endoftext|>': _eos, ...withoutEos } = HAND_VOCAB;
    const path = write('no-eos.json', JSON.stringify(withoutEos));
    expect(() => ClipTokenizer.fromFiles(path, goodMerges)).toThrow(/no-eos\.json: the vocabulary has no "<\|endoftext\|>"/);
  });

  it('names the file and line of a malformed merge', () => {
    const path = write('bad-merges.txt', '#version: 0.2\nl o\nlo w extra\n');
    expect(() => ClipTokenizer.fromFiles(goodVocab, path)).toThrow(/bad-merges\.txt, line 3: expected two tokens/);
    const missing = write('unknown-merge.txt', '#version: 0.2\nl o\nt s\n');
    expect(() => ClipTokenizer.fromFiles(goodVocab, missing)).toThrow(/unknown-merge\.txt, line 3: .*"ts"/);
  });

  it('names a file that cannot be read', () => {
    expect(() => ClipTokenizer.fromFiles(join(dir, 'absent.json'), goodMerges)).toThrow(/cannot read tokenizer file .*absent\.json/);
  });

  it('takes the pad token and context length from a tokenizer folder', () => {
    const folder = join(dir, 'sd2-style');
    mkdirSync(folder);
    writeFileSync(join(folder, 'vocab.json'), JSON.stringify(HAND_VOCAB));
    writeFileSync(join(folder, 'merges.txt'), HAND_MERGES);
    writeFileSync(join(folder, 'special_tokens_map.json'), JSON.stringify({ pad_token: { content: ',</w>' } }));
    writeFileSync(join(folder, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 8 }));
    const tok = ClipTokenizer.fromFolder(folder);
    expect(tok.padId).toBe(25);
    expect(tok.tokenize('low')).toMatchObject({ length: 3 });
    expect([...tok.tokenize('low').ids]).toEqual([BOS, 19, EOS, 25, 25, 25, 25, 25]);
  });
});
