// bench:sd15 — one LoRA training step of a random-weight full-size SD 1.5 UNet read from a single-file
// checkpoint, through the code the Train node runs (sdAdapters + buildSdTrainGraph + TrainStep with
// external data), with the frozen base in fp32 and in each quantisation scheme. Prints seconds per
// phase and per step, and peak memory, one scheme per child process so each peak is its own. The
// machine may be shared: the load average is printed beside the timings.
//
//   npm run bench:sd15                      every scheme, one after another
//   npm run bench:sd15 -- --scheme int8     one scheme (fp32, int8, nf4, int4, fp8)
//   options: --steps N (timed steps after one warm-up, default 3), --cache DIR (random checkpoint)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime, TrainStep, adamw, type HostTensor, type WeightSource } from '../kernels';
import { Rng } from '../kernels/random';
import { SD15 } from '../kernels/sd/config';
import { saveSingleFile } from '../kernels/sd/save';
import { loadSd } from '../kernels/sd/load';
import { sdAdapters } from '../kernels/sd/lora';
import { buildSdTrainGraph } from '../kernels/sd/training-graph';
import { QuantizedWeights } from '../kernels/quant/graph-weights';
import type { QuantScheme } from '../kernels/quant';

const SCHEMES = { fp32: undefined, int8: 'int8', nf4: 'nf4', int4: 'int4', fp8: 'fp8_e4m3' } as const satisfies Record<string, QuantScheme | undefined>;
type SchemeName = keyof typeof SCHEMES;
const BATCH = 1, LATENT = 32, RANK = 16; // 256×256 px

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const secs = (t0: number) => (performance.now() - t0) / 1000;
const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
/** Peak resident memory of this process (VmHWM), in bytes. */
const peakRss = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
};
const rssNow = () => process.memoryUsage().rss;

/** The random SD 1.5 checkpoint, written once (≈2 min, 4.3 GB) and reused from the cache folder. */
async function randomCheckpoint(dir: string): Promise<string> {
  const file = join(dir, 'sd15-random-fp32-v1.safetensors');
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  // Uniform noise of std 0.02 (norm scales 1): a cheap stand-in for trained weights.
  let s = 12345;
  const half = 0.02 * Math.sqrt(3), step = (2 * half) / 2 ** 32;
  await saveSingleFile(file, SD15, (_c, name, shape) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/norm.*\.weight$/.test(name)) return out.fill(1);
    for (let i = 0; i < out.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s * step - half; }
    return out;
  }, { dtype: 'F32' });
  console.log(`  wrote the random SD 1.5 single file (fp32, UNet + text encoder + VAE) in ${secs(t0).toFixed(1)} s: ${file}`);
  return file;
}

