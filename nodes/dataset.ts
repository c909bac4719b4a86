// The Dataset node: a folder of images/clips with captions, validated and bucketed for training
// (kohya folder convention, trigger word, caption dropout/shuffle, flips, multi-resolution buckets).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { Rng } from '../kernels/random';
import { type LatentEncoder, LatentCache, type TextEmbeddingEncoder, TextEmbeddingCache, cachingProblems } from './data/cache';
import { renderContactSheet } from './data/contact-sheet';
import { type Dataset, buildDataset } from './data/dataset';
import { folderFingerprint } from './data/scan';
import { CLIP_WINDOWS } from './data/video';
import { defineNode, input, widget } from './define';
import type { CaptionsValue } from './wd14-tagger';
import type { ImagesValue } from './sockets';

/** "512, 768,1024" → [512, 768, 1024]; errors name the widget. */
export function parseResolutions(text: string): number[] {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const values = parts.map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new Error(`resolution: expected one or more sizes like "512" or "512, 768, 1024" (got "${text}")`);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/** The VAE/CLIP values expose the cache's encoder interface directly or as a property. */
function encoderOf<T extends { id: string }>(value: unknown, key: string): T | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const candidate = (key in value ? (value as Record<string, unknown>)[key] : value) as Partial<T> & { encode?: unknown };
  return typeof candidate?.id === 'string' && typeof candidate.encode === 'function' ? (candidate as T) : undefined;
}

