// Reads an upload (one image and a few text fields) from a multipart/form-data request with busboy, streaming and
// within limits: the whole body at most `limitBytes` (413), at most 32 parts, text fields of at most 64 KiB. Malformed
// bodies get HttpError 400s that say what is wrong; a refused body is read to its end before the answer, so the
// client sees the answer rather than a reset connection.
import busboy from 'busboy';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './httpErrors';

export interface UploadedFile {
  field: string;
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface MultipartForm {
  fields: Record<string, string>;
  /** The file in `fileField`, if the form had one (other file fields are read and dropped). */
  file: UploadedFile | null;
}

export const MAX_PARTS = 32;
export const MAX_FIELD_BYTES = 64 * 1024;

const tooLarge = () => new HttpError(413, 'the request body is too large', 'entity.too.large');

/** Reads the rest of the request and drops it, then settles (the answer goes out after the body, as body-parser does). */
function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded || req.destroyed) return resolve();
    req.once('end', resolve);
    req.once('close', resolve);
    req.once('error', () => resolve());
    req.resume();
  });
}

export async function readMultipart(req: IncomingMessage, opts: { limitBytes: number; fileField: string }): Promise<MultipartForm> {
  const type = String(req.headers['content-type'] ?? '');
  if (!/^multipart\/form-data\b/i.test(type)) {
    await drain(req);
    throw new HttpError(400, 'expected a multipart/form-data body');
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > opts.limitBytes) {
    await drain(req);
    throw tooLarge();
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      // The name as sent ("../x.png" included): the route refuses what is not a plain file name.
      preservePath: true,
      limits: { fileSize: opts.limitBytes, fieldSize: MAX_FIELD_BYTES, parts: MAX_PARTS, fieldNameSize: 200 },
    });
  } catch {
    await drain(req);
    throw new HttpError(400, 'expected a multipart/form-data body with a boundary');
  }

  return new Promise<MultipartForm>((resolve, reject) => {
    const fields: Record<string, string> = {};
    let file: UploadedFile | null = null;
    let received = 0;
    let failed = false;
    const pending: Promise<void>[] = [];
    const fail = (err: HttpError) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      parser.removeAllListeners();
      parser.on('error', () => {});
      void drain(req).then(() => reject(err));
    };
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > opts.limitBytes) fail(tooLarge());
    });
    parser.on('field', (name, value, info) => {
      if (!name) return fail(new HttpError(400, 'multipart part without a field name'));
      if (info.nameTruncated || info.valueTruncated) return fail(new HttpError(400, `form field "${name.slice(0, 100)}" is too long`));
      fields[name] = value;
    });
    parser.on('file', (name, stream, info) => {
      stream.on('error', () => {}); // a cut-off form errors the open file too; the parser's error says it
      if (name !== opts.fileField || file || failed) {
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => fail(tooLarge()));
      pending.push(
        new Promise<void>((done) => {
          stream.on('close', () => {
            if (!stream.truncated) file = { field: name, filename: info.filename ?? '', contentType: info.mimeType, data: Buffer.concat(chunks) };
            done();
          });
        }),
      );
    });
    parser.on('partsLimit', () => fail(new HttpError(400, 'too many multipart parts')));
    parser.on('error', (err: Error) => fail(new HttpError(400, `malformed multipart body: ${err.message}`)));
    parser.on('close', () => {
      if (failed) return;
      void Promise.all(pending).then(() => {
        if (!failed) resolve({ fields, file });
      });
    });
    req.on('aborted', () => fail(new HttpError(400, 'the upload was cut off')));
    req.pipe(parser);
  });
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
