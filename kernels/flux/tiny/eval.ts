// `npm run eval:tiny-flux`: how well the tiny klein draws what it is asked for — the same prompts and
// image analyzer as eval:tiny (every world shape × colour), sampled through flux2Family with the
// families' preview pipeline, as the Sampler node does (Qwen3 features, flow Euler on FLUX.2's schedule
// with CFG against the empty prompt, VAE decode with the BatchNorm statistics). Target: ≥ 80% shape
// and colour.
//   npx tsx kernels/flux/tiny/eval.ts [--dir DIR] [--samples N] [--steps N] [--cfg X] [--scheduler NAME] [--grid out.png]
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Runtime } from '../../runtime';
import { FamilyPipeline } from '../../families/pipeline';
import { analyzeImage } from '../../sd/tiny/analyze';
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
  /** The Sampler's scheduler (ComfyUI's names, or auto: FLUX.2's own schedule). */
  scheduler?: string;
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
    const size = m.config.sampleSize;
    // The Sampler node's path: kernels/families' pipeline over the family.
    const pipe = await FamilyPipeline.create(rt, { family: flux2Family, config: m.config, denoiser: m.denoiser, textEncoders: m.textEncoders, vae: m.vae }, { width: size, height: size, batch: o.samples });
    const rgb: Uint8Array[] = [];
    let shapeOk = 0, colorOk = 0, backgroundOk = 0, count = 0;
    for (const [i, p] of evalPrompts().slice(0, o.prompts).entries()) {
      const g = await pipe.generate({ prompt: p.prompt, seed: o.seed + i, steps: o.steps, cfgScale: o.cfgScale, sampler: 'euler', scheduler: o.scheduler });
      const seen: string[] = [];
      let s = 0, col = 0;
      for (const img of g.images) {
        const a = analyzeImage(img, size);
        seen.push(`${a.color ?? '-'} ${a.shape}/${a.background}`);
        if (a.shape === p.shape) s++;
        if (a.color === p.color) col++;
        if (a.background === p.background) backgroundOk++;
        rgb.push(img);
      }
      shapeOk += s; colorOk += col; count += g.images.length;
      log(`${p.prompt.padEnd(42)} shape ${s}/${g.images.length} colour ${col}/${g.images.length}  [${seen.join(', ')}]`);
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
    scheduler: args.get('scheduler'),
    threads: Number(process.env.LORAGRAPH_THREADS ?? 0),
  };
  const t0 = Date.now();
  console.log(`eval:tiny-flux ${o.dir}: ${evalPrompts().length} prompts × ${o.samples} samples, flow Euler ${o.steps} steps (${o.scheduler ?? 'auto'}), CFG ${o.cfgScale}`);
  const r = await evaluateTinyFlux(o, (line) => console.log(line));
  if (args.get('grid')) await writeGrid(resolve(args.get('grid')!), r.rgb, o.samples, 64);
  console.log(`samples: ${r.images}; shape right ${(100 * r.shapeAccuracy).toFixed(1)}%, colour right ${(100 * r.colorAccuracy).toFixed(1)}%, background right ${(100 * r.backgroundAccuracy).toFixed(1)}% (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
  const pass = r.shapeAccuracy >= 0.8 && r.colorAccuracy >= 0.8;
  console.log(pass ? 'PASS (≥ 80% shape and colour)' : 'BELOW TARGET (80% shape and colour)');
  process.exitCode = pass ? 0 : 1;
}
