// Makes a small SentencePiece-Unigram tokenizer.json in T5's layout (Metaspace "▁" pre-tokenizer and
// decoder, </s> appended by the post-processor, <pad> 0, </s> 1, <unk> 2) from a corpus: every character
// a piece, every word a piece scored by its frequency. Tests run the real tokenizer library on it; a tiny
// T5 would ship one.
export function buildUnigramTokenizerJson(corpus: readonly string[]): object {
  const words = new Map<string, number>();
  const chars = new Set<string>();
  for (const text of corpus) for (const w of text.split(/\s+/).filter(Boolean)) {
    words.set(`▁${w}`, (words.get(`▁${w}`) ?? 0) + 1);
    for (const ch of w) chars.add(ch);
  }
  const total = [...words.values()].reduce((a, b) => a + b, 0) || 1;
  // Whole words beat spelling out: a word's log-probability is above the sum of its characters'.
  const vocab: [string, number][] = [['<pad>', 0], ['</s>', 0], ['<unk>', 0], ['▁', -3]];
  for (const [w, n] of [...words].sort((a, b) => b[1] - a[1])) vocab.push([w, Math.log(n / total)]);
  for (const ch of [...chars].sort()) vocab.push([ch, -10], [`▁${ch}`, -10.5]);
  const metaspace = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
  const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special('<pad>', 0), special('</s>', 1), special('<unk>', 2)],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: metaspace,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: metaspace,
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
}
