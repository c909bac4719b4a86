// Per-family widgets, without a browser: a widget declares the model families it means anything for in its zod
// metadata, /api/object_info carries that, and the editor works out the family flowing into each node (what Load
// Model reported after it ran, or its family widget) to grey out the widgets of other families, saying why.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineNode, widget } from '../../nodes/define';
import { loadRegistry } from '../../nodes/registry';
import { trainableFamilies } from '../../kernels/families/registry';
import { familyOf, ownFamily, widgetApplies, type FamilyGraph, type ModelFamilyRef } from '../../editor/graph/families';
import { applyServerMessage, emptyRun } from '../../editor/state/run';
import type { WidgetInfo } from '../../server/protocol';

/** A graph from edges [from, to] and the families nodes name themselves. */
function graph(edges: [string, string][], own: Record<string, ModelFamilyRef>): FamilyGraph {
  return {
    upstream: (id) => edges.filter(([, to]) => to === id).map(([from]) => from),
    downstream: (id) => edges.filter(([from]) => from === id).map(([, to]) => to),
    own: (id) => own[id],
  };
}
const flux: ModelFamilyRef = { id: 'flux2', label: 'FLUX.2 [klein]' };
const sd: ModelFamilyRef = { id: 'sd1', label: 'Stable Diffusion 1.x' };

describe('per-family widgets', () => {
  it('a widget\'s families and a family-choice widget reach /api/object_info from the zod metadata', () => {
    const node = defineNode({
      type: 'FamilyProbe', category: 'utils',
      widgets: z.object({
        clipSkip: widget.int({ default: 1, min: 1, tooltip: 'text encoder layer', families: ['sd1'] }),
        frames: widget.combo(['9', '81'] as const, { families: ['wan'] }),
        family: widget.combo(['auto', 'sd1', 'flux2'] as const, { choosesFamily: true }),
        seed: widget.seed(),
      }),
      execute: () => ({ outputs: {} }),
    });
    const byName = Object.fromEntries(node.info().widgets.map((w) => [w.name, w]));
    expect(byName.clipSkip).toMatchObject({ families: ['sd1'], tooltip: 'text encoder layer', min: 1 });
    expect(byName.frames!.families).toEqual(['wan']);
    expect(byName.family!.choosesFamily).toBe(true);
    expect(byName.seed!.families).toBeUndefined();
    expect(byName.seed!.choosesFamily).toBeUndefined();
  });

  it('the real nodes name only families loragraph trains: SD\'s clip skip, Wan\'s frames, experts and boundary', async () => {
    const info = (await loadRegistry()).objectInfo();
    const ids = new Set(trainableFamilies().map((f) => f.id));
    const bound = Object.values(info).flatMap((n) => n.widgets.filter((w) => w.families).map((w) => ({ node: n.type, ...w })));
    for (const w of bound) for (const f of w.families!) expect(ids.has(f), `${w.node}.${w.name}: ${f}`).toBe(true);
    const of = (type: string, name: string) => info[type]!.widgets.find((w) => w.name === name)!;
    expect(of('LoadModel', 'clipSkip').families).toEqual(['sd1']);
    expect(of('LoadModel', 'family').choosesFamily).toBe(true);
    for (const name of ['numFrames', 'fps', 'cfgHighNoise', 'startImage', 'endImage']) expect(of('Sampler', name).families, name).toEqual(['wan']);
    for (const name of ['trainStages', 'switchEvery', 'boundary']) expect(of('Train', name).families, name).toEqual(['wan']);
    expect(of('Sampler', 'cfg').families).toBeUndefined();
  });

  it('a node works on the family flowing into it: the nearest upstream, else what it feeds', () => {
    // 1 Load Model (FLUX) → 2 LoRA Target → 3 Train → 4 Sampler ← 5 Sampler Settings; 6 Load Model (SD) → 7 Sampler.
    const g = graph([['1', '2'], ['2', '3'], ['1', '3'], ['3', '4'], ['5', '4'], ['5', '3'], ['6', '7']], { '1': flux, '6': sd });
    expect(familyOf(g, '1')).toEqual(flux); // its own
    expect(familyOf(g, '4')).toEqual(flux);
    expect(familyOf(g, '5')).toEqual(flux); // nothing upstream: the Train and Sampler it feeds
    expect(familyOf(g, '7')).toEqual(sd);
    expect(familyOf(graph([['1', '2']], {}), '2')).toBeUndefined();
    // The nearest source wins (a second Load Model further down the chain).
    expect(familyOf(graph([['1', '2'], ['2', '3']], { '1': flux, '2': sd }), '3')).toEqual(sd);
  });

  it('a node names its family by what it reported after it ran, else by its family widget when not auto', () => {
    const widgets: WidgetInfo[] = [{ name: 'checkpoint', kind: 'path' }, { name: 'family', kind: 'combo', choosesFamily: true }];
    const values: Record<string, unknown> = { family: 'auto' };
    expect(ownFamily(undefined, widgets, (n) => values[n])).toBeUndefined();
    values.family = 'wan';
    expect(ownFamily(undefined, widgets, (n) => values[n])).toEqual({ id: 'wan', label: 'wan' });
    expect(ownFamily(flux, widgets, (n) => values[n])).toEqual(flux);
    // The editor's run state keeps what the server reported.
    const run = [
      { type: 'execution_start', data: { promptId: 'p', timestamp: 1 } },
      { type: 'executed', data: { promptId: 'p', node: '1', output: { text: ['FLUX.2 [klein] · tiny'], family: 'flux2', familyLabel: 'FLUX.2 [klein]' }, cached: false } },
    ].reduce((r, m) => applyServerMessage(r, m as never), emptyRun);
    expect(run.nodes['1']!.family).toEqual(flux);
  });

  it('a widget of other families is refused with the reason; unknown family or unannotated widget: it applies', () => {
    const clipSkip: WidgetInfo = { name: 'clipSkip', kind: 'int', families: ['sd1'] };
    expect(widgetApplies(clipSkip, flux)).toEqual({ applies: false, why: 'not used by FLUX.2 [klein] models (only sd1)' });
    expect(widgetApplies(clipSkip, sd)).toEqual({ applies: true });
    expect(widgetApplies(clipSkip, undefined)).toEqual({ applies: true });
    expect(widgetApplies({ name: 'seed', kind: 'seed' }, flux)).toEqual({ applies: true });
  });
});
