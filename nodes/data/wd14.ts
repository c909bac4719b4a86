// The WD14 tagger: runs a SmilingWolf-style ONNX tagger (model.onnx + selected_tags.csv) with
// onnxruntime-node over a folder of images and writes tag captions next to them.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { captionPathFor, readCaptionFile } from './caption-files';
import { joinTags, splitTags } from './captions';
import { decodeImage, probeImage } from './images';
import { scanFolder } from './scan';

export const TAG_CATEGORY = { general: 0, character: 4, rating: 9 } as const;

export interface TagDefinition {
  name: string;
  category: number;
}

export type CaptionMode = 'skip existing' | 'append' | 'replace';

export interface Wd14Settings {
  generalThreshold: number;
  characterThreshold: number;
  /** "long_hair" → "long hair" (emoticons such as "^_^" are left alone). */
  replaceUnderscores: boolean;
  /** Tags never written (compared without regard to case or underscores). */
  excludeTags: string[];
  /** Tags moved to the front, in this order, when the tagger finds them. */
  alwaysFirstTags: string[];
  characterTagsFirst: boolean;
  /** Put the most likely rating tag (general / sensitive / questionable / explicit) first. */
  includeRating: boolean;
  /** What to do with an image that already has a caption file: never overwrite unless told. */
  captionMode: CaptionMode;
  captionExtension: string;
  separator: string;
  batchSize: number;
}

export const defaultWd14Settings: Wd14Settings = {
  generalThreshold: 0.35,
  characterThreshold: 0.85,
  replaceUnderscores: true,
  excludeTags: [],
  alwaysFirstTags: [],
  characterTagsFirst: false,
  includeRating: false,
  captionMode: 'skip existing',
  captionExtension: '.txt',
  separator: ',',
  batchSize: 4,
};

// Danbooru emoticon tags whose underscores are part of the face.
const KAOMOJI = new Set(['0_0', '(o)_(o)', '+_+', '+_-', '._.', '<o>_<o>', '<|>_<|>', '=_=', '>_<', '3_3', '6_9', '>_o', '@_@', '^_^', 'o_o', 'u_u', 'x_x', '|_|', '||_||']);

export function displayTag(name: string, replaceUnderscores: boolean): string {
  return replaceUnderscores && !KAOMOJI.has(name) ? name.replace(/_/g, ' ') : name;
}

const normalizeTag = (t: string) => t.trim().toLowerCase().replace(/_/g, ' ');

/** Parses selected_tags.csv (`tag_id,name,category,count`); errors name the file and line. */
export function parseSelectedTags(text: string, file: string): TagDefinition[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new Error(`${file}: no tags (expected a header "tag_id,name,category,count" and one line per tag)`);
  const header = parseCsvLine(lines[0]).map((h) => h.trim().toLowerCase());
  const nameAt = header.indexOf('name');
  const categoryAt = header.indexOf('category');
  if (nameAt < 0 || categoryAt < 0) throw new Error(`${file}: header must have "name" and "category" columns (got "${lines[0]}")`);
  return lines.slice(1).map((line, i) => {
    const cells = parseCsvLine(line);
    const category = Number(cells[categoryAt]);
    if (cells[nameAt] === undefined || !Number.isInteger(category)) throw new Error(`${file}: line ${i + 2} is not "tag_id,name,category,count": ${line}`);
    return { name: cells[nameAt], category };
  });
}

function parseCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') cells.push(cell), (cell = '');
    else cell += ch;
  }
  cells.push(cell);
  return cells;
}

/**
 * The tags for one image's probabilities, in caption order: the rating (if wanted), always-first
 * tags, character tags (if first), then the rest by confidence. A probability equal to the
 * threshold counts (compared in float32, the precision the model produced).
 */