export default defineNode({
  type: 'Dataset',
  title: 'Dataset',
  category: 'data',
  description: 'A folder of images or video clips with captions, bucketed for training. Subfolders named "10_name" repeat their images 10 times and use "name" as the fallback caption.',
  version: 1,
  inputs: {
    vae: input<unknown>('VAE', { optional: true, tooltip: 'connect to cache latents now (with cacheLatents on)' }),
    clip: input<unknown>('CLIP', { optional: true, tooltip: 'connect to cache text embeddings now (with cacheTextEmbeddings on)' }),
    captions: input<CaptionsValue>('CAPTIONS', { optional: true, tooltip: 'connect a WD14 Tagger so it captions the folder first' }),
  },
  widgets: z.object({
    folder: widget.path({ kind: 'datasets', tooltip: 'folder of images/clips (jpg, png, webp, bmp, mp4, mov, webm, mkv) and caption files' }),
    captionExtension: widget.text({ default: '.txt', tooltip: 'caption files sit next to each image with this extension' }),
    triggerWord: widget.text({ default: '', tooltip: 'replaces [trigger] in captions; added in front when a caption lacks it (not for regularization)' }),
    defaultCaption: widget.text({ default: '', tooltip: 'caption for images without a caption file (outside "N_name" folders)' }),
    repeats: widget.int({ default: 1, min: 1, max: 10000, tooltip: 'times each image is seen per epoch (multiplies the N of "N_name" folders)' }),
    isRegularization: widget.toggle({ default: false, tooltip: 'regularization (class) images: the trigger word is not added' }),
    weight: widget.float({ default: 1, min: 0.01, max: 100, step: 0.05, tooltip: 'share of batches when several datasets feed one Train node' }),
    captionDropoutRate: widget.float({ default: 0, min: 0, max: 1, step: 0.01, tooltip: 'chance that a caption is left empty (trains the unconditional case)' }),
    tokenDropoutRate: widget.float({ default: 0, min: 0, max: 1, step: 0.01, tooltip: 'chance that each tag after keepTokens is dropped' }),
    shuffleTags: widget.toggle({ default: false, tooltip: 'shuffle the tags after keepTokens on every draw' }),
    keepTokens: widget.int({ default: 0, min: 0, max: 255, tooltip: 'leading tags kept in place and never dropped' }),
    separator: widget.text({ default: ',', maxLength: 8, tooltip: 'tag separator in captions' }),
    flipX: widget.toggle({ default: false, tooltip: 'mirror images left-right half of the time' }),
    flipY: widget.toggle({ default: false, tooltip: 'flip images upside down half of the time' }),
    resolution: widget.text({ default: '512', tooltip: 'base resolution(s), e.g. "512" or "512, 768, 1024": each image uses the one closest to its size' }),
    bucketStep: widget.int({ default: 64, min: 8, max: 256, step: 8, tooltip: 'bucket sides are multiples of this' }),
    skipBadFiles: widget.toggle({ default: false, tooltip: 'leave out unreadable files with a warning instead of failing' }),
    numFrames: widget.int({ default: 1, min: 1, max: 1025, tooltip: 'frames taken from each video clip (Wan: 4n+1, e.g. 33 or 81)' }),
    videoModel: widget.toggle({ default: false, tooltip: 'require 4n+1 frames (1, 5, 9, …, 81), as Wan/HunyuanVideo need' }),
    fps: widget.float({ default: 0, min: 0, max: 240, step: 1, tooltip: 'frame rate clips are resampled to (Wan trains at 16); 0 = numFrames spread evenly over the whole clip' }),
    clipWindow: widget.combo(CLIP_WINDOWS, { default: 'head', tooltip: 'with fps set: head = the clip\'s first numFrames frames at that rate; random = a window starting anywhere, drawn anew every time (no latent caching then)' }),
    imageToVideo: widget.toggle({ default: true, tooltip: 'clips for a model whose first frame is optional (Wan 2.2 TI2V-5B): on = image-to-video, the clip\'s first frame given clean and left out of the loss (ai-toolkit\'s do_i2v); off = text-to-video. Models that always take a first frame ignore it: Wan I2V is given each clip\'s first frame, Wan 2.1 FLF2V its first and last frames (as Wan\'s FLF2V pipeline builds them); images are one frame', families: ['wan'] }),
    cacheLatents: widget.toggle({ default: false, tooltip: 'encode each image once with the VAE and train from the cached latents' }),
    cacheTextEmbeddings: widget.toggle({ default: false, tooltip: 'encode each caption once and train from the cached embeddings' }),
  }),
  outputs: { dataset: 'DATASET', preview: 'IMAGES' },
  // Editing the folder (new image, changed caption) re-runs the node even with the same widgets.
  fingerprint: ({ widgets, resolvePath }) => folderFingerprint(resolvePath('datasets', widgets.folder)),
  async execute({ inputs, widgets, ctx }) {
    const settings = {
      ...widgets,
      folder: ctx.resolvePath('datasets', widgets.folder),
      resolutions: parseResolutions(widgets.resolution),
      step: widgets.bucketStep,
    };
    if (inputs.captions && path.resolve(inputs.captions.folder) !== path.resolve(settings.folder)) {
      ctx.warn(`the connected tagger captioned ${inputs.captions.folder}, not this dataset's folder ${settings.folder}`);
    }
    const latentEncoder = encoderOf<LatentEncoder>(inputs.vae, 'latentEncoder');
    const textEncoder = encoderOf<TextEmbeddingEncoder>(inputs.clip, 'textEmbeddingEncoder');
    const problems = cachingProblems(settings, { cacheLatents: widgets.cacheLatents, cacheTextEmbeddings: widgets.cacheTextEmbeddings, latentEncoder });
    if (problems.length) throw new Error(problems.join('\n'));

    const dataset: Dataset = await buildDataset(settings, {
      onProgress: (step, total) => ctx.progress({ step, total }),
      throwIfInterrupted: () => ctx.throwIfInterrupted(),
    });
    if (dataset.skipped.length) ctx.warn(`skipped ${dataset.skipped.length} bad file(s):\n${dataset.skipped.map((s) => s.reason).join('\n')}`);
    if (dataset.ignoredFolders.length) ctx.warn(`ignored subfolders not named like "10_name": ${dataset.ignoredFolders.map((f) => path.basename(f)).join(', ')}`);

    const text: string[] = [];
    // Content-addressed, so one shared folder serves every Dataset node and survives widget changes.
    if (widgets.cacheLatents && latentEncoder) {
      const report = await new LatentCache(path.join(ctx.paths.temp, 'latent-cache'), latentEncoder).prepare(dataset, {
        onProgress: (step, total) => ctx.progress({ step, total, data: { phase: 'caching latents' } }),
        throwIfInterrupted: () => ctx.throwIfInterrupted(),
      });
      text.push(`latents: ${report.encoded} encoded, ${report.reused} cached`);
    }
    if (widgets.cacheTextEmbeddings && textEncoder) {
      const rng = new Rng('text-cache');
      const captions = dataset.items.map((item) => dataset.drawCaption(item, rng));
      if (widgets.captionDropoutRate > 0) captions.push('');
      const { report } = await new TextEmbeddingCache(path.join(ctx.paths.temp, 'text-embedding-cache'), textEncoder).getMany(captions, {
        onProgress: (step, total) => ctx.progress({ step, total, data: { phase: 'caching text embeddings' } }),
        throwIfInterrupted: () => ctx.throwIfInterrupted(),
      });
      text.push(`text embeddings: ${report.encoded} encoded, ${report.reused} cached`);
    }

    const sheet = await renderContactSheet(dataset, new Rng(`preview:${ctx.cacheKey}`));
    ctx.preview({ mime: 'image/png', data: sheet });
    const filename = `dataset-${ctx.nodeId}-${ctx.cacheKey.slice(0, 12)}.png`;
    await mkdir(ctx.paths.temp, { recursive: true });
    await writeFile(path.join(ctx.paths.temp, `${filename}.tmp`), sheet);
    await rename(path.join(ctx.paths.temp, `${filename}.tmp`), path.join(ctx.paths.temp, filename));

    const counts = dataset.bucketCounts();
    const preview: ImagesValue = Object.freeze({ images: Object.freeze([{ mime: 'image/png' as const, data: sheet }]), byteSize: () => sheet.length + 64 });
    return {
      outputs: { dataset, preview },
      ui: {
        images: [{ filename, subfolder: '', type: 'temp' as const }],
        text: [
          `${dataset.items.length} files, ${dataset.epochLength} samples per epoch`,
          ...counts.map((c) => `${c.bucket}: ${c.files} file${c.files === 1 ? '' : 's'} (${c.repeated} per epoch)`),
          ...text,
        ],
        buckets: counts,
      },
    };
  },
});
