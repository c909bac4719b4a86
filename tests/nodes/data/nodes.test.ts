// The Dataset and WD14 Tagger node declarations: widget info, execution with a real context-shaped
// object, per-bucket counts and the contact sheet on the node, tagger → dataset captions.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import datasetNode, { parseResolutions } from '../../../nodes/dataset';
import type { NodeContext } from '../../../nodes/define';
import type { Dataset } from '../../../nodes/data/dataset';
import taggerNode from '../../../nodes/wd14-tagger';
import { tempFolder, writeImage, writeText } from './fixtures/folders';
import { writeFakeTagger } from './fixtures/tagger-model';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(() => cleanup());

function context(root: string) {
  const warnings: string[] = [];
  const previews: Uint8Array[] = [];
  const paths = { models: path.join(root, 'models'), datasets: path.join(root, 'datasets'), input: path.join(root, 'input'), output: path.join(root, 'output'), temp: path.join(root, 'temp'), runs: path.join(root, 'runs') };
  const ctx: NodeContext = {
    nodeId: '7',
    promptId: 'p',
    cacheKey: 'abcdef0123456789',
    workDir: path.join(root, 'work'),
    paths,
    signal: new AbortController().signal,
    resolvePath: (kind, p) => path.resolve(paths[kind as keyof typeof paths], p),
    progress: () => {},
    throwIfInterrupted: () => {},
    warn: (m) => warnings.push(m),
    preview: (img) => previews.push(img.data),
  };
  return { ctx, warnings, previews };
}

const widgetsOf = (node: typeof datasetNode, values: Record<string, unknown>) => node.widgets.parse(values) as Record<string, unknown>;

describe('Dataset node', () => {
  it('declares kohya/ai-toolkit widget names with defaults', () => {
    const info = datasetNode.info();
    const names = info.widgets.map((w) => w.name);
    for (const n of ['folder', 'captionExtension', 'triggerWord', 'defaultCaption', 'repeats', 'isRegularization', 'weight', 'captionDropoutRate', 'tokenDropoutRate', 'shuffleTags', 'keepTokens', 'separator', 'flipX', 'flipY', 'resolution', 'bucketStep', 'skipBadFiles', 'numFrames', 'videoModel', 'fps', 'clipWindow', 'imageToVideo', 'cacheLatents', 'cacheTextEmbeddings']) {
      expect(names).toContain(n);
    }
    expect(info.outputs).toEqual([{ name: 'dataset', type: 'DATASET' }, { name: 'preview', type: 'IMAGES' }]);
    expect(parseResolutions('1024, 512 768')).toEqual([512, 768, 1024]);
    expect(() => parseResolutions('big')).toThrow(/^resolution:/);
  });

  it('builds the dataset, shows bucket counts and a contact sheet, warns about skipped files', async () => {
    const root = path.join(dir, 'project');
    await writeImage(path.join(root, 'datasets', 'stars', '2_star', 'a.png'), 64, 64);
    await writeImage(path.join(root, 'datasets', 'stars', '2_star', 'b.png'), 128, 64);
    await writeText(path.join(root, 'datasets', 'stars', '2_star', 'bad.png'), '');
    const { ctx, warnings, previews } = context(root);
    const result = await datasetNode.execute({
      inputs: {},
      widgets: widgetsOf(datasetNode, { folder: 'stars', resolution: '64', bucketStep: 32, triggerWord: 'sks', skipBadFiles: true }),
      ctx,
    });
    const ds = result.outputs.dataset as Dataset;
    expect(ds.items.map((i) => path.basename(i.file))).toEqual(['a.png', 'b.png']);
    expect(result.ui?.text).toEqual(['2 files, 4 samples per epoch', '64x64: 1 file (2 per epoch)', '96x32: 1 file (2 per epoch)']);
    expect(warnings[0]).toMatch(/skipped 1 bad file.*\n.*bad\.png/);
    expect(previews).toHaveLength(1);
    const file = result.ui!.images![0].filename;
    expect((await readFile(path.join(root, 'temp', file))).subarray(1, 4).toString()).toBe('PNG');
  });

  it('refuses caching that the settings make impossible, naming the widget', async () => {
    const { ctx } = context(path.join(dir, 'project'));
    await expect(
      datasetNode.execute({ inputs: {}, widgets: widgetsOf(datasetNode, { folder: 'stars', shuffleTags: true, cacheTextEmbeddings: true }), ctx }),
    ).rejects.toThrow(/^cacheTextEmbeddings: .*shuffleTags/);
  });
});

describe('WD14 Tagger node', () => {
  it('captions the folder and lists what it wrote', async () => {
    const root = path.join(dir, 'tagger-project');
    await writeFakeTagger(path.join(root, 'models', 'wd14'), [{ name: 'red_theme', category: 0, bgr: [0, 0, 12], bias: -6 }, { name: 'solo', category: 0, bias: 3 }], { size: 32, batch: 'dynamic' });
    await writeImage(path.join(root, 'datasets', 'set', 'r.png'), 48, 48, [255, 0, 0]);
    await writeImage(path.join(root, 'datasets', 'set', 'k.png'), 48, 48, [0, 0, 0]);
    await writeText(path.join(root, 'datasets', 'set', 'k.txt'), 'already captioned');
    const { ctx } = context(root);
    const result = await taggerNode.execute({ inputs: {}, widgets: widgetsOf(taggerNode, { folder: 'set', model: 'wd14' }), ctx });
    expect(result.ui?.text).toEqual(['1 caption file(s) written, 1 kept (already captioned)', 'r.png (written): red theme, solo']);
    expect(await readFile(path.join(root, 'datasets', 'set', 'r.txt'), 'utf8')).toBe('red theme, solo');
    expect(await readFile(path.join(root, 'datasets', 'set', 'k.txt'), 'utf8')).toBe('already captioned');

    const ds = await datasetNode.execute({ inputs: { captions: result.outputs.captions }, widgets: widgetsOf(datasetNode, { folder: 'set', resolution: '64', bucketStep: 16 }), ctx });
    expect((ds.outputs.dataset as Dataset).items.map((i) => i.caption)).toEqual(['already captioned', 'red theme, solo']);
  });
});
