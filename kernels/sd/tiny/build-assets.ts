// Writes the committed assets of the embedded default that need no network: the tiny model's
// tokenizer folder, the quickstart's demo dataset (stars under "[trigger]", a few plain shapes) and a regularization set
// of ordinary shapes for DOP. Deterministic: re-running gives byte-identical files.
//   npx tsx kernels/sd/tiny/build-assets.ts [assetsFolder]
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../../random';
import { COMMON_WORDS } from '../tokenizer/common-words';
import { END_OF_TEXT, START_OF_TEXT } from '../tokenizer/pretokenize';
import { formatMergesTxt, formatVocabJson, trainBpe } from '../tokenizer/train-bpe';
import {
  ALL_SHAPES,
  COLOR_NAMES,
  WORLD_SHAPES,
  captionOf,
  renderScene,
  sampleScene,
  type ColorName,
} from './world';

export const ASSETS_SEED = 20240607;
export const IMAGE_SIZE = 64;
/** The placeholder the dataset captions use; the Dataset node puts the user's trigger word there. */
export const TRIGGER_PLACEHOLDER = '[trigger]';
/**
 * Star colours in the demo dataset. Purple and black stars never appear, so a prompt such as
 * "a purple [trigger] on a white background" tests the concept in a new setting.
 */
export const DEMO_STAR_COLORS: readonly ColorName[] = ['red', 'yellow', 'white', 'blue', 'green', 'orange'];
export const DEMO_IMAGE_COUNT = 16;
/**
 * Ordinary shapes in the demo dataset, captioned by name without the trigger. As in a well-made kohya
 * dataset, images without the concept show that the trigger word, not the colour words around it,
 * means "star": trained on stars alone the LoRA also turns "a yellow square" into a star.
 */
export const DEMO_OTHER_COUNT = 8;
export const REGULARIZATION_IMAGE_COUNT = 16;
// Upper bound on merges; training stops earlier, once no pair occurs twice (~870 merges, ~1400 tokens).
const MAX_MERGES = 1500;

/** Relative paths under the assets folder. */
export const ASSET_PATHS = {
  tokenizer: 'tiny/tokenizer',
  demoDataset: 'demo-dataset',
  regularization: 'demo-reg',
} as const;

/** Every caption of the pretraining world and of the star concept. */
export function worldCaptions(): string[] {
  const captions: string[] = [];
  for (const shape of ALL_SHAPES) {
    for (const color of COLOR_NAMES) {
      for (const background of COLOR_NAMES) {
        if (color !== background) captions.push(captionOf({ shape, color, background, cx: 0.5, cy: 0.5, size: 0.3, rotation: 0 }));
      }
    }
  }
  return captions;
}

/** The tiny model's tokenizer as a transformers/diffusers `tokenizer/` folder. */
export function writeTinyTokenizer(folder: string): void {
  // Common words go in twice so that every pair inside them occurs at least twice and each word
  // ends up a token of its own, as frequent words are in CLIP's vocabulary.
  const { vocab, merges } = trainBpe([...worldCaptions(), ...COMMON_WORDS, ...COMMON_WORDS], { maxMerges: MAX_MERGES });
  mkdirSync(folder, { recursive: true });
  writeFileAtomic(join(folder, 'vocab.json'), formatVocabJson(vocab));
  writeFileAtomic(join(folder, 'merges.txt'), formatMergesTxt(merges));
  const special = { bos_token: START_OF_TEXT, eos_token: END_OF_TEXT, pad_token: END_OF_TEXT, unk_token: END_OF_TEXT };
  writeFileAtomic(join(folder, 'special_tokens_map.json'), `${JSON.stringify(special, null, 2)}\n`);
  const config = { tokenizer_class: 'CLIPTokenizer', model_max_length: 77, do_lower_case: true, ...special };
  writeFileAtomic(join(folder, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** 16 stars of the known colours, captioned "a red [trigger] on a blue background", and a few ordinary shapes. */
export async function writeDemoDataset(folder: string, seed = ASSETS_SEED): Promise<void> {
  const rng = new Rng(seed);
  mkdirSync(folder, { recursive: true });
  for (let i = 0; i < DEMO_IMAGE_COUNT; i++) {
    const scene = sampleScene(rng, { shapes: ['star'], colors: [DEMO_STAR_COLORS[i % DEMO_STAR_COLORS.length]] });
    const name = `star-${String(i + 1).padStart(2, '0')}`;
    await writePng(join(folder, `${name}.png`), renderScene(scene, IMAGE_SIZE), IMAGE_SIZE);
    writeFileAtomic(join(folder, `${name}.txt`), `${captionOf(scene, { shapeWord: TRIGGER_PLACEHOLDER })}\n`);
  }
  const others = new Rng(seed + 2);
  for (let i = 0; i < DEMO_OTHER_COUNT; i++) {
    const scene = sampleScene(others, { shapes: [WORLD_SHAPES[i % WORLD_SHAPES.length]] });
    const name = `other-${String(i + 1).padStart(2, '0')}`;
    await writePng(join(folder, `${name}.png`), renderScene(scene, IMAGE_SIZE), IMAGE_SIZE);
    writeFileAtomic(join(folder, `${name}.txt`), `${captionOf(scene)}\n`);
  }
}

/** 16 ordinary shapes (circle, square, triangle in turn) with their plain captions, for DOP. */
export async function writeRegularizationSet(folder: string, seed = ASSETS_SEED + 1): Promise<void> {
  const rng = new Rng(seed);
  mkdirSync(folder, { recursive: true });
  for (let i = 0; i < REGULARIZATION_IMAGE_COUNT; i++) {
    const scene = sampleScene(rng, { shapes: [WORLD_SHAPES[i % WORLD_SHAPES.length]] });
    const name = `shape-${String(i + 1).padStart(2, '0')}`;
    await writePng(join(folder, `${name}.png`), renderScene(scene, IMAGE_SIZE), IMAGE_SIZE);
    writeFileAtomic(join(folder, `${name}.txt`), `${captionOf(scene)}\n`);
  }
}

/** Writes all three under an assets folder (the repository's `assets/` by default). */
export async function buildAssets(assetsFolder: string, seed = ASSETS_SEED): Promise<void> {
  writeTinyTokenizer(join(assetsFolder, ASSET_PATHS.tokenizer));
  await writeDemoDataset(join(assetsFolder, ASSET_PATHS.demoDataset), seed);
  await writeRegularizationSet(join(assetsFolder, ASSET_PATHS.regularization), seed + 1);
}

async function writePng(path: string, rgb: Uint8Array, size: number): Promise<void> {
  // sharp writes no timestamp or other varying metadata, so the same pixels give the same bytes.
  const png = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .png({ compressionLevel: 9, adaptiveFiltering: false })
    .toBuffer();
  writeFileAtomic(path, png);
}

function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const folder = resolve(process.argv[2] ?? join(import.meta.dirname ?? '.', '../../../assets'));
  await buildAssets(folder);
  console.log(`wrote tokenizer, demo dataset and regularization set under ${folder}`);
}
