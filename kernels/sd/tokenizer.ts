// CLIP's byte-level BPE tokenizer (SD 1.x text encoder), reading the standard vocab.json +
// merges.txt pair shipped in a diffusers `tokenizer/` folder or with openai/clip-vit-large-patch14.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { charToByte, textToByteChars } from './tokenizer/byte-unicode';
import { cleanText, END_OF_TEXT, END_OF_WORD, splitWords, START_OF_TEXT } from './tokenizer/pretokenize';

export { START_OF_TEXT, END_OF_TEXT } from './tokenizer/pretokenize';

export interface ClipTokenizerOptions {
  /** Token used to fill a prompt up to maxLength. SD 1.x pads with <|endoftext|> (49407); SD 2.x with "!". */
  padToken?: string;
  /** Default length of `tokenize` (CLIP's context length). */
  maxLength?: number;
}

export interface TokenizeOptions {
  /** Total length including BOS and EOS; longer prompts are cut, keeping EOS last. Default 77. */
  maxLength?: number;
  /** Fill up to maxLength with the pad token. Default true. */
  padding?: boolean;
}

export interface TokenizedPrompt {
  /** BOS, the prompt's tokens, EOS, then padding. */
  ids: Int32Array;
  /** Number of ids before the padding (BOS and EOS included); EOS sits at length - 1. */
  length: number;
  /** True when the prompt had more tokens than fit and was cut. */
  truncated: boolean;
}

export interface DecodeOptions {
  /** Leave out BOS, EOS and the pad token. Default true. */
  skipSpecialTokens?: boolean;
}

