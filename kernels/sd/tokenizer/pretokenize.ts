// CLIP's text cleanup and word splitting, shared by the tokenizer and the BPE trainer so that
// a vocabulary is trained on exactly the words the tokenizer will later see.

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
export const END_OF_WORD = '</w>';

// CLIP's pattern: the two special tokens, English contractions, runs of letters, single digits
// (so numbers are spelled digit by digit), and runs of other non-space symbols.
const WORD_PATTERN =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/gu;

/**
 * CLIP's cleanup: Unicode NFC (as ftfy does), whitespace runs collapsed to one space, trimmed,
 * lowercased. Emphasis syntax such as "(word:1.2)" is deliberately not interpreted: it is text.
 */
export function cleanText(text: string): string {
  return text.normalize('NFC').replace(/\s+/gu, ' ').trim().toLowerCase();
}

/** The words of an already cleaned text, in order. */
export function splitWords(cleaned: string): string[] {
  return cleaned.match(WORD_PATTERN) ?? [];
}
