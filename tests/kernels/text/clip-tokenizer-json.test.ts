// CLIP through @huggingface/tokenizers (FLUX.1's CLIP-L): a real-style tokenizer.json made here from the
// SD tiny model's vocab.json + merges.txt gives the ids of the hand-written SD tokenizer on the world's
// captions and on random text, a folder with only the two files gives the same, long prompts keep their
// EOS, decoding returns the cleaned prompt, and a file that is not CLIP's is refused by folder.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { ClipJsonTokenizer, clipTokenizerJson } from '../../../kernels/text/clip-tokenizer-json';
import { worldCaptions } from '../../../kernels/sd/tiny/build-assets';

const TINY = join(import.meta.dirname, '../../../assets/tiny/tokenizer');
const dir = mkdtempSync(join(tmpdir(), 'clip-json-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vocab = JSON.parse(readFileSync(join(TINY, 'vocab.json'), 'utf8')) as Record<string, number>;
const merges = readFileSync(join(TINY, 'merges.txt'), 'utf8').split('\n').slice(1).filter(Boolean).map((l) => l.split(' ') as [string, string]);

const jsonFolder = join(dir, 'json');
mkdirSync(jsonFolder);
writeFileSync(join(jsonFolder, 'tokenizer.json'), JSON.stringify(clipTokenizerJson(vocab, merges)));
const pairFolder = join(dir, 'pair');
mkdirSync(pairFolder);
for (const f of ['vocab.json', 'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json']) copyFileSync(join(TINY, f), join(pairFolder, f));

const reference = ClipTokenizer.fromFolder(TINY);
const fromJson = ClipJsonTokenizer.fromFolder(jsonFolder);
const fromPair = ClipJsonTokenizer.fromFolder(pairFolder);
const ids = (t: { tokenize(s: string, o: { maxLength: number }): { ids: ArrayLike<number> } }, s: string, maxLength = 77) => Array.from(t.tokenize(s, { maxLength }).ids);

describe('CLIP tokenizer.json run by @huggingface/tokenizers', () => {
  it('the world\'s captions and hand-picked prompts: the same ids as the SD tokenizer, from tokenizer.json and from vocab + merges', () => {
    const prompts = [...worldCaptions(), 'photo of [trigger]', 'A  Red,\tSTAR!!  42 times', "it's the star's 3rd day", 'naïve café — “quotes” 😀', 'zzqq xyzzy', '<|endoftext|> hi', ''];
    for (const p of prompts) {
      const want = ids(reference, p);
      expect(ids(fromJson, p), p).toEqual(want);
      expect(ids(fromPair, p), p).toEqual(want);
    }
    expect(fromJson.vocabSize).toBe(reference.vocabSize);
    expect(fromJson.padId).toBe(reference.padId);
  });

  it('random text (no HTML entities, which only the slow tokenizer decodes): the same ids', () => {
    const alphabet = fc.constantFrom(...'abcxyz REDstar0123456789,.!?\'"-()[]:;/\té€ü漢😀'.split(''));
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 60 }).map((a) => a.join('')), (text) => {
      expect(ids(fromJson, text)).toEqual(ids(reference, text));
    }), { numRuns: 300 });
  });

  it('a long prompt is cut before its EOS and a short one padded, to any length', () => {
    const long = worldCaptions().slice(0, 12).join(' ');
    for (const n of [8, 77]) {
      const got = ids(fromJson, long, n);
      expect(got).toHaveLength(n);
      expect(got[0]).toBe(fromJson.bosId);
      expect(got[n - 1]).toBe(fromJson.eosId);
      expect(got).toEqual(ids(reference, long, n));
    }
    const short = ids(fromJson, 'a red star', 16);
    expect(short.slice(short.indexOf(fromJson.eosId) + 1).every((i) => i === fromJson.padId)).toBe(true);
  });

  it('decodes back to the cleaned prompt', () => {
    for (const p of worldCaptions().slice(0, 20)) expect(fromJson.decode(ids(fromJson, p))).toBe(p.toLowerCase());
  });

  it('a tokenizer.json that is not CLIP\'s is refused naming the folder', () => {
    const other = join(dir, 'other');
    mkdirSync(other);
    const json = clipTokenizerJson(vocab, merges) as { added_tokens: { content: string }[]; model: { vocab: Record<string, number> } };
    json.added_tokens = json.added_tokens.filter((t) => t.content !== '<|startoftext|>');
    delete json.model.vocab['<|startoftext|>'];
    writeFileSync(join(other, 'tokenizer.json'), JSON.stringify(json));
    expect(() => ClipJsonTokenizer.fromFolder(other)).toThrow(/other: .*not a CLIP tokenizer.*<\|startoftext\|>/);
  });
});
