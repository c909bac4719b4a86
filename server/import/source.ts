// Reads a config file people bring (ai-toolkit YAML/JSON, kohya_ss JSON, sd-scripts TOML) with the maintained
// parsers — `yaml` (YAML 1.1, as PyYAML reads ai-toolkit's files: `lr: 1e-4` is a number, `yes` a boolean) and
// `smol-toml` — and keeps where each key sits, so errors and the import report can name file, line and key.
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, Parser, type Node as YamlNode } from 'yaml';
import { parse as parseToml, TomlError } from 'smol-toml';

export class ConfigImportError extends Error {
  constructor(readonly file: string, message: string, readonly line?: number, readonly column?: number, readonly key?: string) {
    super(`${file}${line !== undefined ? `:${line}${column !== undefined ? `:${column}` : ''}` : ''}: ${key ? `${key}: ` : ''}${message}`);
    this.name = 'ConfigImportError';
  }
}

export type Syntax = 'yaml' | 'json' | 'toml';

export interface ParsedSource {
  /** The name errors and the report use (as given, not resolved). */
  file: string;
  syntax: Syntax;
  data: unknown;
  /** The 1-based line of a key path (`a.b[0].c`), when known. */
  lineOf(path: string): number | undefined;
}

export function syntaxOf(file: string, text: string): Syntax {
  const ext = extname(file).toLowerCase();
  if (ext === '.toml') return 'toml';
  if (ext === '.json' || ext === '.jsonc') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  const head = text.trimStart();
  if (head.startsWith('{')) return 'json';
  // TOML tables open with [name] / [[name]]; YAML flow sequences would be "[a, b]" on their own and not a config.
  if (/^\s*\[\[?[A-Za-z_][\w.]*\]\]?\s*$/m.test(text) || /^\s*[A-Za-z_][\w-]*\s*=\s*/m.test(text)) return 'toml';
  return 'yaml';
}

export const joinPath = (parent: string, key: string | number) =>
  typeof key === 'number' ? `${parent}[${key}]` : parent ? `${parent}.${key}` : key;

/** ai-toolkit replaces `${VAR}` with the environment variable before parsing, and fails when it is unset. */
export function substituteEnv(file: string, text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([^}]+)\}/g, (whole, name: string, offset: number) => {
    const value = env[name];
    if (value === undefined) {
      const before = text.slice(0, offset);
      const line = before.split('\n').length;
      throw new ConfigImportError(file, `environment variable ${name} is not set (ai-toolkit replaces ${whole} with it)`, line, offset - before.lastIndexOf('\n'));
    }
    return value;
  });
}

function yamlLines(doc: ReturnType<typeof parseDocument>, counter: LineCounter): Map<string, number> {
  const lines = new Map<string, number>();
  const walk = (node: unknown, path: string) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const p = joinPath(path, k);
        const range = (pair.key as YamlNode | null)?.range;
        if (range) lines.set(p, counter.linePos(range[0]).line);
        walk(pair.value, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = joinPath(path, i);
        const range = (item as YamlNode | null)?.range;
        if (range) lines.set(p, counter.linePos(range[0]).line);
        walk(item, p);
      });
    }
  };
  walk(doc.contents, '');
  return lines;
}

/** The start of the quoted scalar (from the yaml lexer's tokens) that runs into `offset`, if any. */
function quotedTokenAround(text: string, offset: number): number | undefined {
  let found: number | undefined;
  const visit = (token: unknown) => {
    if (!token || typeof token !== 'object') return;
    const t = token as { type?: string; offset?: number; source?: string; items?: unknown[]; value?: unknown; key?: unknown; sep?: unknown[]; start?: unknown[] };
    if ((t.type === 'double-quoted-scalar' || t.type === 'single-quoted-scalar') && t.offset !== undefined && t.source !== undefined && t.offset <= offset && t.offset + t.source.length >= offset) found = t.offset;
    for (const child of [t.value, t.key, ...(t.items ?? []), ...(t.sep ?? []), ...(t.start ?? [])]) visit(child);
    if (Array.isArray(t.items)) for (const item of t.items) visit(item);
  };
  for (const token of new Parser().parse(text)) visit(token);
  return found;
}

