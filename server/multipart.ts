// A small multipart/form-data reader for uploads (one image and a few text fields), over a body already read with a
// size limit. Malformed bodies get HttpError 400s that say what is wrong.
import { HttpError } from './httpErrors';

export interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

export function boundaryOf(contentType: string | undefined): string {
  const m = /^multipart\/form-data\s*;.*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType ?? '');
  if (!m) throw new HttpError(400, 'expected a multipart/form-data body with a boundary');
  return (m[1] ?? m[2])!;
}

export function parseMultipart(body: Buffer, boundary: string): FormPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: FormPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new HttpError(400, 'multipart body has no boundary line');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return parts; // closing delimiter
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw new HttpError(400, 'malformed multipart boundary line');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new HttpError(400, 'multipart part without a header end');
    const headers = body.subarray(pos, headerEnd).toString('utf8').split('\r\n');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next < 0) throw new HttpError(400, 'multipart body is truncated (no closing boundary)');
    const part: FormPart = { name: '', data: body.subarray(headerEnd + 4, next) };
    for (const h of headers) {
      const [k, ...rest] = h.split(':');
      const value = rest.join(':').trim();
      if (/^content-disposition$/i.test(k!.trim())) {
        const name = /\bname="([^"]*)"/i.exec(value);
        const filename = /\bfilename="([^"]*)"/i.exec(value);
        part.name = name?.[1] ?? '';
        if (filename) part.filename = filename[1];
      } else if (/^content-type$/i.test(k!.trim())) {
        part.contentType = value;
      }
    }
    if (!part.name) throw new HttpError(400, 'multipart part without a field name');
    parts.push(part);
    if (parts.length > 32) throw new HttpError(400, 'too many multipart parts');
    pos = next + 2;
  }
}

/** The image type of `data` by its first bytes, or null. */
export function sniffImage(data: Uint8Array): { ext: string; mime: string } | null {
  const b = data;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) {
    return { ext: '.png', mime: 'image/png' };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return { ext: '.jpg', mime: 'image/jpeg' };
  if (b.length >= 12 && Buffer.from(b.subarray(0, 4)).toString('latin1') === 'RIFF' && Buffer.from(b.subarray(8, 12)).toString('latin1') === 'WEBP') {
    return { ext: '.webp', mime: 'image/webp' };
  }
  return null;
}
