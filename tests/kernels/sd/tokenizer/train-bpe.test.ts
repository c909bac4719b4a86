// The BPE trainer: most frequent pair first, deterministic ties, CLIP's vocabulary layout, and
// files the tokenizer reads back to the same segmentation.
import { describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../../../../kernels/sd/tokenizer';
import { BYTE_ORDER, byteToChar } from '../../../../kernels/sd/tokenizer/byte-unicode';
import { clipVocabulary, formatMergesTxt, formatVocabJson, trainBpe } from '../../../../kernels/sd/tokenizer/train-bpe';

describe('trainBpe', () => {
  it('merges the most frequent pair, weighting words by how often they occur', () => {
    // "ab" ×3 and "abc" ×1: "a b</w>" occurs 3 times, "a b" and "b c</w>" once each.
    const { merges } = trainBpe(['ab ab ab abc'], { maxMerges: 10 });
    expect(merges).toEqual([['a', 'b</w>']]);
  });

  it('breaks ties by the smaller pair and honours minPairCount', () => {
    const { merges } = trainBpe(['ab ab ab abc'], { maxMerges: 10, minPairCount: 1 });
    expect(merges).toEqual([['a', 'b</w>'], ['a', 'b'], ['ab', 'c</w>']]);
  });

  it('stops at maxMerges', () => {
    expect(trainBpe(['hello hello world world'], { maxMerges: 2 }).merges).toHaveLength(2);
  });

  it('lays out the vocabulary as CLIP does: bytes, bytes</w>, merges, then the specials', () => {
    const { vocab, merges } = trainBpe(['red red red circle circle'], { maxMerges: 50 });
    expect(vocab.size).toBe(512 + merges.length + 2);
    BYTE_ORDER.forEach((b, i) => {
      expect(vocab.get(byteToChar[b])).toBe(i);
      expect(vocab.get(`${byteToChar[b]}</w>`)).toBe(256 + i);
    });
    merges.forEach(([a, b], i) => expect(vocab.get(a + b)).toBe(512 + i));
    expect(vocab.get('<|startoftext|>')).toBe(vocab.size - 2);
    expect(vocab.get('<|endoftext|>')).toBe(vocab.size - 1);
  });

  it('gives a merge that rebuilds an existing token no second id', () => {
    const vocab = clipVocabulary([['a', 'bc'], ['ab', 'c'], ['b', 'c']]);
    expect(vocab.size).toBe(512 + 2 + 2);
    expect(vocab.get('abc')).toBe(512);
    expect(vocab.get('bc')).toBe(513);
  });

  it('writes files the tokenizer reads back to whole-word tokens for the training words', () => {
    const words = ['triangle', 'background', 'purple', 'orange', 'square'];
    const { vocab, merges } = trainBpe([...words, ...words], { maxMerges: 500 });
    const tok = ClipTokenizer.fromStrings(formatVocabJson(vocab), formatMergesTxt(merges));
    for (const word of words) expect(tok.encode(word)).toEqual([vocab.get(`${word}</w>`)]);
    expect(formatMergesTxt(merges).split('\n')[0]).toBe('#version: 0.2');
  });

  it('is deterministic', () => {
    const texts = ['a red circle on a blue background', 'a green square on a white background'];
    expect(trainBpe(texts, { maxMerges: 100 })).toEqual(trainBpe(texts, { maxMerges: 100 }));
  });
});
