// bench:sdxl — one LoRA training step of a random-weight full-size SDXL UNet (2.57B parameters) read
// from a single-file checkpoint, at 512×512 px (64×64 latents), batch 1, rank 16 on the attention
// projections (kohya SDXL names), with the frozen base in fp32 (ORT reads it from the file as external
// data) and in int8 (quantised once in JS; only packed bytes enter the graph). Gradient checkpointing
// is on by default, as kohya's SDXL recipes run. Then bench:sd15's figure for the same bases, measured
// in the same run (its own script, same size and recompute setting), and the ratios.
// One configuration per child process, so each peak resident memory (VmHWM) is its own.
//
//   npm run bench:sdxl
//   options: --bases fp32,int8  --steps N (timed steps after one warm-up, default 1)  --size PX (512)
//            --recompute on|off (on)  --sd15 on|off (on)  --cache DIR (random checkpoint, ≈10.3 GB)
//   one configuration: --base int8
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Builder, Runtime, TrainStep, adamw, cast, input, type HostTensor, type WeightSource } from '../kernels';
import { AdapterSet } from '../kernels/adapters';
import { Rng } from '../kernels/random';
import { ddpmSchedule } from '../kernels/schedules/ddpm';
import { batchLoss, ddpmTrainingPair, perSampleLoss } from '../kernels/losses';
import { QuantizedWeights } from '../kernels/quant/graph-weights';
import { SDXL_BASE, sdxlFamily, sdxlKohyaName, saveSdxlSingleFile, seededSdxlFill, loadSdxlUnet } from '../kernels/sdxl';
import { peakRss, resetPeak } from './process-memory';

const BASES = ['fp32', 'int8'] as const;
type BaseName = (typeof BASES)[number];
const BATCH = 1, RANK = 16;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const secs = (t0: number) => (performance.now() - t0) / 1000;
const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

/** The random SDXL UNet (fp32, UNet keys only), written once (several minutes, ≈10.3 GB) and reused. */
async function randomUnet(dir: string): Promise<string> {
  const file = join(dir, 'sdxl-unet-random-fp32-v1.safetensors');
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  await saveSdxlSingleFile(file, SDXL_BASE, seededSdxlFill(12345, 0.02), { dtype: 'F32', components: ['unet'] });
  console.log(`  wrote the random SDXL UNet (fp32 single file) in ${secs(t0).toFixed(1)} s: ${file}`);
  return file;
}

interface Result { model: 'sdxl' | 'sd15'; base: string; size: number; recompute: boolean; secPerStep: number; stepPeak: number; processPeak: number; load: string }

