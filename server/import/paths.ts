// Paths in imported configs point at the author's disk (/home/me/lora/images, C:\\models\\x.safetensors) or at a
// Hugging Face repo id; graph paths are relative to the data folder's models/ and datasets/. This says how one
// becomes the other, and what the user has to move.
import { isAbsolute, relative, sep } from 'node:path';

export interface PathMapping {
  value: string;
  changed: boolean;
  note?: string;
}

const WINDOWS_ABSOLUTE = /^[A-Za-z]:[\\/]|^\\\\/;

/** `base` is the project folder (models/ or datasets/) when known: absolute paths inside it become relative. */
export function toProjectPath(p: string, folder: 'models' | 'datasets', base?: string): PathMapping {
  const trimmed = p.trim().replace(/[\\/]+$/, '');
  if (base && isAbsolute(trimmed)) {
    const rel = relative(base, trimmed);
    if (rel && !rel.startsWith('..') && !isAbsolute(rel)) return { value: rel.split(sep).join('/'), changed: false };
  }
  if (isAbsolute(trimmed) || WINDOWS_ABSOLUTE.test(trimmed) || trimmed.startsWith('~') || trimmed.startsWith('.')) {
    const name = trimmed.split(/[\\/]/).filter((s) => s && s !== '.' && s !== '..').pop() ?? trimmed;
    return { value: name, changed: true, note: `paths are relative to the data folder's ${folder}/: put "${name}" there (was ${p})` };
  }
  if (folder === 'models' && /^[\w.-]+\/[\w.-]+$/.test(trimmed) && !/\.(safetensors|ckpt|pt|bin)$/i.test(trimmed)) {
    return { value: trimmed, changed: true, note: `"${trimmed}" is a Hugging Face repo id; loragraph downloads nothing: put the diffusers folder at models/${trimmed}` };
  }
  return { value: trimmed, changed: false };
}
