// The set of node types a server or CLI run knows: discovered by importing every nodes/*.ts file, or built
// from an explicit list (tests, embedding). Adding a node type is adding a file.
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ObjectInfo } from '../server/protocol';
import { isNodeDefinition, type NodeDefinition } from './define';

export interface NodeRegistry {
  get(type: string): NodeDefinition | undefined;
  has(type: string): boolean;
  types(): string[];
  /** /api/object_info, computed once. */
  objectInfo(): ObjectInfo;
  /** Files that failed to import, with why (the rest still load). */
  readonly loadErrors: readonly { file: string; message: string }[];
}

export function createRegistry(defs: Iterable<NodeDefinition>, loadErrors: { file: string; message: string }[] = []): NodeRegistry {
  const byType = new Map<string, NodeDefinition>();
  for (const def of defs) {
    if (byType.has(def.type) && byType.get(def.type) !== def) throw new Error(`two node definitions share the type "${def.type}"`);
    byType.set(def.type, def);
  }
  let info: ObjectInfo | undefined;
  return {
    get: (type) => byType.get(type),
    has: (type) => byType.has(type),
    types: () => [...byType.keys()].sort(),
    objectInfo() {
      info ??= Object.fromEntries([...byType.values()].map((d) => [d.type, d.info()]));
      return info;
    },
    loadErrors,
  };
}

export const defaultNodesDir = dirname(fileURLToPath(import.meta.url));

// Library files in nodes/ that declare no node types.
const NOT_NODE_FILES = new Set(['define.ts', 'registry.ts']);

/** Imports every top-level `*.ts` file of `dir` and collects its exported node definitions. */
export async function loadRegistry(dir: string = defaultNodesDir): Promise<NodeRegistry> {
  const root = resolve(dir);
  const files = (await readdir(root, { withFileTypes: true }))
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts') && !NOT_NODE_FILES.has(e.name))
    .map((e) => e.name)
    .sort();
  const defs: NodeDefinition[] = [];
  const origin = new Map<string, string>();
  const loadErrors: { file: string; message: string }[] = [];
  for (const name of files) {
    const file = join(root, name);
    let mod: Record<string, unknown>;
    try {
      mod = await import(pathToFileURL(file).href);
    } catch (err) {
      loadErrors.push({ file, message: err instanceof Error ? err.message : String(err) });
      continue;
    }
    for (const value of Object.values(mod)) {
      const found = Array.isArray(value) ? value.filter(isNodeDefinition) : isNodeDefinition(value) ? [value] : [];
      for (const def of found) {
        const prev = origin.get(def.type);
        if (prev && defs.find((d) => d.type === def.type) !== def) {
          throw new Error(`node type "${def.type}" is defined in both ${basename(prev)} and ${name}`);
        }
        if (!prev) defs.push(def);
        origin.set(def.type, file);
      }
    }
  }
  return createRegistry(defs, loadErrors);
}