async function runConfig(base: BaseName, steps: number, size: number, recompute: boolean, cacheDir: string): Promise<Result> {
  const latent = size / 8;
  const label = `${base}${recompute ? '+recompute' : ''}`;
  console.log(`[sdxl ${label}] load average ${load()}`);
  const file = await randomUnet(cacheDir);
  const work = join(tmpdir(), `bench-sdxl-${process.pid}`);
  const rt = new Runtime();
  try {
    let t0 = performance.now();
    const model = await loadSdxlUnet(file, { external: base === 'fp32' });
    console.log(`  UNet loaded and checked (${model.dtypes.join('/')}) in ${secs(t0).toFixed(1)} s`);

    t0 = performance.now();
    const cfg = model.config;
    const adapters = new AdapterSet({ rank: RANK, alpha: RANK, targets: { preset: 'attention' }, namer: (p) => sdxlKohyaName('unet', p, cfg.unet) });
    const quantized = base === 'int8' ? new QuantizedWeights(model.unet, { scheme: 'int8' }) : undefined;
    const weights: WeightSource = quantized ?? model.unet;
    const x0 = input('latents', [BATCH, 4, latent, latent]), noise = input('noise', [BATCH, 4, latent, latent]), t = input('timesteps', [BATCH], 'int64');
    const context = input('context', [BATCH, 77, cfg.unet.crossAttentionDim]), pooled = input('pooled', [BATCH, cfg.textG.projectionDim]), timeIds = input('time_ids', [BATCH, 6]);
    const schedule = ddpmSchedule({ betaStart: cfg.scheduler.betaStart, betaEnd: cfg.scheduler.betaEnd, numTrainTimesteps: cfg.scheduler.numTrainTimesteps, betaSchedule: cfg.scheduler.betaSchedule });
    const { noisy, target } = ddpmTrainingPair(x0, noise, t, schedule, 'epsilon');
    const b = new Builder(weights, adapters.hook({ training: true }));
    b.gradientCheckpointing = recompute;
    const pred = sdxlFamily.denoise(b, cfg, { sample: noisy, timestep: cast(t, 'float32'), cond: { context, pooled, time_ids: timeIds } });
    const loss = batchLoss(perSampleLoss(pred, target));
    const q = quantized?.summary();
    const note = q ? `; ${q.linear.layers + q.conv.layers} weights quantised, ${gib(q.linear.fp32Bytes + q.conv.fp32Bytes)} → ${gib(q.linear.quantBytes + q.conv.quantBytes)} GiB` : '';
    console.log(`  graph built in ${secs(t0).toFixed(1)} s: LoRA rank ${RANK} on ${adapters.modules.length} attention projections, ${(adapters.trainableCount / 1e6).toFixed(2)}M trainable${note}`);

    t0 = performance.now();
    const ts = await TrainStep.create(rt, { inputs: [x0, noise, t, context, pooled, timeIds, ...adapters.dropoutInputs], params: adapters.params, loss, optimizer: adamw(), maxGradNorm: 1, externalDir: work });
    const graph = ts.graphs.fused!;
    console.log(`  compiled + ORT session created in ${secs(t0).toFixed(1)} s: ${graph.nodeCount} nodes, ${gib(graph.initializerBytes)} GiB initializers`);
    await ts.init(adapters.initialValues(new Rng('bench-init')));
    model.unet.close();

    const rng = new Rng('bench-data');
    const normal = (shape: number[]): HostTensor => ({ dtype: 'float32', shape, data: rng.fillNormal(new Float32Array(shape.reduce((a, c) => a * c, 1))) });
    const feeds: Record<string, HostTensor> = {
      latents: normal([BATCH, 4, latent, latent]), noise: normal([BATCH, 4, latent, latent]),
      timesteps: { dtype: 'int64', shape: [BATCH], data: BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(500 + 37 * i)) },
      context: normal([BATCH, 77, cfg.unet.crossAttentionDim]), pooled: normal([BATCH, cfg.textG.projectionDim]),
      time_ids: { dtype: 'float32', shape: [BATCH, 6], data: Float32Array.from({ length: BATCH * 6 }, (_, i) => [size, size, 0, 0, size, size][i % 6]) },
    };

    const processPeakBefore = peakRss();
    if (!resetPeak()) console.log('  (cannot reset VmHWM: the step peak includes loading)');
    t0 = performance.now();
    const first = await ts.step([feeds], 1e-4, 1);
    console.log(`  first step (ORT warm-up): ${secs(t0).toFixed(2)} s, loss ${first.loss.toFixed(4)}, grad norm ${first.gradNorm.toFixed(4)}`);
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t1 = performance.now();
      await ts.step([feeds], 1e-4, 2 + i);
      times.push(secs(t1));
    }
    const stepPeak = peakRss();
    const mean = times.reduce((a, c) => a + c, 0) / times.length;
    console.log(`  steps: ${times.map((s) => s.toFixed(2)).join(' ')} s`);
    const r: Result = { model: 'sdxl', base, size, recompute, secPerStep: mean, stepPeak, processPeak: Math.max(processPeakBefore, stepPeak), load: load() };
    console.log(`SDXL UNet LoRA rank ${RANK} train step, batch ${BATCH}, ${size}×${size} px, ${label}: ${mean.toFixed(2)} s/step, training peak RSS ${gib(stepPeak)} GiB, process peak ${gib(r.processPeak)} GiB (load average ${r.load})`);
    await ts.dispose();
    return r;
  } finally {
    await rt.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs bench:sd15 for one base in a child and reads its figure (RESULT line, or its summary line). */
function sd15Figure(base: BaseName, steps: number, size: number, recompute: boolean): Result | undefined {
  const script = fileURLToPath(new URL('./sd15.ts', import.meta.url));
  const args = [...process.execArgv, script, '--base', base, '--scheme', base, '--steps', String(steps), '--size', String(size), '--recompute', recompute ? 'on' : 'off'];
  console.log(`[sd15 ${base}] bench:sd15 in a child process`);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  process.stdout.write(r.stdout.split('\n').map((l) => (l ? `  | ${l}` : l)).join('\n'));
  if (r.status !== 0) { console.error(`  bench:sd15 ${base} failed (exit ${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`); return undefined; }
  const json = /^RESULT (.+)$/m.exec(r.stdout);
  if (json) {
    const o = JSON.parse(json[1]) as { secPerStep: number; stepPeak: number; processPeak: number; recompute?: boolean; load: string };
    return { model: 'sd15', base, size, recompute: o.recompute ?? false, secPerStep: o.secPerStep, stepPeak: o.stepPeak, processPeak: o.processPeak, load: o.load };
  }
  const m = /(\d+)×\d+ px[^:]*: ([\d.]+) s\/step, (?:training )?peak RSS ([\d.]+) GiB/.exec(r.stdout);
  if (!m) { console.error('  bench:sd15 printed no figure this script can read'); return undefined; }
  const bytes = Number(m[3]) * 2 ** 30;
  return { model: 'sd15', base, size: Number(m[1]), recompute: false, secPerStep: Number(m[2]), stepPeak: bytes, processPeak: bytes, load: '' };
}

const steps = Number(arg('steps') ?? 1);
const size = Number(arg('size') ?? 512);
if (!Number.isInteger(size / 64) || size < 64) throw new Error(`--size: ${size} px must be a multiple of 64`);
const recompute = (arg('recompute') ?? 'on') === 'on';
const cacheDir = arg('cache') ?? join(homedir(), '.cache', 'loragraph-bench');
const one = arg('base');
if (one) {
  if (!BASES.includes(one as BaseName)) throw new Error(`--base: unknown base '${one}' (expected ${BASES.join(', ')})`);
  const r = await runConfig(one as BaseName, steps, size, recompute, cacheDir);
  console.log(`RESULT ${JSON.stringify(r)}`);
} else {
  const bases = (arg('bases')?.split(',') ?? [...BASES]) as BaseName[];
  for (const b of bases) if (!BASES.includes(b)) throw new Error(`--bases: unknown base '${b}'`);
  await randomUnet(cacheDir);
  const self = fileURLToPath(import.meta.url);
  const results: Result[] = [];
  for (const b of bases) {
    const r = spawnSync(process.execPath, [...process.execArgv, self, '--base', b, '--steps', String(steps), '--size', String(size), '--recompute', recompute ? 'on' : 'off', '--cache', cacheDir], { encoding: 'utf8', maxBuffer: 64 << 20 });
    process.stdout.write(r.stdout);
    const json = /^RESULT (.+)$/m.exec(r.stdout);
    if (r.status !== 0 || !json) { console.error(`[sdxl ${b}] failed (exit ${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`); process.exitCode = 1; continue; }
    results.push(JSON.parse(json[1]) as Result);
  }
  if ((arg('sd15') ?? 'on') === 'on') for (const b of bases) { const r = sd15Figure(b, steps, size, recompute); if (r) results.push(r); }
  console.log(`\nmodel  base  size  recompute  s/step  training-peak GiB  process-peak GiB`);
  for (const r of results) console.log(`${r.model.padEnd(6)} ${r.base.padEnd(5)} ${String(r.size).padEnd(5)} ${(r.recompute ? 'on' : 'off').padEnd(10)} ${r.secPerStep.toFixed(2).padStart(6)}  ${gib(r.stepPeak).padStart(17)}  ${gib(r.processPeak).padStart(16)}`);
  for (const b of bases) {
    const x = results.find((r) => r.model === 'sdxl' && r.base === b), s = results.find((r) => r.model === 'sd15' && r.base === b);
    if (x && s) console.log(`sdxl_vs_sd15_${b}: step time ×${(x.secPerStep / s.secPerStep).toFixed(2)}, training peak ×${(x.stepPeak / s.stepPeak).toFixed(2)} (SDXL ${size} px vs SD 1.5 ${s.size} px)`);
  }
}
