// The WD14 tagger end to end with a generated ONNX model: preprocessing (BGR order, white padding,
// input size from the model), thresholds incl. the equal-to-threshold edge, categories, ordering,
// exclude/always-first, and caption files written per mode.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Wd14Settings, defaultWd14Settings, loadTagger, mergeCaption, parseSelectedTags, preprocessForWd14, selectTags, tagFolder } from '../../../nodes/data/wd14';
import { type FakeTag, float32Below, writeFakeTagger } from './fixtures/tagger-model';
import { tempFolder, writeImage, writeText } from './fixtures/folders';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(() => cleanup());

const settings = (over: Partial<Wd14Settings> = {}): Wd14Settings => ({ ...defaultWd14Settings, ...over });

// Logits: ±6 around the colour's mean, so a tag is ~0.998 when its channel is full and ~0.002 when empty.
const colourTags: FakeTag[] = [
  { name: 'general', category: 9, bias: 2 },
  { name: 'sensitive', category: 9, bias: 0 },
  { name: 'questionable', category: 9, bias: -2 },
  { name: 'explicit', category: 9, bias: -4 },
  { name: 'red_theme', category: 0, bgr: [0, 0, 12], bias: -6 },
  { name: 'blue_theme', category: 0, bgr: [12, 0, 0], bias: -8 }, // 0.98 for blue, 0.12 for half-white padding
  { name: 'white_background', category: 0, bgr: [0, 12, 0], bias: -2.5 }, // 0.97 when half the image is white padding
  { name: 'long_hair', category: 0, bias: 3 },
  { name: '^_^', category: 0, bias: 3 },
  { name: 'excluded_tag', category: 0, bias: 3 },
  { name: 'rare_tag', category: 0, bias: -3 },
  { name: 'hatsune_miku', category: 4, bgr: [0, 0, 12], bias: -7 },
  { name: 'kagamine_rin', category: 4, bias: 1 }, // 0.73: above the general threshold, below the character one
];

describe('preprocessing', () => {
  it('pads to a centred white square, resizes, and orders channels BGR as float 0–255 NHWC', async () => {
    const file = await writeImage(path.join(dir, 'pre', 'red-wide.png'), 40, 20, [255, 0, 0]);
    const x = await preprocessForWd14(file, 40);
    expect(x.length).toBe(40 * 40 * 3);
    const at = (px: number, py: number) => Array.from(x.subarray((py * 40 + px) * 3, (py * 40 + px) * 3 + 3));
    expect(at(20, 0)).toEqual([255, 255, 255]); // padding on top
    expect(at(20, 20)).toEqual([0, 0, 255]); // red in BGR
    expect(at(20, 39)).toEqual([255, 255, 255]); // padding below
    const small = await preprocessForWd14(file, 16);
    expect(small.length).toBe(16 * 16 * 3);
  });
});

describe('tag selection', () => {
  const tags = parseSelectedTags('tag_id,name,category,count\n1,general,9,5\n2,sensitive,9,5\n3,a_tag,0,5\n4,b_tag,0,5\n5,"c,d",0,5\n6,char_x,4,5\n', 'selected_tags.csv');

  it('counts a probability equal to the threshold, not one just below', () => {
    const probs = new Float32Array([0.1, 0.2, 0.35, float32Below(0.35), 0.36, 0.85]);
    expect(selectTags(probs, tags, settings())).toEqual(['char x', 'c,d', 'a tag']);
    const charBelow = new Float32Array([0.1, 0.2, 0, 0, 0, float32Below(0.85)]);
    expect(selectTags(charBelow, tags, settings())).toEqual([]);
  });

  it('orders rating, always-first, characters, then by confidence', () => {
    const probs = new Float32Array([0.3, 0.7, 0.5, 0.9, 0, 0.95]);
    expect(selectTags(probs, tags, settings())).toEqual(['char x', 'b tag', 'a tag']);
    expect(selectTags(probs, tags, settings({ includeRating: true, alwaysFirstTags: ['a tag'], characterTagsFirst: true }))).toEqual(['sensitive', 'a tag', 'char x', 'b tag']);
    expect(selectTags(probs, tags, settings({ excludeTags: ['B_Tag'], replaceUnderscores: false }))).toEqual(['char_x', 'a_tag']);
  });

  it('reads quoted CSV names and rejects a file without the columns', () => {
    expect(tags[4]).toEqual({ name: 'c,d', category: 0 });
    expect(() => parseSelectedTags('id,label\n1,x\n', '/m/selected_tags.csv')).toThrow(/\/m\/selected_tags.csv: header must have "name" and "category"/);
  });

  it('merges with existing captions per mode', () => {
    expect(mergeCaption(null, ['a', 'b'], 'skip existing', ',')).toBe('a, b');
    expect(mergeCaption('mine, b', ['a', 'b'], 'skip existing', ',')).toBeNull();
    expect(mergeCaption('mine, b', ['a', 'b'], 'append', ',')).toBe('mine, b, a');
    expect(mergeCaption('mine, b', ['a', 'b'], 'replace', ',')).toBe('a, b');
  });
});

