// How nodes show their results and make room for them, without a browser: what a node shows (the latest samples,
// the live chart instead of its picture, sheets streaming in), at what size (sample tiles ≥ 128 px, small images
// enlarged by whole pixels, charts fitted), how a grown node pushes its neighbours aside, the example graphs laid
// out without overlaps, and the edits that sample a saved checkpoint.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hitNodeImages, layoutNodeImages, MIN_TILE, shownImages, tileRect } from '../../editor/canvas/nodeImages';
import { growAndPush, overlappingPairs, type Box } from '../../editor/canvas/pushLayout';
import { freeSpot, nodeRect, originOf, planUseCheckpoint } from '../../editor/graph/useCheckpoint';
import type { NodeRun } from '../../editor/state/run';
import type { SampleSheet } from '../../nodes/sampling/sheet';
import { loadRegistry } from '../../nodes/registry';
import { repoRoot } from '../../server/paths';
import type { ObjectInfo, Workflow } from '../../server/protocol';

const run = (o: Partial<NodeRun>): NodeRun => ({ status: 'done', progress: null, loss: [], images: [], previews: [], sheets: [], text: [], error: null, warnings: [], ...o });

/** A sheet as the Sampler reports one: 3 prompts × without | with, 128 px tiles under an 18 px title. */
function sheet(step: number | null, file: string, tiles = 6, cols = 2): { url: string; sheet: SampleSheet } {
  const s: SampleSheet = {
    image: { filename: file, subfolder: '', type: 'temp' },
    step,
    lora: step === null ? null : `output/star/star_${String(step).padStart(9, '0')}.safetensors`,
    tiles: Array.from({ length: tiles }, (_, i) => ({
      x: (i % cols) * 130, y: 18 + Math.floor(i / cols) * 130, w: 128, h: 128,
      prompt: `prompt ${Math.floor(i / 2)}`, seed: 7 + Math.floor(i / 2), strength: i % 2 ? 1 : 0,
    })),
  };
  return { url: `api/view?filename=${file}&subfolder=&type=temp`, sheet: s };
}

