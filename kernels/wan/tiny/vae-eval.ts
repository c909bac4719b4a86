// How well the tiny causal VAE carries world clips through encode → decode
// — per-frame MSE (in [−1, 1] units) and whether the clip analyzer still reads the shape, colour,
// background and direction of the round trip. That recognition is the ceiling of `eval:tiny-wan`: a
// DiT can draw no better than its VAE decodes. Target: ≥ 95% of each.
//   npx tsx kernels/wan/tiny/vae-eval.ts [--vae FILE] [--clips N] [--frames N] [--seed N]
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { input } from '../../tensor';
import { Builder } from '../../nn/builder';
import { HostWeights } from '../../nn/weights';
import { compileGraph } from '../../compile';
import { Runtime } from '../../runtime';
import { Rng } from '../../random';
import { loadTrainState } from '../../train/pretrain-cli';
import { ALL_SHAPES } from '../../sd/tiny/world';
import { wanVaeDecode, wanVaeEncode, type WanVaeConfig } from '../vae';
import { analyzeClip } from './analyze';
import { wanVaeConfigFromShapes } from '../load';
import { clipCaption, framesToPlanar, planarToFrames, renderClip, sampleClip } from './world';
import { TINY_WAN_FILES, TINY_WAN_SIZE, TINY_WAN_VAE_BASE } from './model';

export interface VaeRoundTrip {
  clips: number;
  /** Mean squared error per frame index, averaged over clips and pixels. */
  frameMse: number[];
  mse: number;
  shape: number; color: number; background: number; direction: number;
  /** Of the clean renders: the analyzer's own accuracy (the round trip cannot beat it). */
  clean: { shape: number; color: number; background: number; direction: number };
}

/** Round-trips `clips` world clips (all shapes, fixed seed) through the VAE weights `vae` of config `cfg`. */
export async function vaeRoundTrip(rt: Runtime, vae: Record<string, import('../../tensor').HostTensor>, cfg: WanVaeConfig, o: { clips: number; frames: number; seed: number; batch?: number }, log: (line: string) => void = () => {}): Promise<VaeRoundTrip> {
  const S = TINY_WAN_SIZE, F = o.frames, n = o.batch ?? 8;
  const b = new Builder(new HostWeights(new Map(Object.entries(vae)), 'vae'));
  const video = input('video', [n, 3, F, S, S]);
  const { latents } = wanVaeEncode(b, cfg, video, { chunked: false });
  const session = await rt.load(compileGraph([video], { decoded: wanVaeDecode(b, cfg, latents) }, { name: 'tiny_wan_vae_round_trip' }));
  const rng = new Rng(o.seed);
  const frameMse = new Array(F).fill(0);
  const hit = { shape: 0, color: 0, background: 0, direction: 0 }, clean = { ...hit };
  const per = 3 * F * S * S;
  let done = 0;
  try {
    while (done < o.clips) {
      const clips = Array.from({ length: n }, () => sampleClip(rng, { shapes: ALL_SHAPES, frames: [F] }));
      const x = new Float32Array(n * per);
      const rendered = clips.map((c, i) => { const f = renderClip(c, S); framesToPlanar(f, S, x, i * per); return f; });
      const y = (await session.run({ video: { dtype: 'float32', shape: [n, 3, F, S, S], data: x } })).decoded.data as Float32Array;
      for (let i = 0; i < n && done < o.clips; i++, done++) {
        for (let c = 0; c < 3; c++) for (let t = 0; t < F; t++) {
          const at = i * per + (c * F + t) * S * S;
          let s = 0;
          for (let p = 0; p < S * S; p++) { const d = Math.max(-1, Math.min(1, y[at + p])) - x[at + p]; s += d * d; }
          frameMse[t] += s / (3 * S * S);
        }
        const want = clips[i];
        const a = analyzeClip(planarToFrames(y, F, S, i * per), S), r = analyzeClip(rendered[i], S);
        if (a.shape === want.shape) hit.shape++;
        if (a.color === want.color) hit.color++;
        if (a.background === want.background) hit.background++;
        if (a.direction === want.direction) hit.direction++;
        if (r.shape === want.shape) clean.shape++;
        if (r.color === want.color) clean.color++;
        if (r.background === want.background) clean.background++;
        if (r.direction === want.direction) clean.direction++;
        if (done < 12) log(`${clipCaption(want).padEnd(52)} → ${a.color ?? '-'} ${a.shape} ${a.direction} / ${a.background}`);
      }
    }
  } finally {
    await session.release();
  }
  const frac = (v: typeof hit) => ({ shape: v.shape / done, color: v.color / done, background: v.background / done, direction: v.direction / done });
  const fm = frameMse.map((v) => v / done);
  return { clips: done, frameMse: fm, mse: fm.reduce((a, v) => a + v, 0) / F, ...frac(hit), clean: frac(clean) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1] ?? '');
  const file = resolve(args.get('vae') ?? join(import.meta.dirname ?? '.', '../../../assets/tiny-wan', TINY_WAN_FILES.vae));
  const state = await loadTrainState(file);
  if (!state) throw new Error(`eval:tiny-wan-vae: ${file} does not exist`);
  // The layout from the file's own keys (an older tiny VAE may have another); latent statistics cancel in
  // a round trip, and a scratch VAE (stage A's output) has none.
  const cfg: WanVaeConfig = wanVaeConfigFromShapes((k) => state.tensors[k]?.shape, Object.keys(state.tensors)) ?? { ...TINY_WAN_VAE_BASE };
  const rt = new Runtime({ threads: Number(process.env.LORAGRAPH_THREADS ?? 0) });
  try {
    const r = await vaeRoundTrip(rt, state.tensors, cfg, { clips: Number(args.get('clips') ?? 64), frames: Number(args.get('frames') ?? 9), seed: Number(args.get('seed') ?? 7) }, console.log);
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log(`frame MSE ${r.frameMse.map((v) => v.toFixed(4)).join(' ')} (mean ${r.mse.toFixed(4)})`);
    console.log(`round trip of ${r.clips} clips: shape ${pct(r.shape)}, colour ${pct(r.color)}, background ${pct(r.background)}, direction ${pct(r.direction)}`);
    console.log(`clean renders: shape ${pct(r.clean.shape)}, colour ${pct(r.clean.color)}, background ${pct(r.clean.background)}, direction ${pct(r.clean.direction)}`);
  } finally {
    await rt.close();
  }
}
