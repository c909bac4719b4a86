// Graph files: the editor's workflow converts to the API form that runs (links, widget order, titles, reroutes,
// muted and bypassed nodes, list sockets), API graphs convert back, and --set edits widgets by title or id.
import { describe, expect, it } from 'vitest';
import { GraphFormatError } from '../../server/graph/errors';
import { parseGraph } from '../../server/graph/load';
import { applyOverrides, parseSetArgument } from '../../server/graph/set';
import { apiToWorkflow, workflowToApi } from '../../server/graph/workflow';
import { validateGraph } from '../../server/validate';
import { diamondGraph, testRegistry } from './harness';

const registry = testRegistry();

/** A workflow as the editor saves it: positions, sizes, groups, a note, a reroute and link ids. */
function editorWorkflow() {
  return {
    last_node_id: 7,
    last_link_id: 6,
    nodes: [
      { id: 1, type: 'NumberSource', pos: [0, 0], size: [200, 80], mode: 0, title: 'Base', inputs: [], outputs: [{ name: 'value', type: 'NUMBER', links: [1] }], widgets_values: [2] },
      { id: 2, type: 'NumberSource', pos: [0, 100], size: [200, 80], mode: 0, inputs: [], outputs: [{ name: 'value', type: 'NUMBER', links: [2] }], widgets_values: [3] },
      { id: 6, type: 'Reroute', pos: [150, 100], size: [75, 26], inputs: [{ name: '', type: '*', link: 2 }], outputs: [{ name: '', type: 'NUMBER', links: [3] }] },
      { id: 3, type: 'Add', pos: [300, 0], size: [200, 100], mode: 0, inputs: [{ name: 'a', type: 'NUMBER', link: 1 }, { name: 'b', type: 'NUMBER', link: 3 }], outputs: [{ name: 'sum', type: 'NUMBER', links: [4, 5] }], widgets_values: [10] },
      { id: 4, type: 'ShowNumber', pos: [600, 0], size: [200, 80], mode: 0, title: 'Result', inputs: [{ name: 'value', type: 'NUMBER', link: 4 }], outputs: [] },
      { id: 5, type: 'SaveNumberImage', pos: [600, 100], size: [200, 80], mode: 2, inputs: [{ name: 'value', type: 'NUMBER', link: 5 }], outputs: [], widgets_values: ['img'] },
      { id: 7, type: 'Note', pos: [0, 300], size: [200, 80], widgets_values: ['remember to set the rank'] },
    ],
    links: [
      [1, 1, 0, 3, 0, 'NUMBER'],
      [2, 2, 0, 6, 0, 'NUMBER'],
      [3, 6, 0, 3, 1, 'NUMBER'],
      [4, 3, 0, 4, 0, 'NUMBER'],
      [5, 3, 0, 5, 0, 'NUMBER'],
    ],
    groups: [{ title: 'Numbers', bounding: [0, 0, 300, 200] }],
    config: {},
    extra: {},
    version: 0.4,
  };
}

describe('workflow → API', () => {
  it('keeps types, links, widget values in schema order and titles; drops notes, reroutes and muted nodes', () => {
    expect(workflowToApi(editorWorkflow(), registry)).toEqual({
      '1': { class_type: 'NumberSource', inputs: { value: 2 }, _meta: { title: 'Base' } },
      '2': { class_type: 'NumberSource', inputs: { value: 3 } },
      '3': { class_type: 'Add', inputs: { a: ['1', 0], b: ['2', 0], offset: 10 } },
      '4': { class_type: 'ShowNumber', inputs: { value: ['3', 0] }, _meta: { title: 'Result' } },
    });
  });

  it('passes a bypassed node through to its matching input', () => {
    const wf = editorWorkflow();
    wf.nodes.find((n) => n.id === 3)!.mode = 4;
    expect(workflowToApi(wf, registry)['4']!.inputs.value).toEqual(['1', 0]);
  });

  it('gathers list sockets ("values", "values.1", …) into one list in slot order', () => {
    const wf = {
      nodes: [
        { id: 1, type: 'NumberSource', widgets_values: [1] },
        { id: 2, type: 'NumberSource', widgets_values: [2] },
        { id: 3, type: 'SumAll', inputs: [{ name: 'values', link: 1 }, { name: 'values.1', link: 2 }, { name: 'values.2', link: null }] },
        { id: 4, type: 'ShowNumber', inputs: [{ name: 'value', link: 3 }] },
      ],
      links: [[1, 2, 0, 3, 0, 'NUMBER'], [2, 1, 0, 3, 1, 'NUMBER'], [3, 3, 0, 4, 0, 'NUMBER']],
    };
    expect(workflowToApi(wf, registry)['3']!.inputs).toEqual({ values: [['2', 0], ['1', 0]] });
  });

  it('accepts widgets_values as an object keyed by widget name', () => {
    const wf = { nodes: [{ id: 1, type: 'SlowCounter', widgets_values: { delayMs: 5, steps: 9 } }, { id: 2, type: 'ShowNumber', inputs: [{ name: 'value', link: 1 }] }], links: [[1, 1, 0, 2, 0, 'NUMBER']] };
    expect(workflowToApi(wf, registry)['1']!.inputs).toEqual({ steps: 9, delayMs: 5 });
  });

  it('names the problem in a malformed workflow', () => {
    expect(() => parseGraph({ nodes: [{ id: 1 }] }, registry)).toThrow(/workflow: nodes\.0\.type/);
    expect(() => parseGraph({ nodes: [{ id: 1, type: 'A' }, { id: 1, type: 'B' }] }, registry)).toThrow(/two nodes have the id 1/);
    expect(() => parseGraph({ '1': { inputs: {} } }, registry)).toThrow(GraphFormatError);
    expect(() => parseGraph([], registry)).toThrow(/JSON object/);
  });
});

