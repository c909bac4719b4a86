// HTTP routes for files: viewing outputs/inputs/temp files, uploading images, and the example graphs. Every path a
// client names is confined to its project folder: no "..", no absolute paths, no symlinks that lead outside.
import { Router } from 'express';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile, rename, mkdir, realpath } from 'node:fs/promises';
import { extname, join, basename, relative, sep } from 'node:path';
import { HttpError } from '../httpErrors';
import { readMultipart, sniffImage } from '../multipart';
import { PathConfinementError, resolveExistingInside, resolveInside, type ProjectPaths } from '../paths';

export interface FileRoutesDeps {
  paths: ProjectPaths;
  graphsDir: string;
  uploadLimitBytes: number;
}

const SAFE_NAME = /^[^/\\\0]+$/;

/** A single file name: no separators, not "." or "..", no control characters. */
function checkFilename(name: string, what: string): string {
  if (!name || name.length > 255 || !SAFE_NAME.test(name) || name === '.' || name === '..' || name.startsWith('.') || /[\x00-\x1f]/.test(name)) {
    throw new HttpError(400, `${what}: "${name.slice(0, 100)}" is not a plain file name`);
  }
  return name;
}

/** A relative folder inside a project folder: no absolute paths, no "..", no backslashes. */
function checkSubfolder(sub: string): string {
  if (sub === '') return '';
  if (sub.length > 1000 || sub.includes('\\') || sub.includes('\0') || sub.startsWith('/') || /^[A-Za-z]:/.test(sub)) {
    throw new HttpError(400, `subfolder "${sub.slice(0, 100)}" must be a relative folder`);
  }
  for (const seg of sub.split('/')) {
    if (seg === '..' || seg === '.' || seg.startsWith('.')) throw new HttpError(400, `subfolder "${sub.slice(0, 100)}" must not contain "${seg || '//'}"`);
  }
  return sub;
}

function folderOf(paths: ProjectPaths, type: unknown, allowed: readonly string[]): string {
  const t = type === undefined || type === '' ? allowed[0]! : String(type);
  if (!allowed.includes(t)) throw new HttpError(400, `type must be one of ${allowed.join(', ')}`);
  return paths[t as 'output' | 'input' | 'temp'];
}

export function fileRoutes(deps: FileRoutesDeps): Router {
  const r = Router();
  const { paths } = deps;

  r.get('/view', async (req, res) => {
    const q = req.query;
    if (typeof q.filename !== 'string') throw new HttpError(400, 'filename is required');
    if (q.subfolder !== undefined && typeof q.subfolder !== 'string') throw new HttpError(400, 'subfolder must be a string');
    const base = folderOf(paths, q.type, ['output', 'input', 'temp']);
    const name = checkFilename(q.filename, 'filename');
    const sub = checkSubfolder((q.subfolder as string | undefined) ?? '');
    let file: string;
    try {
      file = await resolveExistingInside(base, join(sub, name), 'view');
    } catch (err) {
      if (err instanceof PathConfinementError) throw new HttpError(403, 'that path leads outside the project folder', 'forbidden');
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new HttpError(404, `no file "${join(sub, name)}" in ${String(q.type ?? 'output')}`, 'not_found');
      }
      throw err;
    }
    // The file is sent relative to its (real) project folder: `send` refuses dot-named segments of the path it is
    // given, and the data folder itself may well be dot-named (`.loragraph/` by default) or sit under one.
    const realBase = await realpath(base);
    const rel = relative(realBase, file);
    await new Promise<void>((resolve, reject) => {
      res.sendFile(rel.split(sep).join('/'), { root: realBase, dotfiles: 'deny', headers: { 'X-Content-Type-Options': 'nosniff' } }, (err) => {
        if (err && !res.headersSent) {
          const status = (err as { status?: number }).status;
          reject(status === 403 ? new HttpError(403, 'that path is not served', 'forbidden') : new HttpError(404, `cannot send "${join(sub, name)}"`, 'not_found'));
        } else resolve();
      });
    });
  });

  r.post('/upload', async (req, res) => {
    const form = await readMultipart(req, { limitBytes: deps.uploadLimitBytes, fileField: 'image' });
    const field = (n: string): string | undefined => form.fields[n];
    const image = form.file;
    if (!image) throw new HttpError(400, 'the form needs a file field named "image"');
    const kind = sniffImage(image.data);
    if (!kind) throw new HttpError(415, 'the upload is not a PNG, JPEG or WebP image', 'unsupported_media_type');
    const base = folderOf(paths, field('type'), ['input', 'temp']);
    const sub = checkSubfolder(field('subfolder') ?? '');
    let name = checkFilename(image.filename, 'filename');
    if (!['.png', '.jpg', '.jpeg', '.webp'].includes(extname(name).toLowerCase())) name += kind.ext;
    let dir: string;
    try {
      dir = resolveInside(base, sub || '.', 'upload');
    } catch {
      throw new HttpError(403, 'that subfolder leads outside the project folder', 'forbidden');
    }
    await mkdir(dir, { recursive: true });
    await resolveExistingInside(base, sub || '.', 'upload').catch(() => {
      throw new HttpError(403, 'that subfolder leads outside the project folder', 'forbidden');
    });
    const overwrite = field('overwrite') === 'true' || field('overwrite') === '1';
    if (!overwrite) {
      const stem = basename(name, extname(name));
      for (let i = 1; existsSync(join(dir, name)); i++) name = `${stem} (${i})${extname(name)}`;
    }
    const tmp = join(dir, `.upload-${process.pid}-${Date.now()}.tmp`);
    await writeFile(tmp, image.data);
    await rename(tmp, join(dir, name));
    res.json({ name, subfolder: sub, type: base === paths.temp ? 'temp' : 'input' });
  });

  r.get('/graphs', async (_req, res) => {
    const names = existsSync(deps.graphsDir)
      ? (await readdir(deps.graphsDir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort()
      : [];
    res.json({ graphs: names });
  });
  r.get('/graphs/:name', async (req, res) => {
    const name = req.params.name.replace(/\.json$/, '');
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name) || name.includes('..')) throw new HttpError(400, 'graph names are letters, digits, "-", "_" and "."');
    let text: string;
    try {
      text = await readFile(join(deps.graphsDir, `${name}.json`), 'utf8');
    } catch {
      throw new HttpError(404, `no graph named "${name}"`, 'not_found');
    }
    res.type('application/json').send(text);
  });
  return r;
}