export function selectTags(probabilities: ArrayLike<number>, tags: readonly TagDefinition[], settings: Wd14Settings): string[] {
  const generalAt = Math.fround(settings.generalThreshold);
  const characterAt = Math.fround(settings.characterThreshold);
  const excluded = new Set(settings.excludeTags.map(normalizeTag));
  let rating: { name: string; p: number } | null = null;
  const found: { name: string; p: number; character: boolean }[] = [];
  tags.forEach((tag, i) => {
    const p = probabilities[i];
    if (tag.category === TAG_CATEGORY.rating) {
      if (!rating || p > rating.p) rating = { name: tag.name, p };
      return;
    }
    const character = tag.category === TAG_CATEGORY.character;
    if (p >= (character ? characterAt : generalAt) && !excluded.has(normalizeTag(tag.name))) found.push({ name: tag.name, p, character });
  });
  found.sort((a, b) => b.p - a.p);
  const first = settings.alwaysFirstTags.map(normalizeTag);
  const isFirst = (name: string) => first.includes(normalizeTag(name));
  const ordered = [
    ...first.flatMap((f) => found.filter((t) => normalizeTag(t.name) === f)),
    ...(settings.characterTagsFirst ? found.filter((t) => t.character && !isFirst(t.name)) : []),
    ...found.filter((t) => !isFirst(t.name) && !(settings.characterTagsFirst && t.character)),
  ].map((t) => t.name);
  const r = rating as { name: string; p: number } | null;
  if (settings.includeRating && r && !excluded.has(normalizeTag(r.name))) ordered.unshift(r.name);
  return ordered.map((name) => displayTag(name, settings.replaceUnderscores));
}

/**
 * The model input for one image, exactly as WD14 taggers expect it: upright, transparency over
 * white, padded to a centred white square, resized to size×size, BGR channel order, float32 0–255,
 * NHWC (one image: size·size·3 values).
 */
export async function preprocessForWd14(file: string, size: number): Promise<Float32Array> {
  const { data, width, height } = await decodeImage(file);
  const side = Math.max(width, height);
  const padded = Buffer.alloc(side * side * 3, 255);
  const left = Math.floor((side - width) / 2);
  const top = Math.floor((side - height) / 2);
  for (let y = 0; y < height; y++) data.copy(padded, ((top + y) * side + left) * 3, y * width * 3, (y + 1) * width * 3);
  const resized = side === size ? padded : await sharp(padded, { raw: { width: side, height: side, channels: 3 } }).resize(size, size, { kernel: side > size ? 'lanczos3' : 'cubic' }).raw().toBuffer();
  const out = new Float32Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    out[i * 3] = resized[i * 3 + 2];
    out[i * 3 + 1] = resized[i * 3 + 1];
    out[i * 3 + 2] = resized[i * 3];
  }
  return out;
}

