// Node declarations: the registry discovers nodes/*.ts files, object_info comes from the zod declaration alone,
// and the declaration's types reach execute.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineNode, describeWidget, input, widget } from '../../nodes/define';
import { createRegistry, loadRegistry } from '../../nodes/registry';
import { NodeInfo } from '../../server/protocol';
import { fixtureNodesDir, tempDir } from './harness';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('node registry', () => {
  it('discovers every exported node definition in a folder’s top-level .ts files', async () => {
    const reg = await loadRegistry(fixtureNodesDir);
    expect(reg.types()).toEqual(['Add', 'CrashProcess', 'Fail', 'MakeList', 'MutateList', 'NumberSource', 'SaveNumberImage', 'ShowNumber', 'SlowCounter', 'SumAll', 'WorkDirProbe']);
    expect(reg.loadErrors).toEqual([]);
  });

  it('reports a file that fails to import and loads the rest; refuses duplicate types across files', async () => {
    const define = join(import.meta.dirname, '../../nodes/define.ts');
    const ok = `import { defineNode } from ${JSON.stringify(define)};\nexport default defineNode({ type: 'Solo', category: 'utils', isOutput: true, execute: () => ({ outputs: {} }) });\n`;
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', 'good.ts'), ok);
    writeFileSync(join(dir, 'a', 'broken.ts'), 'throw new Error("syntax of the past");');
    mkdirSync(join(dir, 'a', 'lib'));
    writeFileSync(join(dir, 'a', 'lib', 'ignored.ts'), 'throw new Error("subfolders are libraries");');
    const reg = await loadRegistry(join(dir, 'a'));
    expect(reg.types()).toEqual(['Solo']);
    expect(reg.loadErrors).toEqual([{ file: join(dir, 'a', 'broken.ts'), message: 'syntax of the past' }]);

    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'b', 'one.ts'), ok);
    writeFileSync(join(dir, 'b', 'two.ts'), ok.replace('execute', 'title: "again", execute'));
    await expect(loadRegistry(join(dir, 'b'))).rejects.toThrow(/"Solo" is defined in both one\.ts and two\.ts/);
  });

  it('describes every widget kind from the zod declaration', () => {
    const node = defineNode({
      type: 'Everything',
      category: 'data',
      description: 'all widget kinds',
      version: 3,
      inputs: { vae: input('VAE', { optional: true, tooltip: 'for latent caching' }), datasets: input('DATASET', { list: true }) },
      widgets: z.object({
        folder: widget.path({ kind: 'dataset', tooltip: 'folder of images' }),
        repeats: widget.int({ default: 1, min: 1, max: 1000 }),
        captionDropoutRate: widget.float({ default: 0.05, min: 0, max: 1, step: 0.01 }),
        flipX: widget.toggle({ default: false }),
        bucketMode: widget.combo(['none', 'aspect'], { default: 'aspect' }),
        prompt: widget.text({ default: '', multiline: true }),
        seed: widget.seed({ default: 42 }),
        plain: z.number().int().min(2).max(9).default(3).describe('a plain zod field'),
      }),
      outputs: { dataset: 'DATASET', preview: 'IMAGES' },
      execute: () => ({ outputs: { dataset: null, preview: null } }),
    });
    const info = NodeInfo.parse(node.info());
    expect(info).toMatchObject({ type: 'Everything', title: 'Everything', category: 'data', version: 3, isOutput: false });
    expect(info.inputs).toEqual([
      { name: 'vae', type: 'VAE', optional: true, list: false, tooltip: 'for latent caching' },
      { name: 'datasets', type: 'DATASET', optional: false, list: true },
    ]);
    expect(info.outputs).toEqual([{ name: 'dataset', type: 'DATASET' }, { name: 'preview', type: 'IMAGES' }]);
    expect(info.widgets).toEqual([
      { name: 'folder', kind: 'path', pathKind: 'dataset', tooltip: 'folder of images' },
      { name: 'repeats', kind: 'int', default: 1, min: 1, max: 1000, step: 1 },
      { name: 'captionDropoutRate', kind: 'float', default: 0.05, min: 0, max: 1, step: 0.01 },
      { name: 'flipX', kind: 'toggle', default: false },
      { name: 'bucketMode', kind: 'combo', default: 'aspect', options: ['none', 'aspect'] },
      { name: 'prompt', kind: 'text', default: '', multiline: true },
      { name: 'seed', kind: 'seed', default: 42, min: 0, step: 1 },
      { name: 'plain', kind: 'int', default: 3, min: 2, max: 9, tooltip: 'a plain zod field' },
    ]);
    expect(describeWidget('x', widget.int({ default: 5 }).describe('chained'))).toMatchObject({ kind: 'int', tooltip: 'chained', default: 5 });
  });

  it('refuses a name used as both input and widget, and duplicate types in one registry', () => {
    expect(() =>
      defineNode({ type: 'Clash', category: 'utils', inputs: { steps: input('NUMBER') }, widgets: z.object({ steps: widget.int() }), execute: () => ({ outputs: {} }) }),
    ).toThrow(/"steps" is both an input and a widget/);
    const a = defineNode({ type: 'Same', category: 'utils', execute: () => ({ outputs: {} }) });
    const b = defineNode({ type: 'Same', category: 'utils', execute: () => ({ outputs: {} }) });
    expect(() => createRegistry([a, b])).toThrow(/share the type "Same"/);
  });

  it('types execute from the declaration (checked by tsc)', () => {
    defineNode({
      type: 'Typed',
      category: 'utils',
      inputs: { n: input<number>('NUMBER'), maybe: input<string>('TEXT', { optional: true }), many: input<number>('NUMBER', { list: true }) },
      widgets: z.object({ k: widget.int({ default: 2 }), mode: widget.combo(['a', 'b']) }),
      outputs: { out: 'NUMBER' },
      execute({ inputs, widgets }) {
        const n: number = inputs.n;
        const maybe: string | undefined = inputs.maybe;
        const many: readonly number[] = inputs.many;
        const k: number = widgets.k;
        const mode: 'a' | 'b' = widgets.mode;
        // @ts-expect-error an optional input may be undefined
        const notOptional: string = inputs.maybe;
        return { outputs: { out: n + many.length + k + (maybe?.length ?? 0) + mode.length + String(notOptional).length } };
      },
    });
  });
});