async function runScheme(name: SchemeName, steps: number, cacheDir: string) {
  const scheme = SCHEMES[name];
  console.log(`[${name}] load average ${load()}`);
  const file = await randomCheckpoint(cacheDir);
  const work = join(tmpdir(), `bench-sd15-${process.pid}`);
  const rt = new Runtime();
  try {
    let t0 = performance.now();
    // fp32: ORT reads the frozen weights straight from the checkpoint. Quantised: each weight is read
    // once into JS, quantised, and only the packed bytes go into the graph.
    const model = await loadSd(file, { external: !scheme });
    console.log(`  loaded and checked (${model.family}, ${model.dtypes.join('/')}) in ${secs(t0).toFixed(1)} s`);

    t0 = performance.now();
    const adapters = sdAdapters(SD15, { rank: RANK, alpha: RANK, targets: { preset: 'attention' }, trainTextEncoder: false });
    const quantized = scheme ? new QuantizedWeights(model.unet, { scheme }) : undefined;
    const unetWeights: WeightSource = quantized ?? model.unet;
    const g = buildSdTrainGraph({ config: SD15, unetWeights, adapters, batch: BATCH, latentSize: [LATENT, LATENT] });
    const q = quantized?.summary();
    const quantNote = q ? `; ${q.linear.layers + q.conv.layers} weights quantised, ${gib(q.linear.fp32Bytes + q.conv.fp32Bytes)} → ${gib(q.linear.quantBytes + q.conv.quantBytes)} GiB` : '';
    console.log(`  graph built${scheme ? ' (base quantised in JS)' : ''} in ${secs(t0).toFixed(1)} s: LoRA rank ${RANK} on ${adapters.unet.modules.length} attention projections, ${(adapters.unet.trainableCount / 1e6).toFixed(2)}M trainable${quantNote}`);

    t0 = performance.now();
    const rssBeforeSession = rssNow();
    const ts = await TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, extraOutputs: g.extra, optimizer: adamw(), maxGradNorm: 1, externalDir: work });
    const graph = ts.graphs.fused!;
    const created = secs(t0);
    console.log(`  compiled + ORT session created in ${created.toFixed(1)} s: ${graph.nodeCount} nodes, ${(graph.bytes.length / 2 ** 20).toFixed(1)} MiB protobuf, ${gib(graph.initializerBytes)} GiB initializers; RSS ${gib(rssBeforeSession)} → ${gib(rssNow())} GiB`);
    await ts.init(adapters.unet.initialValues(new Rng('bench-init')));

    const rng = new Rng('bench-data');
    const lat = [BATCH, SD15.unet.inChannels, LATENT, LATENT];
    const normal = (shape: number[]): HostTensor => ({ dtype: 'float32', shape, data: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))) });
    const feeds: Record<string, HostTensor> = {
      latents: normal(lat), noise: normal(lat),
      timesteps: { dtype: 'int64', shape: [BATCH], data: BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(500 + 37 * i)) },
      context: normal([BATCH, SD15.text.maxPositions, SD15.unet.crossAttentionDim]),
    };
    const missing = g.inputs.map((t) => (t.source.kind === 'input' ? t.source.name : '')).filter((n) => !(n in feeds));
    if (missing.length) throw new Error(`bench: training graph wants inputs ${missing.join(', ')}`);

    t0 = performance.now();
    const first = await ts.step([feeds], 1e-4, 1);
    console.log(`  first step (ORT warm-up): ${secs(t0).toFixed(2)} s, loss ${first.loss.toFixed(4)}, grad norm ${first.gradNorm.toFixed(4)}`);
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t1 = performance.now();
      await ts.step([feeds], 1e-4, 2 + i);
      times.push(secs(t1));
    }
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    console.log(`  steps: ${times.map((t) => t.toFixed(2)).join(' ')} s`);
    console.log(`SD 1.5 UNet LoRA rank ${RANK} train step, batch ${BATCH}, 256×256 px (32×32 latents), ${name} base: ${mean.toFixed(2)} s/step, peak RSS ${gib(peakRss())} GiB (load average ${load()})`);
    await ts.dispose();
    model.close();
  } finally {
    await rt.close();
    rmSync(work, { recursive: true, force: true });
  }
}

const only = arg('scheme');
const steps = Number(arg('steps') ?? 3);
const cacheDir = arg('cache') ?? join(homedir(), '.cache', 'loragraph-bench');
if (only) {
  if (!(only in SCHEMES)) throw new Error(`--scheme: unknown scheme '${only}' (expected ${Object.keys(SCHEMES).join(', ')})`);
  await runScheme(only as SchemeName, steps, cacheDir);
} else {
  // Each scheme in its own process: peak RSS is per process, and memory from one never counts for the next.
  await randomCheckpoint(cacheDir);
  const self = fileURLToPath(import.meta.url);
  for (const name of Object.keys(SCHEMES)) {
    const r = spawnSync(process.execPath, [...process.execArgv, self, '--scheme', name, '--steps', String(steps), '--cache', cacheDir], { stdio: 'inherit' });
    if (r.status !== 0) { console.error(`[${name}] failed (exit ${r.status ?? r.signal})`); process.exitCode = 1; }
  }
}