export const CLIP_CONTEXT_LENGTH = 77;

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly maxLength: number;
  private readonly idToToken: string[];
  private readonly mergeRanks: Map<string, number>;
  private readonly wordCache = new Map<string, number[]>();

  private constructor(
    private readonly vocab: Map<string, number>,
    merges: [string, string][],
    options: ClipTokenizerOptions,
    private readonly sourceName: string,
  ) {
    this.idToToken = [];
    for (const [token, id] of vocab) this.idToToken[id] = token;
    this.mergeRanks = new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    this.bosId = this.requireToken(START_OF_TEXT);
    this.eosId = this.requireToken(END_OF_TEXT);
    this.padId = this.requireToken(options.padToken ?? END_OF_TEXT);
    this.maxLength = options.maxLength ?? CLIP_CONTEXT_LENGTH;
    if (!Number.isInteger(this.maxLength) || this.maxLength < 2) {
      throw new Error(`${sourceName}: maxLength must be an integer >= 2, got ${this.maxLength}`);
    }
  }

  /** Reads vocab.json and merges.txt; a malformed file is reported by name (and line for merges). */
  static fromFiles(vocabPath: string, mergesPath: string, options: ClipTokenizerOptions = {}): ClipTokenizer {
    const vocabText = readTextFile(vocabPath);
    const mergesText = readTextFile(mergesPath);
    return ClipTokenizer.fromStrings(vocabText, mergesText, options, { vocab: vocabPath, merges: mergesPath });
  }

  /**
   * Reads a diffusers/transformers `tokenizer/` folder: vocab.json, merges.txt, and when present
   * the pad token from special_tokens_map.json and model_max_length from tokenizer_config.json.
   */
  static fromFolder(folder: string, options: ClipTokenizerOptions = {}): ClipTokenizer {
    const fromConfig: ClipTokenizerOptions = {};
    const specialPath = join(folder, 'special_tokens_map.json');
    if (existsSync(specialPath)) {
      const pad = tokenContent(parseJsonFile(specialPath).pad_token, specialPath, 'pad_token');
      if (pad !== undefined) fromConfig.padToken = pad;
    }
    const configPath = join(folder, 'tokenizer_config.json');
    if (existsSync(configPath)) {
      const config = parseJsonFile(configPath);
      const pad = tokenContent(config.pad_token, configPath, 'pad_token');
      if (pad !== undefined && fromConfig.padToken === undefined) fromConfig.padToken = pad;
      const max = config.model_max_length;
      // transformers writes a huge sentinel when no limit was set; only a real context length counts.
      if (typeof max === 'number' && Number.isInteger(max) && max >= 2 && max <= 4096) fromConfig.maxLength = max;
    }
    return ClipTokenizer.fromFiles(join(folder, 'vocab.json'), join(folder, 'merges.txt'), {
      ...fromConfig,
      ...options,
    });
  }

  /** Builds a tokenizer from the two files' contents; `names` label errors. */
  static fromStrings(
    vocabJson: string,
    mergesText: string,
    options: ClipTokenizerOptions = {},
    names: { vocab: string; merges: string } = { vocab: 'vocab.json', merges: 'merges.txt' },
  ): ClipTokenizer {
    const vocab = parseVocab(vocabJson, names.vocab);
    const merges = parseMerges(mergesText, names.merges, vocab);
    return new ClipTokenizer(vocab, merges, options, names.vocab);
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  /** Id of a token string (e.g. "red</w>"), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** Token string of an id, or undefined. */
  idToTokenString(id: number): string | undefined {
    return this.idToToken[id];
  }

  /** The prompt's token ids, without BOS/EOS and without any length limit. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const word of splitWords(cleanText(text))) {
      if (word === START_OF_TEXT) ids.push(this.bosId);
      else if (word === END_OF_TEXT) ids.push(this.eosId);
      else ids.push(...this.encodeWord(textToByteChars(word)));
    }
    return ids;
  }

  /** BOS + tokens + EOS, cut to maxLength (EOS kept last) and padded with the pad token. */
  tokenize(text: string, options: TokenizeOptions = {}): TokenizedPrompt {
    const maxLength = options.maxLength ?? this.maxLength;
    if (!Number.isInteger(maxLength) || maxLength < 2) {
      throw new Error(`tokenize: maxLength must be an integer >= 2, got ${maxLength}`);
    }
    const body = this.encode(text);
    const room = maxLength - 2;
    const truncated = body.length > room;
    const kept = truncated ? body.slice(0, room) : body;
    const length = kept.length + 2;
    const ids = new Int32Array(options.padding === false ? length : maxLength).fill(this.padId);
    ids[0] = this.bosId;
    ids.set(kept, 1);
    ids[length - 1] = this.eosId;
    return { ids, length, truncated };
  }

  /** Text of a list of ids; word ends become spaces. Invalid UTF-8 becomes U+FFFD. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? true;
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const token = this.idToToken[id];
      if (token === undefined) throw new Error(`decode: token id ${id} is not in the vocabulary (size ${this.vocab.size})`);
      const special = id === this.bosId || id === this.eosId || id === this.padId;
      if (special && skipSpecial) continue;
      if (token === START_OF_TEXT || token === END_OF_TEXT) {
        for (const b of new TextEncoder().encode(token)) bytes.push(b);
        continue;
      }
      const endsWord = token.endsWith(END_OF_WORD);
      const stem = endsWord ? token.slice(0, -END_OF_WORD.length) : token;
      for (const ch of stem) {
        const b = charToByte.get(ch);
        if (b === undefined) throw new Error(`decode: token ${JSON.stringify(token)} (id ${id}) is not made of byte characters`);
        bytes.push(b);
      }
      if (endsWord) bytes.push(0x20);
    }
    return new TextDecoder('utf-8', { fatal: false }).decode(new Uint8Array(bytes)).trim();
  }

  private requireToken(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`${this.sourceName}: the vocabulary has no ${JSON.stringify(token)} token`);
    return id;
  }

  // Merges the lowest-ranked adjacent pair until none is known; the last character carries the
  // end-of-word mark from the start so word-final pieces get their own ids.
  private encodeWord(chars: string): number[] {
    const cached = this.wordCache.get(chars);
    if (cached) return cached;
    const symbols = Array.from(chars);
    symbols[symbols.length - 1] += END_OF_WORD;
    while (symbols.length > 1) {
      let bestRank = Infinity;
      let bestAt = -1;
      for (let i = 0; i < symbols.length - 1; i++) {
        const rank = this.mergeRanks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      const first = symbols[bestAt];
      const second = symbols[bestAt + 1];
      // Every occurrence of the chosen pair is merged in one left-to-right pass, as CLIP does.
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === first && symbols[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(symbols[i]);
        }
      }
      symbols.splice(0, symbols.length, ...merged);
    }
    const ids = symbols.map((s) => {
      const id = this.vocab.get(s);
      if (id === undefined) throw new Error(`${this.sourceName}: BPE produced ${JSON.stringify(s)}, which is not in the vocabulary`);
      return id;
    });
    if (this.wordCache.size < 50_000) this.wordCache.set(chars, ids);
    return ids;
  }
}

function readTextFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read tokenizer file ${path}: ${(err as Error).message}`);
  }
}

function parseJsonFile(path: string): Record<string, unknown> {
  const text = readTextFile(path);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path}: expected a JSON object`);
  return value as Record<string, unknown>;
}

// transformers writes special tokens either as a plain string or as {content: "..."}.
function tokenContent(value: unknown, path: string, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  throw new Error(`${path}: field ${field} must be a string or {"content": string}`);
}

function parseVocab(text: string, name: string): Map<string, number> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${name}: expected a JSON object mapping token strings to ids`);
  }
  const vocab = new Map<string, number>();
  const seenIds = new Map<number, string>();
  for (const [token, id] of Object.entries(value)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`${name}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}; ids must be non-negative integers`);
    }
    const other = seenIds.get(id);
    if (other !== undefined) throw new Error(`${name}: tokens ${JSON.stringify(other)} and ${JSON.stringify(token)} share id ${id}`);
    seenIds.set(id, token);
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new Error(`${name}: the vocabulary is empty`);
  return vocab;
}

function parseMerges(text: string, name: string, vocab: Map<string, number>): [string, string][] {
  const merges: [string, string][] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    // The first line of CLIP's file is a "#version: 0.2" header; blank lines carry nothing.
    if (line.trim() === '' || (i === 0 && line.startsWith('#version'))) continue;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`${name}, line ${i + 1}: expected two tokens separated by one space, got ${JSON.stringify(line)}`);
    }
    const merged = parts[0] + parts[1];
    if (!vocab.has(merged)) {
      throw new Error(`${name}, line ${i + 1}: merge ${JSON.stringify(line)} makes ${JSON.stringify(merged)}, which vocab.json does not contain`);
    }
    merges.push([parts[0], parts[1]]);
  }
  return merges;
}
