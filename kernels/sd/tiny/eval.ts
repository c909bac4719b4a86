// `npm run eval:tiny`: how well the embedded tiny model draws what it is asked for. Samples a fixed list
// of prompts (every world shape × every colour, on a background chosen per pair) over several seeds
// and reads each image back with the shape analyzer; also checks that the VAE alone reconstructs
// world images (stars included) well enough for the analyzer to read them.
//   npx tsx kernels/sd/tiny/eval.ts [--checkpoint FILE] [--samples N] [--steps N] [--cfg X] [--sampler NAME] [--grid out.png]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { input } from '../../tensor';
import { compileGraph } from '../../compile';
import { Builder } from '../../nn/builder';
import { Runtime } from '../../runtime';
import { Rng } from '../../random';
import { loadSd } from '../load';
import { SdPipeline } from '../pipeline';
import type { SamplerName } from '../samplers';
import { ClipTokenizer } from '../tokenizer';
import { vaeDecode, vaeEncode } from '../vae';
import { analyzeImage } from './analyze';
import { planarToRgb, rgbToPlanar } from './train-data';
import { ALL_SHAPES, COLOR_NAMES, WORLD_SHAPES, captionOf, renderScene, sampleScene, type ColorName, type ShapeName } from './world';

export interface EvalPrompt { prompt: string; shape: ShapeName; color: ColorName; background: ColorName }

/** Every world shape in every colour, each on a background that differs from it (rotating through the palette). */
export function evalPrompts(): EvalPrompt[] {
  const out: EvalPrompt[] = [];
  WORLD_SHAPES.forEach((shape, si) => {
    COLOR_NAMES.forEach((color, ci) => {
      const background = COLOR_NAMES[(ci + 1 + ((si * 3) % 7)) % COLOR_NAMES.length];
      out.push({ prompt: captionOf({ shape, color, background, cx: 0.5, cy: 0.5, size: 0.3, rotation: 0 }), shape, color, background });
    });
  });
  return out;
}

export interface EvalOptions {
  checkpoint: string;
  tokenizerFolder: string;
  /** Images per prompt (one batch, one seed: each image gets its own initial noise). */
  samples: number;
  steps: number;
  cfgScale: number;
  sampler: SamplerName;
  seed: number;
  threads?: number;
}

export interface EvalResult {
  images: number;
  shapeAccuracy: number;
  colorAccuracy: number;
  backgroundAccuracy: number;
  /** Per prompt: how many samples had the right shape / colour. */
  perPrompt: { prompt: string; shape: number; color: number; seen: string[] }[];
  /** RGB of every sample, prompt-major (for a contact sheet). */
  rgb: Uint8Array[];
}

export async function evaluateTiny(o: EvalOptions, log: (line: string) => void = () => {}): Promise<EvalResult> {
  const tokenizer = ClipTokenizer.fromFolder(o.tokenizerFolder);
  const model = await loadSd(o.checkpoint, { tokenizer });
  const rt = new Runtime({ threads: o.threads ?? 0 });
  try {
    const pipe = await SdPipeline.create(rt, { config: model.config, unet: model.unet, textEncoder: model.textEncoder, vae: model.vae, tokenizer }, { width: model.config.sampleSize, height: model.config.sampleSize, batch: o.samples });
    const perPrompt: EvalResult['perPrompt'] = [];
    const rgb: Uint8Array[] = [];
    let shapeOk = 0, colorOk = 0, backgroundOk = 0, n = 0;
    for (const [i, p] of evalPrompts().entries()) {
      const g = await pipe.generate({ prompt: p.prompt, seed: o.seed + i, steps: o.steps, cfgScale: o.cfgScale, sampler: o.sampler });
      let s = 0, c = 0;
      const seen: string[] = [];
      for (const img of g.images) {
        const a = analyzeImage(img, g.width, g.height);
        seen.push(`${a.color ?? '-'} ${a.shape}/${a.background}`);
        if (a.shape === p.shape) s++;
        if (a.color === p.color) c++;
        if (a.background === p.background) backgroundOk++;
        rgb.push(img);
      }
      shapeOk += s; colorOk += c; n += g.images.length;
      perPrompt.push({ prompt: p.prompt, shape: s, color: c, seen });
      log(`${p.prompt.padEnd(42)} shape ${s}/${g.images.length} colour ${c}/${g.images.length}  [${seen.join(', ')}]`);
    }
    return { images: n, shapeAccuracy: shapeOk / n, colorAccuracy: colorOk / n, backgroundAccuracy: backgroundOk / n, perPrompt, rgb };
  } finally {
    await rt.close();
    model.close();
  }
}

