// Reading caption files next to images: strict UTF-8 (a clear error otherwise), BOM stripped,
// line breaks folded into spaces.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** ".txt" for "txt" or ".txt"; the caption extension as users type it. */
export function normalizeCaptionExtension(extension: string): string {
  const e = extension.trim();
  if (e === '' || e === '.') throw new Error('captionExtension: must not be empty (e.g. ".txt")');
  return e.startsWith('.') ? e : `.${e}`;
}

/** The caption file that belongs to a media file: same folder, same name, caption extension. */
export function captionPathFor(mediaFile: string, captionExtension: string): string {
  const { dir, name } = path.parse(mediaFile);
  return path.join(dir, name + normalizeCaptionExtension(captionExtension));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeCaption(bytes: Uint8Array, file: string): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new Error(`${file}: caption file is not valid UTF-8 (re-save it as UTF-8)`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text
    .split(/\r?\n|\r/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join(' ');
}

export async function readCaptionFile(file: string): Promise<string> {
  return decodeCaption(await readFile(file), file);
}