export interface TaggerModel {
  /** Square input side read from the model (448 for the standard WD14 models). */
  inputSize: number;
  /** Largest batch the model accepts (1 for models exported with a fixed batch). */
  maxBatch: number;
  tags: TagDefinition[];
  /** Probabilities [images][tags]. */
  predict(inputs: Float32Array[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/** Loads `model.onnx` and `selected_tags.csv` from a folder (or a model file with the CSV beside it). */
export async function loadTagger(modelPath: string, options: { executionProviders?: string[] } = {}): Promise<TaggerModel> {
  const isFolder = (await stat(modelPath).catch(() => null))?.isDirectory() || !modelPath.toLowerCase().endsWith('.onnx');
  const modelFile = isFolder ? path.join(modelPath, 'model.onnx') : modelPath;
  const tagsFile = path.join(path.dirname(modelFile), 'selected_tags.csv');
  for (const f of [modelFile, tagsFile]) {
    if (!(await stat(f).catch(() => null))) throw new Error(`${f}: not found (a WD14 tagger folder holds model.onnx and selected_tags.csv)`);
  }
  const tags = parseSelectedTags(await readFile(tagsFile, 'utf8'), tagsFile);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelFile, { executionProviders: options.executionProviders ?? ['cpu'] });
  } catch (err) {
    throw new Error(`${modelFile}: cannot load tagger model: ${err instanceof Error ? err.message : String(err)}`);
  }
  const meta = session.inputMetadata[0];
  const shape = meta && meta.isTensor ? meta.shape : [];
  if (shape.length !== 4 || shape[3] !== 3) throw new Error(`${modelFile}: expected an NHWC image input [N, size, size, 3], got [${shape.join(', ')}]`);
  const inputSize = typeof shape[1] === 'number' ? shape[1] : 448;
  const maxBatch = typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : Infinity;
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  return {
    inputSize,
    maxBatch,
    tags,
    async predict(inputs) {
      const data = new Float32Array(inputs.length * inputSize * inputSize * 3);
      inputs.forEach((x, i) => data.set(x, i * x.length));
      const result = await session.run({ [inputName]: new ort.Tensor('float32', data, [inputs.length, inputSize, inputSize, 3]) });
      const out = result[outputName];
      const probs = out.data as Float32Array;
      const perImage = probs.length / inputs.length;
      if (perImage !== tags.length) throw new Error(`${modelFile}: the model gives ${perImage} scores per image but ${tagsFile} lists ${tags.length} tags`);
      return inputs.map((_, i) => probs.slice(i * perImage, (i + 1) * perImage));
    },
    release: () => session.release(),
  };
}

export interface WrittenCaption {
  image: string;
  captionFile: string;
  /** The caption file's content after this run. */
  caption: string;
  action: 'written' | 'appended' | 'replaced' | 'skipped';
}

/** The caption text for a mode; null when the existing caption stays as it is. */
export function mergeCaption(existing: string | null, tags: readonly string[], mode: CaptionMode, separator: string): string | null {
  if (existing === null || mode === 'replace') return joinTags(tags, separator);
  if (mode === 'skip existing') return null;
  const have = splitTags(existing, separator);
  const seen = new Set(have.map(normalizeTag));
  return joinTags([...have, ...tags.filter((t) => !seen.has(normalizeTag(t)))], separator);
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, 'utf8');
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Tags every image of a dataset folder (the same files the Dataset node reads) and writes captions.
 * All images and existing captions are checked before anything is written.
 */
export async function tagFolder(
  folder: string,
  tagger: TaggerModel,
  settings: Wd14Settings,
  progress: { onProgress?: (done: number, total: number) => void; throwIfInterrupted?: () => void } = {},
): Promise<WrittenCaption[]> {
  const { files } = await scanFolder(folder, settings.captionExtension);
  const images = files.filter((f) => f.kind === 'image');
  if (images.length === 0) throw new Error(`${folder}: no images to tag`);
  const jobs: { image: string; captionFile: string; existing: string | null }[] = [];
  const results: WrittenCaption[] = [];
  for (const f of images) {
    const captionFile = captionPathFor(f.file, settings.captionExtension);
    const existing = f.captionFile ? await readCaptionFile(f.captionFile) : null;
    if (existing !== null && settings.captionMode === 'skip existing') {
      results.push({ image: f.file, captionFile, caption: existing, action: 'skipped' });
      continue;
    }
    await probeImage(f.file);
    jobs.push({ image: f.file, captionFile, existing });
  }
  const batchSize = Math.max(1, Math.min(settings.batchSize, tagger.maxBatch));
  progress.onProgress?.(0, jobs.length);
  for (let i = 0; i < jobs.length; i += batchSize) {
    progress.throwIfInterrupted?.();
    const chunk = jobs.slice(i, i + batchSize);
    const inputs = await Promise.all(chunk.map((j) => preprocessForWd14(j.image, tagger.inputSize)));
    const probabilities = await tagger.predict(inputs);
    for (const [k, job] of chunk.entries()) {
      const tags = selectTags(probabilities[k], tagger.tags, settings);
      const caption = mergeCaption(job.existing, tags, settings.captionMode, settings.separator)!;
      await writeAtomically(job.captionFile, caption);
      const action = job.existing === null ? 'written' : settings.captionMode === 'append' ? 'appended' : 'replaced';
      results.push({ image: job.image, captionFile: job.captionFile, caption, action });
    }
    progress.onProgress?.(Math.min(i + batchSize, jobs.length), jobs.length);
  }
  return results.sort((a, b) => a.image.localeCompare(b.image));
}