describe('what a node shows', () => {
  it('a sample sheet at full size (every tile ≥ 128 px): the node grows to it, and a tile is found under a point', () => {
    const s = sheet(20, 'samples-8.png');
    const layout = layoutNodeImages(run({ images: [s.url], sheets: [s] }), 300, 240);
    expect(layout.images).toHaveLength(1);
    const img = layout.images[0]!;
    expect([img.w, img.h, img.scale]).toEqual([258, 406, 1]);
    expect(layout.width).toBe(258 + 16); // wider than the node: it grows
    expect(layout.height).toBe(300 + 406 + 8);
    for (const t of s.sheet.tiles) expect(tileRect(img, t).w).toBeGreaterThanOrEqual(MIN_TILE);
    const r = tileRect(img, s.sheet.tiles[3]!);
    expect(hitNodeImages(layout, r.x + 5, r.y + 5)).toMatchObject({ tile: 3, image: { url: s.url } });
    expect(hitNodeImages(layout, img.x + 2, img.y + 2)).toMatchObject({ tile: null }); // the title band
    expect(hitNodeImages(layout, 1, 1)).toBeNull();
  });

  it('a training run shows its latest sheet, the live loss chart instead of the chart picture, and the samples link', () => {
    const a = sheet(10, 'train-10.png', 3, 3), b = sheet(20, 'train-20.png', 3, 3);
    const chart = 'api/view?filename=loss-7.png&subfolder=&type=temp';
    const n = run({ images: [a.url, b.url, chart], sheets: [a, b], loss: [{ step: 1, loss: 1 }] });
    expect(shownImages(n).map((i) => i.url)).toEqual([b.url]);
    const layout = layoutNodeImages(n, 600, 404);
    expect(layout.chart).toMatchObject({ y: 600, h: 150 });
    expect(layout.images[0]!.y).toBe(600 + 158);
    expect(layout.link?.text).toMatch(/2 steps × 3 images/);
    expect(hitNodeImages(layout, layout.link!.x + 3, layout.link!.y + 3)).toEqual({ link: true });
    // Without the live chart (after a reload) the chart picture shows as well.
    expect(shownImages({ ...n, loss: [] }).map((i) => i.url)).toEqual([b.url, chart]);
  });

  it('small images are enlarged by whole pixels to 128 px; charts and contact sheets fit the node (at least 256 px)', () => {
    const urls = ['a.png', 'b.png', 'c.png', 'd.png'];
    const sizes: Record<string, { width: number; height: number }> = { 'a.png': { width: 32, height: 32 }, 'b.png': { width: 32, height: 32 }, 'c.png': { width: 32, height: 32 }, 'd.png': { width: 32, height: 32 } };
    const four = layoutNodeImages(run({ images: urls }), 100, 240, (u) => sizes[u] ?? null);
    expect(four.images.map((i) => [i.w, i.h])).toEqual(Array(4).fill([128, 128]));
    expect(new Set(four.images.map((i) => i.x)).size).toBe(2); // 2 × 2
    expect(four.width).toBe(2 * 128 + 6 + 16);
    const sheetPng = { width: 608, height: 536 };
    const fitted = layoutNodeImages(run({ images: ['sheet.png'] }), 100, 272, () => sheetPng);
    expect([fitted.images[0]!.w, fitted.images[0]!.h]).toEqual([256, 226]);
    expect(fitted.width).toBe(272);
    const narrow = layoutNodeImages(run({ images: ['sheet.png'] }), 100, 200, () => sheetPng);
    expect(narrow.images[0]!.w).toBe(256); // never below 256: the node grows
    expect(layoutNodeImages(run({ images: ['sheet.png'] }), 100, 800, () => sheetPng).images[0]!.w).toBe(608); // never enlarged
  });

  it('preview frames: single images add up; wide frames replace each other (the newest loaded one shows)', () => {
    const wide = { width: 388, height: 146 };
    expect(shownImages(run({ previews: ['p1', 'p2'] }), () => ({ width: 64, height: 64 })).map((i) => i.url)).toEqual(['p1', 'p2']);
    expect(shownImages(run({ previews: ['p1', 'p2', 'p3'] }), (u) => (u === 'p3' ? null : wide)).map((i) => i.url)).toEqual(['p2']);
    // Fitted like a chart until the node says it is a sheet (a chart frame must not widen its node).
    expect(layoutNodeImages(run({ previews: ['p1'] }), 50, 300, () => wide).images[0]).toMatchObject({ w: 284, h: 107 });
    expect(layoutNodeImages(run({ previews: ['p1'] }), 50, 404, () => wide).images[0]).toMatchObject({ w: 388, h: 146 });
  });

  it('a node that shows nothing asks for no room', () => {
    expect(layoutNodeImages(run({}), 120, 300)).toMatchObject({ width: 0, height: 0, images: [], chart: null, link: null });
    expect(layoutNodeImages(undefined, 120, 300)).toMatchObject({ width: 0, height: 0 });
  });
});

describe('pushing neighbours aside', () => {
  const box = (id: string, x: number, y: number, w = 100, h = 100): Box => ({ id, x, y, w, h });

  it('moves the nodes a grown node covers: below ones down, beside ones right, and on down the column', () => {
    const boxes = [box('a', 0, 0), box('below', 0, 130), box('under-below', 0, 260), box('beside', 130, 0), box('far', 600, 600)];
    const moves = growAndPush(boxes, 'a', 160, 300);
    expect(moves.get('below')).toEqual({ x: 0, y: 320 });
    expect(moves.get('under-below')).toEqual({ x: 0, y: 440 }); // pushed on, keeping the 20 px margin
    expect(moves.get('beside')).toEqual({ x: 180, y: 0 });
    expect(moves.has('far')).toBe(false);
    const after = boxes.map((b) => (b.id === 'a' ? { ...b, w: 160, h: 300 } : { ...b, ...(moves.get(b.id) ?? {}) }));
    expect(overlappingPairs(after)).toEqual([]);
  });

  it('leaves alone nodes that overlapped or sat close before, and moves nothing when there is room', () => {
    const boxes = [box('a', 0, 0), box('overlapping', 50, 50), box('close', 110, 0), box('room', 0, 400)];
    const moves = growAndPush(boxes, 'a', 100, 250);
    expect([...moves.keys()]).toEqual([]);
  });

  it('a diagonal neighbour goes the shorter way', () => {
    const moves = growAndPush([box('a', 0, 0), box('d', 110, 110)], 'a', 300, 130);
    expect(moves.get('d')).toEqual({ x: 110, y: 150 });
  });
});

