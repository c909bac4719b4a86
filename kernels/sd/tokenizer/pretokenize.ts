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
 * CLIP's cleanup: HTML entities decoded twice (as CLIP calls html.unescape twice), Unicode NFC (as
 * ftfy does), whitespace runs collapsed to one space, trimmed, lowercased. Emphasis syntax such as
 * "(word:1.2)" is deliberately not interpreted: it is text.
 */
export function cleanText(text: string): string {
  return unescapeHtml(unescapeHtml(text)).normalize('NFC').replace(/\s+/gu, ' ').trim().toLowerCase();
}

// The entities that turn up in scraped captions; the full HTML5 table is not worth carrying.
const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function unescapeHtml(text: string): string {
  return text.replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (entity, body: string) => {
    if (body[0] !== '#') return NAMED_ENTITIES[body] ?? entity;
    const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : '\ufffd';
  });
}

/** The words of an already cleaned text, in order. */
export function splitWords(cleaned: string): string[] {
  return cleaned.match(WORD_PATTERN) ?? [];
}
