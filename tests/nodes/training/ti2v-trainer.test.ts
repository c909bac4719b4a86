// The training loop on a random-weight tiny Wan 2.2 TI2V (per-token timesteps, 2.2-style VAE) and two
// 5-frame clips made by ffmpeg: a Dataset with imageToVideo on feeds each clip's first frame (flagged
// given, its latent encoded alone), one with it off feeds a zero first frame (text to video); both train
// with finite losses, and the two settings train differently.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RandomWeights, Runtime, type HostTensor } from '../../../kernels';
import { tinyWanConfig, wanFamily } from '../../../kernels/wan/family';
import { buildDataset, defaultDatasetSettings, type Dataset } from '../../../nodes/data/dataset';
import { trainSd } from '../../../nodes/training/trainer';
import { clipValue, modelValue, vaeValue } from '../../../nodes/models/values';
import optimizerNode, { type OptimizerValue } from '../../../nodes/optimizer';
import type { ModelSource } from '../../../nodes/sockets';
import { ATTENTION_LORA, loopSettings } from './tiny-model';
import { nodeContext } from '../context';

const config = tinyWanConfig({ ti2v: true });
const C = config.transformer.outChannels;
const source: ModelSource = { path: 'test:random-ti2v', label: 'random-tiny-ti2v', family: 'wan', id: 'random-ti2v', config };
const bytes = () => 1e6;
// umT5 ids of the right length (0 pads, which the encoder masks): the loop only needs a tokenizer.
const tokenizer = { vocabSize: 512, tokenize: (text: string, o: { maxLength: number }) => ({ ids: Array.from({ length: o.maxLength }, (_, i) => (i < text.length ? 1 + (text.charCodeAt(i) % 500) : 0)) }) };
const parts = {
  model: modelValue(wanFamily, source, config, new RandomWeights(1, 0.05), 'none', bytes),
  clip: clipValue(wanFamily, source, config, [{ part: 'text_encoder', weights: new RandomWeights(2, 0.05), tokenizer }], 1, 'none', bytes),
  vae: vaeValue(wanFamily, source, config, new RandomWeights(3, 0.08), bytes),
};
let folder: string;
let optimizer: OptimizerValue;
const dir = () => mkdtempSync(join(tmpdir(), 'lg-ti2v-'));

beforeAll(async () => {
  folder = join(dir(), 'clips');
  mkdirSync(folder);
  for (let i = 0; i < 2; i++) {
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=32x32:rate=8:duration=1,hue=h=${i * 120}`,
      '-frames:v', '8', '-c:v', 'libx264', '-qp', '0', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', join(folder, `clip${i}.mp4`)]);
    writeFileSync(join(folder, `clip${i}.txt`), `a test pattern clip ${i}`);
  }
  const { ctx } = nodeContext();
  optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 1e-3 }), ctx })).outputs.optimizer as OptimizerValue;
});

// One runtime for both runs (the loop caches its VAE and text sessions per runtime); every first_frame
// value a training step is fed is recorded.
const rt = new Runtime({ threads: 1 });
afterAll(() => rt.close());
let fed: Float32Array[] = [];
const load = rt.load.bind(rt);
rt.load = async (...args: Parameters<Runtime['load']>) => {
  const s = await load(...args);
  const run = s.run.bind(s);
  s.run = async (feeds, o) => {
    for (const f of Array.isArray(feeds) ? feeds : [feeds]) {
      const ff = (f as Record<string, HostTensor>).first_frame;
      if (ff) fed.push(Float32Array.from(ff.data as Float32Array));
    }
    return run(feeds, o);
  };
  return s;
};

/** Trains 2 steps; the first_frame values fed and the losses. */
async function train(dataset: Dataset) {
  fed = [];
  const losses: number[] = [];
  await trainSd({ ...parts, datasets: [dataset], adapter: ATTENTION_LORA, optimizer }, loopSettings({ steps: 2, batchSize: 1, cacheLatents: false }), {
    checkpointDir: dir(), cacheDir: dir(), id: 'ti2v', runtime: rt, progress: (p) => { if (p.data.loss !== undefined) losses.push(p.data.loss as number); },
  });
  return { fed, losses };
}

describe('TI2V training loop', () => {
  it('imageToVideo on feeds the clip\'s first frame, off feeds none (text to video); both train', async () => {
    const settings = { ...defaultDatasetSettings, folder, resolutions: [32], step: 32, numFrames: 5, videoModel: true };
    const i2v = await train(await buildDataset({ ...settings, imageToVideo: true }));
    const t2v = await train(await buildDataset({ ...settings, imageToVideo: false }));
    const plane = 4; // a 2 × 2 latent per frame
    expect(i2v.fed.length).toBeGreaterThanOrEqual(2);
    for (const f of i2v.fed) {
      expect(f).toHaveLength((1 + C) * plane);
      expect(Array.from(f.subarray(0, plane))).toEqual([1, 1, 1, 1]);
      expect(f.subarray(plane).some((v) => v !== 0)).toBe(true);
    }
    expect(t2v.fed.length).toBeGreaterThanOrEqual(2);
    for (const f of t2v.fed) expect(f.every((v) => v === 0)).toBe(true);
    for (const r of [i2v, t2v]) expect(r.losses.length === 2 && r.losses.every(Number.isFinite)).toBe(true);
    expect(i2v.losses).not.toEqual(t2v.losses);
  }, 180_000);
});
