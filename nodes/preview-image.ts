// The Preview Image node: shows IMAGES inline on the canvas and, optionally, saves them to the output
// folder as numbered PNGs under a prefix. Video samples show as animated WebP and are saved as H.264 MP4.
import { z } from 'zod';
import { defineNode, input, widget } from './define';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { publishImage, type FileRef } from './render/publish';
import { encodeAnimatedWebp, writeMp4 } from './render/video';
import type { ImagesValue } from './sockets';

export default defineNode({
  type: 'PreviewImage',
  title: 'Preview Image',
  category: 'output',
  description: 'Shows images on the node; can also save them to the output folder.',
  version: 1,
  isOutput: true,
  inputs: { images: input<ImagesValue>('IMAGES') },
  widgets: z.object({
    save: widget.toggle({ default: false, tooltip: 'also write the images to the output folder' }),
    filenamePrefix: widget.text({ default: 'loragraph', tooltip: 'saved files are <prefix>_00001.png, … (video samples: .mp4; subfolders allowed: "samples/run1")' }),
  }),
  async execute({ inputs, widgets: w, ctx }) {
    const images = inputs.images.images;
    if (images.length === 0) return { outputs: {}, ui: { text: ['no images'] } };
    const prefix = w.filenamePrefix.trim() || 'loragraph';
    if (w.save) ctx.resolvePath('output', prefix); // refuse prefixes that leave the output folder
    const refs: FileRef[] = [];
    const saved: string[] = [];
    for (const [i, im] of images.entries()) {
      if (im.video) {
        const clip = { width: im.width!, height: im.height!, fps: im.video.fps, frames: im.video.frames };
        if (!clip.width || !clip.height) throw new Error(`images: video sample ${i + 1} does not say its size`);
        refs.push(await publishImage(ctx, `preview-${ctx.nodeId}-${ctx.cacheKey.slice(0, 12)}-${i}.webp`, await encodeAnimatedWebp(clip)));
        if (w.save) {
          const file = ctx.resolvePath('output', `${prefix}_${String(i + 1).padStart(5, '0')}.mp4`);
          await mkdir(join(file, '..'), { recursive: true });
          await writeMp4(clip, file);
          saved.push(`${file.split('/').pop()} · ${clip.frames.length} frames at ${clip.fps} fps`);
        }
        continue;
      }
      const ext = im.mime === 'image/jpeg' ? 'jpg' : 'png';
      if (w.save) {
        const slash = prefix.lastIndexOf('/');
        const sub = slash >= 0 ? prefix.slice(0, slash) : '';
        refs.push(await publishImage(ctx, `${prefix.slice(slash + 1)}_${String(i + 1).padStart(5, '0')}.${ext}`, im.data, 'output', sub));
      } else {
        refs.push(await publishImage(ctx, `preview-${ctx.nodeId}-${ctx.cacheKey.slice(0, 12)}-${i}.${ext}`, im.data));
      }
    }
    return { outputs: {}, ui: { images: refs, text: [...images.map((im) => im.label ?? '').filter(Boolean), ...saved] } };
  },
});
