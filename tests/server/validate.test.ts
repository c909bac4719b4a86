// Validation reports each problem against its node and field, and an invalid graph runs nothing.
import { describe, expect, it } from 'vitest';
import type { ApiGraph } from '../../server/protocol';
import { validateGraph } from '../../server/validate';
import { diamondGraph, testRegistry } from './harness';

const registry = testRegistry();
const errorsOf = (api: ApiGraph) => {
  const v = validateGraph(api, registry);
  if (v.ok) throw new Error('expected the graph to be invalid');
  return v;
};

describe('validateGraph', () => {
  it('accepts a good graph and applies widget defaults', () => {
    const v = validateGraph({ '1': { class_type: 'NumberSource', inputs: {} }, '2': { class_type: 'ShowNumber', inputs: { value: ['1', 0] } } }, registry);
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.graph.nodes.get('1')!.widgets).toEqual({ value: 1 });
  });

  it('names an unknown node type', () => {
    const v = errorsOf({ ...diamondGraph(), '9': { class_type: 'Nope', inputs: {} } });
    expect(v.nodeErrors['9']).toEqual({ type: 'Nope', errors: [{ field: '', message: 'unknown node type "Nope"' }] });
  });

  it('reports a missing required input on its field', () => {
    const g = diamondGraph();
    delete g['3']!.inputs.a;
    expect(errorsOf(g).nodeErrors['3']!.errors).toEqual([{ field: 'a', message: 'required input "a" (NUMBER) is not connected' }]);
  });

  it('leaves optional inputs alone', () => {
    const g = diamondGraph();
    delete g['3']!.inputs.b;
    expect(validateGraph(g, registry).ok).toBe(true);
  });

  it('reports a socket type mismatch with both types', () => {
    const g: ApiGraph = {
      '1': { class_type: 'NumberSource', inputs: {} },
      '2': { class_type: 'MakeList', inputs: { value: ['1', 0] } },
      '3': { class_type: 'ShowNumber', inputs: { value: ['2', 0] } },
    };
    expect(errorsOf(g).nodeErrors['3']!.errors[0]).toEqual({
      field: 'value',
      message: 'input "value" expects NUMBER but node 2 (MakeList) output "list" gives LIST',
    });
  });

  it('reports links to missing nodes and missing outputs', () => {
    const g = diamondGraph();
    g['3']!.inputs.a = ['77', 0];
    g['3']!.inputs.b = ['2', 3];
    const errs = errorsOf(g).nodeErrors['3']!.errors;
    expect(errs.map((e) => e.field)).toEqual(['a', 'b']);
    expect(errs[0]!.message).toMatch(/node 77, which is not in the graph/);
    expect(errs[1]!.message).toMatch(/output #3 of node 2 \(NumberSource\), which has 1 output/);
  });

  it('reports widgets out of range, not among options, of the wrong type, and unknown fields', () => {
    const g: ApiGraph = {
      '1': { class_type: 'NumberSource', inputs: { value: 'seven' } },
      '2': { class_type: 'SlowCounter', inputs: { start: ['1', 0], steps: 0, delayMs: 1.5 } },
      '3': { class_type: 'MakeList', inputs: { value: ['2', 0], mode: 'shuffle', colour: 'red' } },
      '4': { class_type: 'ShowNumber', inputs: { value: ['2', 0] } },
    };
    const { nodeErrors } = errorsOf(g);
    expect(nodeErrors['1']!.errors).toEqual([{ field: 'value', message: expect.stringMatching(/expected number/) }]);
    expect(nodeErrors['2']!.errors.map((e) => e.field).sort()).toEqual(['delayMs', 'steps']);
    expect(nodeErrors['2']!.errors.find((e) => e.field === 'steps')!.message).toMatch(/>=1/);
    expect(nodeErrors['3']!.errors).toEqual([
      { field: 'colour', message: 'MakeList has no input or widget "colour"' },
      { field: 'mode', message: expect.stringMatching(/"copy"\|"mutate"/) },
    ]);
    expect(nodeErrors['4']).toBeUndefined();
  });

  it('refuses a link where a widget value belongs', () => {
    const g = diamondGraph();
    g['3']!.inputs.offset = ['1', 0];
    expect(errorsOf(g).nodeErrors['3']!.errors).toEqual([{ field: 'offset', message: 'widget "offset" takes a value, not a link' }]);
  });

  it('reports every node of a cycle', () => {
    const g: ApiGraph = {
      '1': { class_type: 'Add', inputs: { a: ['3', 0] } },
      '2': { class_type: 'Add', inputs: { a: ['1', 0] } },
      '3': { class_type: 'Add', inputs: { a: ['2', 0] } },
      '4': { class_type: 'ShowNumber', inputs: { value: ['3', 0] } },
      '5': { class_type: 'Add', inputs: { a: ['5', 0] } },
    };
    const { nodeErrors } = errorsOf(g);
    for (const id of ['1', '2', '3']) expect(nodeErrors[id]!.errors[0]!.message).toMatch(/^part of a cycle: (\d → ){3}\d$/);
    expect(nodeErrors['5']!.errors[0]!.message).toBe('part of a cycle: 5 → 5');
    expect(nodeErrors['4']).toBeUndefined();
  });

  it('says when there is no output node', () => {
    const v = errorsOf({ '1': { class_type: 'NumberSource', inputs: {} } });
    expect(v.error.message).toMatch(/no output node/);
    expect(v.nodeErrors).toEqual({});
  });

  it('carries node titles into errors so the editor and CLI can name them', () => {
    const v = errorsOf({ '1': { class_type: 'ShowNumber', inputs: {}, _meta: { title: 'Final' } } });
    expect(v.nodeErrors['1']).toMatchObject({ type: 'ShowNumber', title: 'Final' });
  });

  it('handles a 5,000-node chain without overflowing the stack', () => {
    const g: ApiGraph = { '0': { class_type: 'NumberSource', inputs: {} } };
    for (let i = 1; i < 5000; i++) g[String(i)] = { class_type: 'Add', inputs: { a: [String(i - 1), 0] } };
    g['0']!.class_type = 'Add';
    g['0']!.inputs = { a: ['4999', 0] };
    g['x'] = { class_type: 'ShowNumber', inputs: { value: ['10', 0] } };
    const v = errorsOf(g);
    expect(Object.keys(v.nodeErrors).length).toBe(5000);
  });
});

describe('path widgets', () => {
  it('refuses a path that leaves its project folder, naming the field', async () => {
    const { z } = await import('zod');
    const { defineNode, widget } = await import('../../nodes/define');
    const { createRegistry } = await import('../../nodes/registry');
    const { projectPaths } = await import('../../server/paths');
    const Load = defineNode({
      type: 'LoadThing',
      category: 'loaders',
      isOutput: true,
      widgets: z.object({ file: widget.path({ kind: 'model' }) }),
      execute: () => ({ outputs: {} }),
    });
    const reg = createRegistry([Load]);
    const paths = projectPaths('/srv/lg');
    const check = (file: string) => validateGraph({ '1': { class_type: 'LoadThing', inputs: { file } } }, reg, { paths });
    expect(check('sd15/tiny.safetensors').ok).toBe(true);
    expect(check('/srv/lg/models/x.safetensors').ok).toBe(true);
    for (const bad of ['../../etc/passwd', '/etc/passwd', 'a/../../x']) {
      const v = check(bad);
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.nodeErrors['1']!.errors[0]).toEqual({ field: 'file', message: expect.stringMatching(/^widget "file": ".*" is outside \/srv\/lg\/models$/) });
    }
  });
});