function parseYamlText(file: string, text: string, version: '1.1' | '1.2'): { data: unknown; lines: Map<string, number> } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { version, lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    let offset = err.pos[0];
    let where = '';
    // An unterminated quote is found at the end of the file; the quote that opened it is what to fix.
    if (/quote/i.test(err.message)) {
      const open = quotedTokenAround(text, offset);
      if (open !== undefined) {
        const at = counter.linePos(offset);
        where = ` (opened here; the parser stopped at line ${at.line}, column ${at.col})`;
        offset = open;
      }
    }
    const pos = counter.linePos(offset);
    const lineText = text.split('\n')[pos.line - 1] ?? '';
    const key = /^\s*(?:-\s+)?([\w.$\[\]-]+)\s*:/.exec(lineText)?.[1];
    throw new ConfigImportError(file, `${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}${where}`, pos.line, pos.col, key);
  }
  return { data: doc.toJS({ maxAliasCount: 1000 }), lines: yamlLines(doc, counter) };
}

/**
 * Where each key of a TOML file is: follows [table] / [[array.of.tables]] headers and `key =` lines. It only
 * locates keys for messages; smol-toml did the parsing.
 */
function tomlLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  const counts = new Map<string, number>();
  let table = '';
  const unquote = (k: string) => k.trim().replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
  const keyPath = (dotted: string) => dotted.split('.').map(unquote);
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    let m: RegExpMatchArray | null;
    const resolve = (parts: string[]) => parts.reduce((path, part) => {
      const p = joinPath(path, part);
      // Inside an array of tables, a header refers to its newest element: datasets[0].subsets[1].
      return counts.has(p) ? `${p}[${counts.get(p)! - 1}]` : p;
    }, '');
    if ((m = line.match(/^\[\[\s*([^\]]+?)\s*\]\]/))) {
      const parts = keyPath(m[1]!);
      const array = joinPath(resolve(parts.slice(0, -1)), parts.at(-1)!);
      const n = counts.get(array) ?? 0;
      counts.set(array, n + 1);
      table = `${array}[${n}]`;
      lines.set(table, i + 1);
    } else if ((m = line.match(/^\[\s*([^\]]+?)\s*\]/))) {
      table = resolve(keyPath(m[1]!));
      lines.set(table, i + 1);
    } else if ((m = line.match(/^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=/))) {
      const p = keyPath(m[1]!).reduce((acc, part) => joinPath(acc, part), table);
      if (!lines.has(p)) lines.set(p, i + 1);
    }
  });
  return lines;
}

export function parseSource(file: string, text: string, env: Record<string, string | undefined> = process.env, syntax = syntaxOf(file, text)): ParsedSource {
  const withLines = (data: unknown, lines: Map<string, number>): ParsedSource => ({ file, syntax, data, lineOf: (p) => lines.get(p) });
  if (syntax === 'toml') {
    let data: unknown;
    try {
      data = parseToml(text);
    } catch (e) {
      if (e instanceof TomlError) throw new ConfigImportError(file, e.message.split('\n')[0]!.replace(/^Invalid TOML document: /, ''), e.line, e.column);
      throw e;
    }
    return withLines(data, tomlLines(text));
  }
  if (syntax === 'json') {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      const pos = /position (\d+)/.exec((e as Error).message);
      const offset = pos ? Number(pos[1]) : undefined;
      const before = offset !== undefined ? text.slice(0, offset) : undefined;
      throw new ConfigImportError(file, `not valid JSON: ${(e as Error).message.replace(/ in JSON at position \d+.*$/, '')}`,
        before !== undefined ? before.split('\n').length : undefined, before !== undefined ? offset! - before.lastIndexOf('\n') : undefined);
    }
    // JSON is YAML 1.2: the yaml parser gives the key positions.
    return withLines(data, parseYamlText(file, text, '1.2').lines);
  }
  const { data, lines } = parseYamlText(file, text, '1.1');
  return withLines(data, lines);
}

/** Reads and parses a file; `name` is what messages call it (defaults to the base name). */
export async function readSource(path: string, opts: { name?: string; env?: Record<string, string | undefined> } = {}): Promise<{ source: ParsedSource; text: string }> {
  const name = opts.name ?? basename(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigImportError(name, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return { source: parseSource(name, text, opts.env), text };
}

/** Each leaf of a parsed config as [path, value]: scalars, and lists of scalars (one setting, like `resolution: [512, 768]`). */
export function leaves(data: unknown, path = ''): [string, unknown][] {
  if (Array.isArray(data)) {
    if (data.length && data.every((x) => x && typeof x === 'object' && !Array.isArray(x))) return data.flatMap((x, i) => leaves(x, joinPath(path, i)));
    return [[path, data]];
  }
  if (data && typeof data === 'object' && !(data instanceof Date)) {
    const entries = Object.entries(data as Record<string, unknown>);
    if (!entries.length && path) return [[path, data]];
    return entries.flatMap(([k, v]) => leaves(v, joinPath(path, k)));
  }
  return [[path, data]];
}
