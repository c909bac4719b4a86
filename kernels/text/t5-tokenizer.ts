// The T5 prompt tokenizer: the model's own tokenizer.json (SentencePiece Unigram with Metaspace) run by
// @huggingface/tokenizers; </s> ends every prompt, <pad> (id 0) fills to the encoder's length (512 for
// FLUX.1 dev, 256 for schnell), and a prompt too long is cut before its </s> — as transformers does.
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

export class T5PromptTokenizer {
  readonly tokenizer: Tokenizer;
  readonly padId: number;
  readonly eosId: number;

  constructor(tokenizerJson: object, tokenizerConfig: object = {}) {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    const pad = this.tokenizer.token_to_id('<pad>');
    const eos = this.tokenizer.token_to_id('</s>');
    if (pad === undefined || eos === undefined) throw new Error('tokenizer.json is not a T5 tokenizer: it has no <pad> or </s> token');
    this.padId = pad;
    this.eosId = eos;
  }

  static fromFile(path: string): T5PromptTokenizer {
    let json: object;
    try { json = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new Error(`${path}: ${(e as Error).message}`); }
    return new T5PromptTokenizer(json);
  }

  get vocabSize(): number { return this.tokenizer.get_vocab(true).size; }

  /** One prompt's ids: pieces, </s>, then <pad> up to `maxLength`. */
  tokenize(text: string, opts: { maxLength: number }): { ids: number[] } {
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids.slice(0, opts.maxLength - 1);
    ids.push(this.eosId);
    while (ids.length < opts.maxLength) ids.push(this.padId);
    return { ids };
  }

  decode(ids: readonly number[], skipSpecial = true): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecial });
  }
}