/** Share of `count` world images (all four shapes) whose VAE reconstruction the analyzer reads as the original. */
export async function vaeReconstructionAccuracy(checkpoint: string, tokenizerFolder: string, count: number, seed: number, threads = 0) {
  const tokenizer = ClipTokenizer.fromFolder(tokenizerFolder);
  const model = await loadSd(checkpoint, { tokenizer });
  const rt = new Runtime({ threads });
  try {
    const cfg = model.config.vae;
    const size = model.config.sampleSize;
    const images = input('images', [count, 3, size, size]);
    const { mean } = vaeEncode(new Builder(model.vae), cfg, images);
    const recon = vaeDecode(new Builder(model.vae), cfg, mean);
    const session = await rt.load(compileGraph([images], { recon }, { name: 'vae_roundtrip' }));
    const rng = new Rng(seed).fork('vae-eval');
    const scenes = Array.from({ length: count }, () => sampleScene(rng, { shapes: ALL_SHAPES }));
    const data = new Float32Array(count * 3 * size * size);
    scenes.forEach((s, i) => rgbToPlanar(renderScene(s, size), size, data, i * 3 * size * size));
    const out = (await session.run({ images: { dtype: 'float32', shape: [count, 3, size, size], data } })).recon.data as Float32Array;
    let shape = 0, color = 0;
    scenes.forEach((s, i) => {
      const a = analyzeImage(planarToRgb(out, size, i * 3 * size * size), size);
      if (a.shape === s.shape) shape++;
      if (a.color === s.color) color++;
    });
    return { shapeAccuracy: shape / count, colorAccuracy: color / count };
  } finally {
    await rt.close();
    model.close();
  }
}

/** A PNG contact sheet: one row per prompt, one column per sample. */
export async function writeGrid(path: string, rgb: Uint8Array[], columns: number, side: number): Promise<void> {
  const rows = Math.ceil(rgb.length / columns);
  const sheet = new Uint8Array(rows * side * columns * side * 3);
  rgb.forEach((img, k) => {
    const r = Math.floor(k / columns), c = k % columns;
    for (let y = 0; y < side; y++) sheet.set(img.subarray(y * side * 3, (y + 1) * side * 3), ((r * side + y) * columns * side + c * side) * 3);
  });
  await sharp(sheet, { raw: { width: columns * side, height: rows * side, channels: 3 } }).png().toFile(path);
}

export const EVAL_DEFAULTS = { samples: 4, steps: 25, cfgScale: 6, sampler: 'ddim' as SamplerName, seed: 1000 };

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = resolve(import.meta.dirname ?? '.', '../../../assets/tiny');
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1] ?? '');
  const o: EvalOptions = {
    checkpoint: resolve(args.get('checkpoint') ?? `${root}/sd-tiny.safetensors`),
    tokenizerFolder: `${root}/tokenizer`,
    samples: Number(args.get('samples') ?? EVAL_DEFAULTS.samples),
    steps: Number(args.get('steps') ?? EVAL_DEFAULTS.steps),
    cfgScale: Number(args.get('cfg') ?? EVAL_DEFAULTS.cfgScale),
    sampler: (args.get('sampler') ?? EVAL_DEFAULTS.sampler) as SamplerName,
    seed: Number(args.get('seed') ?? EVAL_DEFAULTS.seed),
    threads: Number(process.env.LORAGRAPH_THREADS ?? 0),
  };
  const t0 = Date.now();
  console.log(`eval:tiny ${o.checkpoint}: ${evalPrompts().length} prompts × ${o.samples} samples, ${o.sampler} ${o.steps} steps, CFG ${o.cfgScale}`);
  const vae = await vaeReconstructionAccuracy(o.checkpoint, o.tokenizerFolder, 64, o.seed, o.threads);
  console.log(`VAE reconstruction (64 world images, stars included): shape ${(100 * vae.shapeAccuracy).toFixed(1)}%, colour ${(100 * vae.colorAccuracy).toFixed(1)}%`);
  const r = await evaluateTiny(o, (line) => console.log(line));
  if (args.get('grid')) await writeGrid(resolve(args.get('grid')!), r.rgb, o.samples, 64);
  console.log(`samples: ${r.images}; shape right ${(100 * r.shapeAccuracy).toFixed(1)}%, colour right ${(100 * r.colorAccuracy).toFixed(1)}%, background right ${(100 * r.backgroundAccuracy).toFixed(1)}% (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
  const pass = r.shapeAccuracy >= 0.8 && r.colorAccuracy >= 0.8;
  console.log(pass ? 'PASS (≥ 80% shape and colour)' : 'BELOW TARGET (80% shape and colour)');
  process.exitCode = pass ? 0 : 1;
}
