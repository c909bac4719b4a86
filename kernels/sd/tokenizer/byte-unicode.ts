// CLIP/GPT-2's reversible byte <-> printable character table: BPE works on strings of these
// characters so every UTF-8 byte has a visible symbol and no token contains a space or control code.

/** The 256 byte characters in the table's own order (the order CLIP's vocab.json lists them in). */
export const BYTE_ORDER: readonly number[] = byteOrder();

/** byteToChar[b] is the printable character standing for byte b. */
export const byteToChar: readonly string[] = buildByteToChar();

/** The inverse of byteToChar. */
export const charToByte: ReadonlyMap<string, number> = new Map(byteToChar.map((c, b) => [c, b]));

// Printable Latin-1 bytes keep their own code point; the other 68 bytes (controls, space, DEL,
// NBSP, soft hyphen) are moved to 256, 257, ... in byte order, which is why space becomes 'Ġ'.
function isPrintableByte(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

function byteOrder(): number[] {
  const printable: number[] = [];
  const rest: number[] = [];
  for (let b = 0; b < 256; b++) (isPrintableByte(b) ? printable : rest).push(b);
  return [...printable, ...rest];
}

function buildByteToChar(): string[] {
  const table = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = isPrintableByte(b) ? String.fromCharCode(b) : String.fromCharCode(256 + shifted++);
  }
  return table;
}

const utf8 = new TextEncoder();

/** A piece of text as a string of byte characters (one character per UTF-8 byte). */
export function textToByteChars(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) out += byteToChar[b];
  return out;
}
