// Finding the media files of a dataset folder with kohya's folder convention: subfolders named
// `N_name` repeat their images N times and use `name` as the fallback caption (class tokens).
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { captionPathFor } from './caption-files';
import { IMAGE_EXTENSIONS, isImageFile } from './images';
import { VIDEO_EXTENSIONS, isVideoFile } from './video';

export interface ScannedFile {
  file: string;
  kind: 'image' | 'video';
  /** The caption file if it exists, else null. */
  captionFile: string | null;
  /** From an `N_name` folder: `name`; null for the dataset folder itself. */
  classTokens: string | null;
  /** From an `N_name` folder: N; 1 for the dataset folder itself. */
  folderRepeats: number;
}

export interface FolderScan {
  files: ScannedFile[];
  /** Subfolders not named `N_name` (kohya ignores them too); the node warns about them. */
  ignoredFolders: string[];
}

const REPEAT_FOLDER = /^(\d+)_(.+)$/;

/** Parses a kohya folder name: "10_sks dog" → { repeats: 10, classTokens: "sks dog" }. */
export function parseRepeatFolder(name: string): { repeats: number; classTokens: string } | null {
  const m = REPEAT_FOLDER.exec(name);
  if (!m) return null;
  return { repeats: Number(m[1]), classTokens: m[2].trim() };
}

/**
 * Scans the folder: its own media files (1 repeat) and the media files of each `N_name` subfolder
 * (N repeats), not deeper, as kohya does. Hidden files are skipped. Errors name the folder.
 */
export async function scanFolder(folder: string, captionExtension: string): Promise<FolderScan> {
  let info;
  try {
    info = await stat(folder);
  } catch {
    throw new Error(`${folder}: dataset folder does not exist`);
  }
  if (!info.isDirectory()) throw new Error(`${folder}: dataset folder is not a folder`);

  const files: ScannedFile[] = [];
  const ignoredFolders: string[] = [];
  const root = await listMedia(folder, captionExtension, null, 1);
  files.push(...root.files);
  for (const sub of root.subfolders) {
    const parsed = parseRepeatFolder(sub);
    if (!parsed || parsed.repeats < 1) {
      ignoredFolders.push(path.join(folder, sub));
      continue;
    }
    const inner = await listMedia(path.join(folder, sub), captionExtension, parsed.classTokens, parsed.repeats);
    files.push(...inner.files);
  }
  if (files.length === 0) {
    const kinds = [...IMAGE_EXTENSIONS, ...VIDEO_EXTENSIONS].join(' ');
    const hint = ignoredFolders.length ? ` (subfolders must be named like "10_name": ignored ${ignoredFolders.map((f) => path.basename(f)).join(', ')})` : '';
    throw new Error(`${folder}: no images or videos found (looked for ${kinds})${hint}`);
  }
  return { files, ignoredFolders };
}

async function listMedia(dir: string, captionExtension: string, classTokens: string | null, folderRepeats: number) {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
  const files: ScannedFile[] = [];
  const subfolders: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) {
      subfolders.push(e.name);
      continue;
    }
    if (!e.isFile()) continue;
    const kind = isImageFile(e.name) ? 'image' : isVideoFile(e.name) ? 'video' : null;
    if (!kind) continue;
    const file = path.join(dir, e.name);
    const caption = captionPathFor(file, captionExtension);
    files.push({ file, kind, captionFile: names.has(path.basename(caption)) ? caption : null, classTokens, folderRepeats });
  }
  return { files, subfolders };
}

/**
 * A digest of what a dataset folder holds (names, sizes, modification times of its files and of the
 * files in its `N_name` subfolders): it changes when a file is added, removed or edited.
 */
export async function folderFingerprint(folder: string): Promise<string> {
  const parts: string[] = [];
  const walk = async (dir: string, depth: number) => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) { if (depth < 1) await walk(p, depth + 1); continue; }
      const st = await stat(p);
      parts.push(`${path.relative(folder, p)}:${st.size}:${st.mtimeMs}`);
    }
  };
  await walk(folder, 0);
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}
