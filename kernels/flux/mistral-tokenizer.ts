// The Mistral Small prompt tokenizer for FLUX.2 [dev]: the model's tokenizer.json (tekken, converted by
// transformers; the FLUX.2-dev folder's tokenizer/) run by @huggingface/tokenizers. The prompt goes in
// as BFL's Mistral3SmallEmbedder formats it — a system turn with BFL's system message, then the user
// turn, no generation prompt — rendered by Mistral Small 3.1's chat template, then left-padded with
// <pad> (the processor pads on the left) or cut to the encoder's length (512). The file's pre-tokenizer
// runs as published, as diffusers' pipeline runs it (transformers' optional fix_mistral_regex is not
// applied); a tokenizer made from tekken.json (kernels/flux/tekken.ts) splits with tekken's own pattern.
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

/** BFL's SYSTEM_MESSAGE (flux2/system_messages.py; diffusers' Flux2Pipeline.system_message). */
export const FLUX2_SYSTEM_MESSAGE = 'You are an AI that reasons about image descriptions. You give structured responses focusing on object relationships, object attribution and actions without speculation.';

/** Mistral Small 3.1's chat template for a system and a user turn; [IMG] is removed from the prompt as BFL does. */
export function mistralChatText(prompt: string, system = FLUX2_SYSTEM_MESSAGE): string {
  return `<s>[SYSTEM_PROMPT]${system}[/SYSTEM_PROMPT][INST]${prompt.replaceAll('[IMG]', '')}[/INST]`;
}

/** The control tokens the template uses, and the padding. */
const REQUIRED = ['<s>', '[SYSTEM_PROMPT]', '[/SYSTEM_PROMPT]', '[INST]', '[/INST]', '<pad>'];

export class MistralPromptTokenizer {
  readonly tokenizer: Tokenizer;
  readonly padId: number;

  constructor(tokenizerJson: object, tokenizerConfig: object = {}, readonly maxLength = 512, label = 'tokenizer.json') {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    for (const special of REQUIRED) {
      if (this.tokenizer.token_to_id(special) === undefined) throw new Error(`${label} is not a Mistral (tekken) tokenizer: it has no '${special}' token`);
    }
    this.padId = this.tokenizer.token_to_id('<pad>')!;
  }

  static fromFile(tokenizerJsonPath: string, maxLength = 512): MistralPromptTokenizer {
    let json: object;
    try { json = JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')); } catch (e) { throw new Error(`${tokenizerJsonPath}: ${(e as Error).message}`); }
    return new MistralPromptTokenizer(json, {}, maxLength, tokenizerJsonPath);
  }

  /** Tokens the model can see, added ones included (what the text encoder's embedding must cover). */
  get vocabSize(): number { return this.tokenizer.get_vocab(true).size; }

  /** Token ids of the chat-formatted prompt, before padding (the template carries <s>). */
  promptIds(prompt: string): number[] {
    return this.tokenizer.encode(mistralChatText(prompt), { add_special_tokens: false }).ids;
  }

  /** The family contract's form: one prompt's ids, the end cut past `maxLength`, <pad> in front up to it. */
  tokenize(text: string, opts: { maxLength: number }): { ids: number[] } {
    const ids = this.promptIds(text).slice(0, opts.maxLength);
    return { ids: [...new Array(opts.maxLength - ids.length).fill(this.padId), ...ids] };
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: false });
  }
}
