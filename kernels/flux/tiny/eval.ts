// `npm run eval:tiny-flux`: how well the tiny klein draws what it is asked for — the same prompts and
// image analyzer as eval:tiny (every world shape × colour), sampled through flux2Family exactly as the
// Sampler node would (Qwen3 features, flow Euler on FLUX.2's schedule with CFG against the empty
// prompt, VAE decode with the BatchNorm statistics). Target: ≥ 80% shape and colour.
//   npx tsx kernels/flux/tiny/eval.ts [--dir DIR] [--samples N] [--steps N] [--cfg X] [--grid out.png]
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { input } from '../../tensor';
import { compileGraph } from '../../compile';
import { Builder } from '../../nn/builder';
import { Runtime } from '../../runtime';
import { analyzeImage } from '../../sd/tiny/analyze';
import { planarToRgb } from '../../sd/tiny/train-data';
import { evalPrompts, writeGrid } from '../../sd/tiny/eval';
import { flux2Family } from '../family';
import { TINY_FLUX_FILES, TINY_FLUX_ROOT } from './pretrain';

export interface TinyFluxEvalOptions {
  /** Folder with the pretraining's four files. */
  dir: string;
  samples: number;
  steps: number;
  cfgScale: number;
  seed: number;
  /** Evaluate only the first N prompts (smoke tests). */
  prompts?: number;
  threads?: number;
}

export const TINY_FLUX_EVAL_DEFAULTS = { samples: 4, steps: 28, cfgScale: 4, seed: 1000 };

export interface TinyFluxEvalResult { images: number; shapeAccuracy: number; colorAccuracy: number; backgroundAccuracy: number; rgb: Uint8Array[] }

export async function evaluateTinyFlux(o: TinyFluxEvalOptions, log: (line: string) => void = () => {}): Promise<TinyFluxEvalResult> {
  const m = await flux2Family.load(join(o.dir, TINY_FLUX_FILES.transformer));
  const rt = new Runtime({ threads: o.threads ?? 0 });
  try {
    const c = m.config;
    const T = c.text.maxLength, n = o.samples, size = c.sampleSize;
    const fmt = flux2Family.latentFormat(c);
    const side = size / fmt.spatialCompression;
    const ids = input('ids', [1, T], 'int64');
    const text = await rt.load(compileGraph([ids], flux2Family.encodeText([new Builder(m.textEncoders[0].weights)], c, [ids], { clipSkip: 1 }), { name: 'tiny_flux_text' }));
    const sample = input('sample', [2 * n, fmt.channels, side, side]), timestep = input('timestep', [2 * n]), context = input('context', [2 * n, T, c.transformer.contextDim]);
    const denoiser = await rt.load(compileGraph([sample, timestep, context], { v: flux2Family.denoise(new Builder(m.denoiser), c, { sample, timestep, cond: { context } }) }, { name: 'tiny_flux_denoise' }));
    const latents = input('latents', [n, fmt.channels, side, side]);
    const decoder = await rt.load(compileGraph([latents], { pixels: flux2Family.vaeDecode(new Builder(m.vae), c, latents) }, { name: 'tiny_flux_decode' }));
    const features = async (prompt: string) => {
      const t = m.textEncoders[0].tokenizer.tokenize(prompt, { maxLength: T }).ids;
      return (await text.run({ ids: { dtype: 'int64', shape: [1, T], data: BigInt64Array.from(Array.from(t), BigInt) } })).context.data as Float32Array;
    };
    const empty = await features('');
    const rgb: Uint8Array[] = [];
    let shapeOk = 0, colorOk = 0, backgroundOk = 0, count = 0;
    for (const [i, p] of evalPrompts().slice(0, o.prompts).entries()) {
      const cond = await features(p.prompt);
      const ctx = new Float32Array(2 * n * empty.length);
      for (let k = 0; k < n; k++) { ctx.set(empty, k * empty.length); ctx.set(cond, (n + k) * empty.length); }
      const out = await flux2Family.sample(async (x, t) => (await denoiser.run({
        sample: { dtype: 'float32', shape: [2 * n, fmt.channels, side, side], data: x },
        timestep: { dtype: 'float32', shape: [2 * n], data: new Float32Array(2 * n).fill(t) },
        context: { dtype: 'float32', shape: [2 * n, T, c.transformer.contextDim], data: ctx },
      })).v.data as Float32Array, c, { sampler: 'euler', steps: o.steps, cfgScale: o.cfgScale, seed: o.seed + i, latentShape: [fmt.channels, side, side], batch: n, scheduler: 'normal' });
      const pixels = (await decoder.run({ latents: { dtype: 'float32', shape: [n, fmt.channels, side, side], data: out } })).pixels.data as Float32Array;
      const seen: string[] = [];
      let s = 0, col = 0;
      for (let k = 0; k < n; k++) {
        const img = planarToRgb(pixels, size, k * 3 * size * size);
        const a = analyzeImage(img, size);
        seen.push(`${a.color ?? '-'} ${a.shape}/${a.background}`);
        if (a.shape === p.shape) s++;
        if (a.color === p.color) col++;
        if (a.background === p.background) backgroundOk++;
        rgb.push(img);
      }
      shapeOk += s; colorOk += col; count += n;
      log(`${p.prompt.padEnd(42)} shape ${s}/${n} colour ${col}/${n}  [${seen.join(', ')}]`);
    }
    return { images: count, shapeAccuracy: shapeOk / count, colorAccuracy: colorOk / count, backgroundAccuracy: backgroundOk / count, rgb };
  } finally {
    await rt.close();
    m.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1] ?? '');
  const o: TinyFluxEvalOptions = {
    dir: resolve(args.get('dir') ?? TINY_FLUX_ROOT),
    samples: Number(args.get('samples') ?? TINY_FLUX_EVAL_DEFAULTS.samples),
    steps: Number(args.get('steps') ?? TINY_FLUX_EVAL_DEFAULTS.steps),
    cfgScale: Number(args.get('cfg') ?? TINY_FLUX_EVAL_DEFAULTS.cfgScale),
    seed: Number(args.get('seed') ?? TINY_FLUX_EVAL_DEFAULTS.seed),
    threads: Number(process.env.LORAGRAPH_THREADS ?? 0),
  };
  const t0 = Date.now();
  console.log(`eval:tiny-flux ${o.dir}: ${evalPrompts().length} prompts × ${o.samples} samples, flow Euler ${o.steps} steps, CFG ${o.cfgScale}`);
  const r = await evaluateTinyFlux(o, (line) => console.log(line));
  if (args.get('grid')) await writeGrid(resolve(args.get('grid')!), r.rgb, o.samples, 64);
  console.log(`samples: ${r.images}; shape right ${(100 * r.shapeAccuracy).toFixed(1)}%, colour right ${(100 * r.colorAccuracy).toFixed(1)}%, background right ${(100 * r.backgroundAccuracy).toFixed(1)}% (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
  const pass = r.shapeAccuracy >= 0.8 && r.colorAccuracy >= 0.8;
  console.log(pass ? 'PASS (≥ 80% shape and colour)' : 'BELOW TARGET (80% shape and colour)');
  process.exitCode = pass ? 0 : 1;
}
