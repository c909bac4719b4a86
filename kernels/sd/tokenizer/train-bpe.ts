// A small byte-level BPE trainer producing CLIP-format vocab.json + merges.txt, used to build the
// tiny model's vocabulary from the procedural world's captions and a list of common words.
import { BYTE_ORDER, byteToChar, textToByteChars } from './byte-unicode';
import { cleanText, END_OF_TEXT, END_OF_WORD, splitWords, START_OF_TEXT } from './pretokenize';

export interface BpeTrainingOptions {
  /** Stop after this many merges. */
  maxMerges: number;
  /** Stop when the most frequent pair occurs fewer times than this. Default 2. */
  minPairCount?: number;
}

export interface BpeVocabulary {
  /** Merges in rank order. */
  merges: [string, string][];
  /** Token → id in CLIP's layout: 256 byte tokens, their `</w>` forms, merges, then the two specials. */
  vocab: Map<string, number>;
}

/**
 * Learns merges from texts (each text counted once per occurrence in the list). Ties between
 * equally frequent pairs go to the lexicographically smaller pair so the result is deterministic.
 */
export function trainBpe(texts: Iterable<string>, options: BpeTrainingOptions): BpeVocabulary {
  const minPairCount = options.minPairCount ?? 2;
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const word of splitWords(cleanText(text))) {
      if (word === START_OF_TEXT || word === END_OF_TEXT) continue;
      const chars = textToByteChars(word);
      wordCounts.set(chars, (wordCounts.get(chars) ?? 0) + 1);
    }
  }
  const words = [...wordCounts].map(([chars, count]) => {
    const symbols = Array.from(chars);
    symbols[symbols.length - 1] += END_OF_WORD;
    return { symbols, count };
  });

  const merges: [string, string][] = [];
  while (merges.length < options.maxMerges) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i < symbols.length - 1; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let bestKey = '';
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    if (bestCount < minPairCount) break;
    const [first, second] = bestKey.split(' ') as [string, string];
    merges.push([first, second]);
    for (const word of words) word.symbols = applyMerge(word.symbols, first, second);
  }
  return { merges, vocab: clipVocabulary(merges) };
}

function applyMerge(symbols: string[], first: string, second: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i < symbols.length - 1 && symbols[i] === first && symbols[i + 1] === second) {
      out.push(first + second);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}

/** CLIP's vocabulary layout for a merge list (a merge that rebuilds an existing token adds no id). */
export function clipVocabulary(merges: readonly [string, string][]): Map<string, number> {
  const vocab = new Map<string, number>();
  const add = (token: string) => {
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  };
  for (const b of BYTE_ORDER) add(byteToChar[b]);
  for (const b of BYTE_ORDER) add(byteToChar[b] + END_OF_WORD);
  for (const [a, b] of merges) add(a + b);
  add(START_OF_TEXT);
  add(END_OF_TEXT);
  return vocab;
}

/** vocab.json text: one object, keys in id order, as transformers writes it (compact). */
export function formatVocabJson(vocab: Map<string, number>): string {
  const entries = [...vocab].sort((a, b) => a[1] - b[1]);
  return `{${entries.map(([token, id]) => `${JSON.stringify(token)}:${id}`).join(',')}}\n`;
}

/** merges.txt text with CLIP's "#version: 0.2" header. */
export function formatMergesTxt(merges: readonly [string, string][]): string {
  return `#version: 0.2\n${merges.map(([a, b]) => `${a} ${b}`).join('\n')}\n`;
}