describe('the example graphs', () => {
  for (const file of ['quickstart.json', 'quickstart-dop.json']) {
    it(`${file}: no two nodes overlap (title bars and the room for progress bars above them included)`, () => {
      const wf = JSON.parse(readFileSync(join(repoRoot, 'graphs', file), 'utf8')) as Workflow;
      const boxes = wf.nodes.map((n) => {
        const r = nodeRect(n);
        return { id: String(n.id), x: r.x, y: r.y - 26, w: r.w, h: r.h + 26 }; // a progress bar is drawn 24 px above a title
      });
      expect(overlappingPairs(boxes)).toEqual([]);
    });
  }
});

describe('sampling a saved checkpoint', async () => {
  const registry = await loadRegistry();
  const info = registry.objectInfo() as ObjectInfo;
  const quickstart = () => JSON.parse(readFileSync(join(repoRoot, 'graphs', 'quickstart.json'), 'utf8')) as Workflow;
  const sizeOf = (type: string): [number, number] => (type === 'LoadLora' ? [240, 58] : [300, 438]);

  it('adds a Load LoRA on the Train node’s model and a Sampler like the graph’s, fed by it, where nothing else is', () => {
    const wf = quickstart();
    const plan = planUseCheckpoint(wf, info, '7', 'output/star/star_000000200.safetensors', 200, sizeOf);
    const adds = plan.edits.filter((e) => e.op === 'add');
    expect(adds.map((e) => e.op === 'add' && e.type)).toEqual(['LoadLora', 'Sampler']);
    const lora = adds[0]!, sampler = adds[1]!;
    if (lora.op !== 'add' || sampler.op !== 'add') throw new Error('adds');
    expect(lora.widgets).toEqual({ loraFile: 'output/star/star_000000200.safetensors' });
    expect(sampler.widgets).toMatchObject({ prompts: expect.stringContaining('sks'), seed: 7, compare: true, steps: 20 });
    expect(plan.edits.filter((e) => e.op === 'link')).toEqual([
      { op: 'link', from: '1', output: 'model', to: 'lora', input: 'model' },
      { op: 'link', from: '1', output: 'model', to: 'sampler', input: 'model' },
      { op: 'link', from: '1', output: 'clip', to: 'sampler', input: 'clip' },
      { op: 'link', from: '1', output: 'vae', to: 'sampler', input: 'vae' },
      { op: 'link', from: 'lora', output: 'training', to: 'sampler', input: 'training' },
    ]);
    // Placed clear of every node of the graph and of each other.
    const taken = wf.nodes.map((n) => ({ id: String(n.id), ...nodeRect(n) }));
    const placed = [lora, sampler].map((a, i) => ({ id: a.ref, x: a.at[0], y: a.at[1] - 30, w: a.width ?? 0, h: (i ? a.height ?? 438 : 58) + 30 }));
    expect(overlappingPairs([...taken, ...placed])).toEqual([]);
    expect(plan.reveal).toEqual(['lora', 'sampler']);
  });

  it('a second pick sets the file of the Load LoRA it added and adds nothing', () => {
    const wf = quickstart();
    wf.nodes.push({ id: 20, type: 'LoadLora', pos: [2000, 40], size: [340, 58], inputs: [{ name: 'model', type: 'MODEL', link: 100 }], outputs: [{ name: 'training', type: 'TRAINING', links: [101] }], widgets_values: ['output/star/star_000000100.safetensors'] });
    wf.nodes.push({ id: 21, type: 'Sampler', pos: [2400, 40], size: [300, 858], inputs: [{ name: 'training', type: 'TRAINING', link: 101 }], outputs: [], widgets_values: [] });
    wf.links.push([100, 1, 0, 20, 0, 'MODEL'], [101, 20, 0, 21, 0, 'TRAINING']);
    expect(originOf(wf, wf.nodes.find((n) => n.id === 21)!, 'training')?.node.id).toBe(20);
    const plan = planUseCheckpoint(wf, info, '7', 'output/star/star_000000300.safetensors', 300, sizeOf);
    expect(plan.edits).toEqual([{ op: 'set', node: '20', widget: 'loraFile', value: 'output/star/star_000000300.safetensors' }]);
    expect(plan.sampler).toBe('21');
  });

  it('free spots: right of the anchor when clear, else below, else further right', () => {
    const anchor = { x: 0, y: 0, w: 100, h: 100 };
    expect(freeSpot([anchor], anchor, 50, 50)).toEqual([140, 30]);
    expect(freeSpot([anchor, { x: 140, y: 0, w: 100, h: 100 }], anchor, 50, 50)).toEqual([0, 170]);
  });
});
