// CLIP's prompt tokenizer run by @huggingface/tokenizers from a tokenizer.json (FLUX.1's CLIP-L): the
// folder's own tokenizer.json when it has one, else the one transformers' CLIPTokenizerFast converts
// from the vocab.json + merges.txt pair that diffusers and ComfyUI folders ship. That file's pieces, as
// transformers writes them: NFC, whitespace runs to one space, lowercase; CLIP's word pattern (the two
// specials, contractions, letter runs, single digits, other symbol runs) then byte-level characters;
// BPE with '</w>' closing each word; BOS/EOS around the prompt. The older hand-written SD tokenizer
// (kernels/sd/tokenizer.ts) also decodes HTML entities as CLIP's slow tokenizer does; the fast one does
// not, and neither does this.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

export const CLIP_BOS = '<|startoftext|>';
export const CLIP_EOS = '<|endoftext|>';
const CLIP_WORD_PATTERN = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });

/** CLIP's tokenizer.json from a vocab.json object and the merges of merges.txt (CLIPTokenizerFast's conversion). */
export function clipTokenizerJson(vocab: Record<string, number>, merges: readonly (readonly [string, string])[]): object {
  const bos = vocab[CLIP_BOS], eos = vocab[CLIP_EOS];
  if (bos === undefined || eos === undefined) throw new Error(`not a CLIP vocabulary: ${CLIP_BOS} or ${CLIP_EOS} is missing`);
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(bos, CLIP_BOS), special(eos, CLIP_EOS)],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: CLIP_WORD_PATTERN }, behavior: 'Removed', invert: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ] },
    post_processor: { type: 'RobertaProcessing', sep: [CLIP_EOS, eos], cls: [CLIP_BOS, bos], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: CLIP_EOS, continuing_subword_prefix: '', end_of_word_suffix: '</w>', fuse_unk: false, byte_fallback: false,
      vocab, merges: merges.map(([a, b]) => [a, b]),
    },
  };
}

function readJson(path: string): Record<string, unknown> {
  try { return JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new Error(`${path}: ${(e as Error).message}`); }
}

/** The merges of a merges.txt (its '#version' line skipped); a line that is not two symbols is named. */
function readMerges(path: string): [string, string][] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: [string, string][] = [];
  lines.forEach((line, i) => {
    if (!line || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2) throw new Error(`${path}:${i + 1}: a merge is two symbols separated by one space, got '${line}'`);
    out.push([parts[0], parts[1]]);
  });
  return out;
}

const tokenContent = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'object' && v && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined);

export class ClipJsonTokenizer {
  readonly tokenizer: Tokenizer;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;

  /** `padToken`: SD 1.x and FLUX.1 pad with <|endoftext|>, SD 2.x with '!'. */
  constructor(tokenizerJson: object, opts: { padToken?: string } = {}) {
    this.tokenizer = new Tokenizer(tokenizerJson, {});
    const id = (t: string) => {
      const v = this.tokenizer.token_to_id(t);
      if (v === undefined) throw new Error(`tokenizer.json is not a CLIP tokenizer: it has no ${t}`);
      return v;
    };
    this.bosId = id(CLIP_BOS);
    this.eosId = id(CLIP_EOS);
    this.padId = id(opts.padToken ?? CLIP_EOS);
  }

  /**
   * A diffusers/transformers tokenizer/ folder: tokenizer.json when present, else vocab.json + merges.txt
   * converted; the pad token from special_tokens_map.json or tokenizer_config.json.
   */
  static fromFolder(folder: string): ClipJsonTokenizer {
    let padToken: string | undefined;
    for (const f of ['special_tokens_map.json', 'tokenizer_config.json']) {
      const p = join(folder, f);
      if (padToken === undefined && existsSync(p)) padToken = tokenContent(readJson(p).pad_token);
    }
    const jsonPath = join(folder, 'tokenizer.json');
    const json = existsSync(jsonPath)
      ? readJson(jsonPath)
      : clipTokenizerJson(readJson(join(folder, 'vocab.json')) as Record<string, number>, readMerges(join(folder, 'merges.txt')));
    try {
      return new ClipJsonTokenizer(json, { padToken });
    } catch (e) {
      throw new Error(`${folder}: ${(e as Error).message}`);
    }
  }

  get vocabSize(): number { return this.tokenizer.get_vocab(true).size; }

  /** BOS, the prompt's tokens, EOS — a long prompt is cut before its EOS — then the pad token up to `maxLength`. */
  tokenize(text: string, opts: { maxLength: number }): { ids: number[] } {
    const inner = this.tokenizer.encode(text, { add_special_tokens: false }).ids.slice(0, opts.maxLength - 2);
    const ids = [this.bosId, ...inner, this.eosId];
    while (ids.length < opts.maxLength) ids.push(this.padId);
    return { ids };
  }

  decode(ids: readonly number[], skipSpecial = true): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecial });
  }
}
