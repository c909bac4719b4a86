// The WD14 Tagger node: captions a dataset folder with a WD14 tagger model the user downloaded
// (a folder with model.onnx and selected_tags.csv), run on onnxruntime-node.
import path from 'node:path';
import { z } from 'zod';
import { type WrittenCaption, loadTagger, tagFolder } from './data/wd14';
import { defineNode, widget } from './define';

/** What flows to a Dataset node's `captions` input: it orders the tagger first and re-reads captions when they change. */
export interface CaptionsValue {
  folder: string;
  written: readonly WrittenCaption[];
  byteSize(): number;
}

const tagList = (text: string) => text.split(',').map((t) => t.trim()).filter(Boolean);

export default defineNode({
  type: 'WD14Tagger',
  title: 'Caption (WD14 Tagger)',
  category: 'data',
  description: 'Tags every image of a dataset folder with a WD14 tagger (model.onnx + selected_tags.csv) and writes caption files next to them.',
  version: 1,
  widgets: z.object({
    folder: widget.path({ kind: 'datasets', tooltip: 'the dataset folder to caption ("N_name" subfolders included)' }),
    model: widget.path({ kind: 'models', tooltip: 'WD14 tagger folder holding model.onnx and selected_tags.csv (or the model.onnx file)' }),
    generalThreshold: widget.float({ default: 0.35, min: 0, max: 1, step: 0.01, tooltip: 'general tags at or above this confidence are written' }),
    characterThreshold: widget.float({ default: 0.85, min: 0, max: 1, step: 0.01, tooltip: 'character tags at or above this confidence are written' }),
    replaceUnderscores: widget.toggle({ default: true, tooltip: '"long_hair" → "long hair" (emoticons like ^_^ are kept)' }),
    excludeTags: widget.text({ default: '', tooltip: 'comma-separated tags never to write' }),
    alwaysFirstTags: widget.text({ default: '', tooltip: 'comma-separated tags moved to the front when found (e.g. "1girl, 1boy")' }),
    characterTagsFirst: widget.toggle({ default: false, tooltip: 'put character tags before general tags' }),
    includeRating: widget.toggle({ default: false, tooltip: 'start the caption with the rating tag (general, sensitive, questionable, explicit)' }),
    captionMode: widget.combo(['skip existing', 'append', 'replace'], { default: 'skip existing', tooltip: 'what to do with images that already have a caption file' }),
    captionExtension: widget.text({ default: '.txt', tooltip: 'extension of the caption files written' }),
    separator: widget.text({ default: ',', maxLength: 8, tooltip: 'tag separator in the captions written' }),
    batchSize: widget.int({ default: 4, min: 1, max: 64, tooltip: 'images per model run (models exported with a fixed batch of 1 run one at a time)' }),
  }),
  outputs: { captions: 'CAPTIONS' },
  isOutput: true,
  async execute({ widgets, ctx }) {
    const folder = ctx.resolvePath('datasets', widgets.folder);
    const tagger = await loadTagger(ctx.resolvePath('models', widgets.model));
    let written: WrittenCaption[];
    try {
      written = await tagFolder(
        folder,
        tagger,
        { ...widgets, excludeTags: tagList(widgets.excludeTags), alwaysFirstTags: tagList(widgets.alwaysFirstTags) },
        { onProgress: (step, total) => ctx.progress({ step, total }), throwIfInterrupted: () => ctx.throwIfInterrupted() },
      );
    } finally {
      await tagger.release();
    }
    const changed = written.filter((w) => w.action !== 'skipped');
    const skipped = written.length - changed.length;
    const captions: CaptionsValue = Object.freeze({
      folder,
      written: Object.freeze(written),
      byteSize: () => written.reduce((n, w) => n + 2 * (w.image.length + w.caption.length + w.captionFile.length) + 64, 64),
    });
    const shown = changed.slice(0, 200).map((w) => `${path.relative(folder, w.image)} (${w.action}): ${w.caption}`);
    if (changed.length > shown.length) shown.push(`… and ${changed.length - shown.length} more`);
    return {
      outputs: { captions },
      ui: { text: [`${changed.length} caption file(s) written${skipped ? `, ${skipped} kept (already captioned)` : ''}`, ...shown] },
    };
  },
});