describe('tagging a folder with an ONNX model', () => {
  let folder: string;
  let model: string;
  beforeAll(async () => {
    model = await writeFakeTagger(path.join(dir, 'wd14-448'), colourTags, { size: 448, batch: 'dynamic', inputName: 'input', sigmoid: true });
    folder = path.join(dir, 'to-tag');
    await writeImage(path.join(folder, 'red.png'), 80, 80, [255, 0, 0]);
    await writeImage(path.join(folder, 'blue.jpg'), 500, 500, [0, 0, 255]);
    await writeImage(path.join(folder, '2_sub', 'red-wide.webp'), 60, 30, [255, 0, 0]);
  });

  it('reads the input size and batch from the model', async () => {
    const tagger = await loadTagger(model);
    expect([tagger.inputSize, tagger.maxBatch, tagger.tags.length]).toEqual([448, Infinity, colourTags.length]);
    await tagger.release();
  });

  it('writes captions with thresholds, categories, ordering and filters applied', async () => {
    const tagger = await loadTagger(path.join(model, 'model.onnx'));
    const steps: number[] = [];
    const written = await tagFolder(folder, tagger, settings({ includeRating: true, characterTagsFirst: true, alwaysFirstTags: ['long hair'], excludeTags: ['excluded_tag'], batchSize: 2 }), {
      onProgress: (done) => steps.push(done),
    });
    await tagger.release();
    expect(steps).toEqual([0, 2, 3]);
    const byName = Object.fromEntries(written.map((w) => [path.basename(w.image), w]));
    expect(byName['red.png']).toMatchObject({ action: 'written', caption: 'general, long hair, hatsune miku, red theme, ^_^' });
    expect(byName['blue.jpg'].caption).toBe('general, long hair, blue theme, ^_^');
    // Fed as RGB instead of BGR, the red images would read as blue: the order matters.
    // The white padding of the non-square image shows up as white background.
    expect(byName['red-wide.webp'].caption).toBe('general, long hair, hatsune miku, red theme, white background, ^_^');
    expect(await readFile(path.join(folder, 'red.txt'), 'utf8')).toBe(byName['red.png'].caption);
    expect(await readFile(path.join(folder, '2_sub', 'red-wide.txt'), 'utf8')).toBe(byName['red-wide.webp'].caption);
    expect((await readdir(folder)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('never overwrites an existing caption unless told to', async () => {
    const target = path.join(dir, 'existing');
    await writeImage(path.join(target, 'blue.png'), 64, 64, [0, 0, 255]);
    await writeText(path.join(target, 'blue.txt'), 'my caption, blue theme');
    const tagger = await loadTagger(model);
    const skip = await tagFolder(target, tagger, settings());
    expect(skip[0]).toMatchObject({ action: 'skipped', caption: 'my caption, blue theme' });
    expect(await readFile(path.join(target, 'blue.txt'), 'utf8')).toBe('my caption, blue theme');
    const append = await tagFolder(target, tagger, settings({ captionMode: 'append' }));
    expect(append[0]).toMatchObject({ action: 'appended', caption: 'my caption, blue theme, long hair, ^_^, excluded tag' });
    await writeFile(path.join(target, 'blue.txt'), 'old');
    const replace = await tagFolder(target, tagger, settings({ captionMode: 'replace' }));
    expect(await readFile(path.join(target, 'blue.txt'), 'utf8')).toBe('blue theme, long hair, ^_^, excluded tag');
    expect(replace[0].action).toBe('replaced');
    await tagger.release();
  });

  it('feeds a fixed-batch model one image at a time and keeps exact threshold edges', async () => {
    const edgeModel = await writeFakeTagger(
      path.join(dir, 'wd14-edge'),
      [
        { name: 'edge_general', category: 0, bias: 0.35 },
        { name: 'below_general', category: 0, bias: float32Below(0.35) },
        { name: 'edge_character', category: 4, bias: 0.85 },
        { name: 'below_character', category: 4, bias: float32Below(0.85) },
      ],
      { size: 32, batch: 1 },
    );
    const target = path.join(dir, 'black');
    for (const n of ['a', 'b', 'c']) await writeImage(path.join(target, `${n}.png`), 32, 32, [0, 0, 0]);
    const tagger = await loadTagger(edgeModel);
    expect(tagger.maxBatch).toBe(1);
    const steps: number[] = [];
    const written = await tagFolder(target, tagger, settings({ batchSize: 8 }), { onProgress: (d) => steps.push(d) });
    await tagger.release();
    expect(steps).toEqual([0, 1, 2, 3]);
    expect(written.map((w) => w.caption)).toEqual(Array(3).fill('edge character, edge general'));
  });

  it('names the missing file or mismatched tag list', async () => {
    await expect(loadTagger(path.join(dir, 'nowhere'))).rejects.toThrow(/nowhere\/model.onnx: not found/);
    const broken = await writeFakeTagger(path.join(dir, 'wd14-mismatch'), colourTags.slice(0, 3), { size: 32, batch: 'dynamic' });
    await writeFile(path.join(broken, 'selected_tags.csv'), 'tag_id,name,category,count\n1,a,0,1\n');
    const tagger = await loadTagger(broken);
    await expect(tagFolder(path.join(dir, 'black'), tagger, settings({ captionMode: 'replace' }))).rejects.toThrow(/gives 3 scores per image but .*selected_tags.csv lists 1 tags/);
    await tagger.release();
  });
});