describe('API → workflow', () => {
  it('round-trips: the generated workflow converts back to the same API graph', () => {
    const api = diamondGraph(4, 5, 2);
    api['4']!._meta = { title: 'Shown' };
    const wf = apiToWorkflow(api, registry);
    expect(wf.nodes).toHaveLength(5);
    expect(new Set(wf.nodes.map((n) => JSON.stringify(n.pos))).size).toBe(5); // laid out, not stacked
    const back = workflowToApi(JSON.parse(JSON.stringify(wf)), registry);
    expect(back).toEqual(api);
  });

  it('round-trips list sockets', () => {
    const api = {
      '1': { class_type: 'NumberSource', inputs: { value: 1 } },
      '2': { class_type: 'SumAll', inputs: { values: [['1', 0], ['1', 0]] } },
      '3': { class_type: 'ShowNumber', inputs: { value: ['2', 0] } },
    };
    expect(workflowToApi(apiToWorkflow(api, registry), registry)).toEqual(api);
  });
});

describe('--set', () => {
  it('parses "<title or id>.<widget>=<value>" and converts the value by widget kind', () => {
    expect(parseSetArgument('My node.steps=500')).toEqual({ node: 'My node', widget: 'steps', value: '500' });
    expect(parseSetArgument('3.prompt=a=b')).toEqual({ node: '3', widget: 'prompt', value: 'a=b' });
    expect(() => parseSetArgument('steps=5')).toThrow(/expected/);
    const api = workflowToApi(editorWorkflow(), registry);
    const out = applyOverrides(api, registry, ['Base.value=7.5', '3.offset=-2', 'Result.value=1'].slice(0, 2).map(parseSetArgument));
    expect(out['1']!.inputs.value).toBe(7.5);
    expect(out['3']!.inputs.offset).toBe(-2);
    expect(api['1']!.inputs.value).toBe(2); // the original is untouched
    expect(validateGraph(out, registry).ok).toBe(true);
  });

  it('finds nodes by type title when untitled, and refuses ambiguous or unknown names', () => {
    const api = diamondGraph();
    expect(applyOverrides(api, registry, [parseSetArgument('Add.offset=3')])['3']!.inputs.offset).toBe(3);
    expect(() => applyOverrides(api, registry, [parseSetArgument('Number.value=1')])).toThrow(/names several nodes \(ids 1, 2\)/);
    expect(() => applyOverrides(api, registry, [parseSetArgument('Nobody.value=1')])).toThrow(/no node titled/);
    expect(() => applyOverrides(api, registry, [parseSetArgument('Add.offest=1')])).toThrow(/no widget "offest" \(widgets: offset\)/);
    expect(() => applyOverrides(api, registry, [parseSetArgument('Add.offset=many')])).toThrow(/not a number/);
  });
});

describe('saved widget names', () => {
  it('a workflow saved before a node gained a widget keeps its values by name', async () => {
    const { loadRegistry } = await import('../../nodes/registry');
    const { workflowToApi: toApi } = await import('../../server/graph/workflow');
    const registry = await loadRegistry();
    const names = registry.get('Train')!.widgetNames.filter((n) => n !== 'priorLossWeight');
    const values = names.map((n) => (n === 'sampleEvery' ? 80 : n === 'steps' ? 123 : registry.get('Train')!.info().widgets.find((w) => w.name === n)!.default));
    const wf = { nodes: [{ id: 1, type: 'Train', widgets_values: values, properties: { 'loragraph.widgets': names } }], links: [] };
    const api = toApi(wf, registry);
    expect(api['1']!.inputs.sampleEvery).toBe(80);
    expect(api['1']!.inputs.steps).toBe(123);
    expect(api['1']!.inputs.priorLossWeight).toBeUndefined(); // not in the file: the schema default applies
  });
});
