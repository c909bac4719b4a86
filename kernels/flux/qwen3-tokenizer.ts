// The Qwen3 prompt tokenizer for FLUX.2 [klein]: the model's own tokenizer.json run by
// @huggingface/tokenizers, the prompt wrapped in Qwen3's chat template as a user turn with the
// generation prompt and thinking disabled (what `apply_chat_template(..., enable_thinking=False)`
// renders), then padded with <|endoftext|> or truncated to the encoder's length (512 for klein).
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import type { HostTensor } from '../tensor';

/** Qwen3's chat template for one user message, generation prompt on, thinking off. */
export function qwen3ChatText(prompt: string): string {
  return `<|im_start|>user\n${prompt}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`;
}

export interface Qwen3Tokens {
  /** [B, L] int64 token ids. */
  ids: HostTensor;
  /** [B, L] float32: 1 for prompt tokens, 0 for padding. */
  mask: HostTensor;
  /** Tokens before padding per prompt (after truncation). */
  lengths: number[];
}

export class Qwen3PromptTokenizer {
  readonly tokenizer: Tokenizer;
  readonly padId: number;

  constructor(tokenizerJson: object, tokenizerConfig: object = {}, readonly maxLength = 512) {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    for (const special of ['<|im_start|>', '<|im_end|>', '<|endoftext|>']) {
      if (this.tokenizer.token_to_id(special) === undefined) throw new Error(`tokenizer.json is not a Qwen tokenizer: it has no '${special}' token`);
    }
    this.padId = this.tokenizer.token_to_id('<|endoftext|>')!;
  }

  /** Reads `tokenizer.json` (and `tokenizer_config.json` beside it, when given). */
  static fromFiles(tokenizerJsonPath: string, configPath?: string, maxLength = 512): Qwen3PromptTokenizer {
    const parse = (p: string) => {
      try { return JSON.parse(readFileSync(p, 'utf8')); } catch (e) { throw new Error(`${p}: ${(e as Error).message}`); }
    };
    return new Qwen3PromptTokenizer(parse(tokenizerJsonPath), configPath ? parse(configPath) : {}, maxLength);
  }

  /** Tokens the model can see, added ones included (what the text encoder's embedding must cover). */
  get vocabSize(): number { return this.tokenizer.get_vocab(true).size; }

  /** The family contract's form: one prompt's ids, chat-formatted, padded or cut to `maxLength`. */
  tokenize(text: string, opts: { maxLength: number }): { ids: number[] } {
    const ids = this.promptIds(text).slice(0, opts.maxLength);
    while (ids.length < opts.maxLength) ids.push(this.padId);
    return { ids };
  }

  /** Token ids of the chat-formatted prompt, before padding. */
  promptIds(prompt: string): number[] {
    return this.tokenizer.encode(qwen3ChatText(prompt), { add_special_tokens: false }).ids;
  }

  encode(prompts: readonly string[]): Qwen3Tokens {
    const n = this.maxLength;
    const ids = new BigInt64Array(prompts.length * n).fill(BigInt(this.padId));
    const mask = new Float32Array(prompts.length * n);
    const lengths = prompts.map((p, b) => {
      const t = this.promptIds(p).slice(0, n);
      t.forEach((id, i) => { ids[b * n + i] = BigInt(id); mask[b * n + i] = 1; });
      return t.length;
    });
    return { ids: { dtype: 'int64', shape: [prompts.length, n], data: ids }, mask: { dtype: 'float32', shape: [prompts.length, n], data: mask }, lengths };
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: false });
  }
}
