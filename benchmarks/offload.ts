// npm run bench:offload — layer offloading against the resident step: LoRA training steps of a
// FLUX.2-architecture transformer (hidden 1024, 8 heads × 128, 2 double + 6 single blocks, ≈0.6 GB of
// fp32 weights in a safetensors file written first), each way in its own child process so each peak RSS
// is its own:
//   resident   — one step graph, weights as ORT external data read from the file at load (the default);
//   offloaded  — Load Model's `offload: blocks`: each block its own sessions, its weights read from the
//                file when it runs (kernels/train/offload.ts).
// Prints peak RSS, seconds per step, the bytes of weights fed to the largest segment, and the loss of
// each (they must agree: same model, same batch). Then one denoiser call of sampling (no LoRA, CFG's
// batch of 2) each way, also in its own child process (kernels/train/offload-forward.ts): peak RSS,
// seconds, the pre-flight's estimate, and the largest difference between the two predictions.
//
//   npm run bench:offload          (under flock /tmp/loragraph-heavy.lock)
//   options: --steps N (timed steps after the first, default 1), --single N (single blocks, default 6)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as K from '../kernels';
import { AdapterSet } from '../kernels/adapters/adapter-set';
import { writeSafetensors, type TensorToWrite } from '../kernels/io/safetensors';
import { indexSafetensors } from '../kernels/flux/load';
import { CheckpointWeights } from '../kernels/sd/checkpoint-weights';
import { FLUX2_KLEIN_4B, type FluxTransformerConfig } from '../kernels/flux/config';
import { fluxTransformer, jointPositions } from '../kernels/flux/transformer';
import { fluxKohyaName, fluxTargetSpec } from '../kernels/flux/lora';
import { ropeTables } from '../kernels/dit';
import { OffloadedStep } from '../kernels/train/offload';
import { OffloadedForward } from '../kernels/train/offload-forward';
import { estimateGraphMemory } from '../kernels/train/memory';
import { peakRss } from './process-memory';

const opt = (name: string, dflt: number) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? Number(process.argv[i + 1]) : dflt; };
const STEPS = opt('steps', 1);
const CFG: FluxTransformerConfig = { ...FLUX2_KLEIN_4B, name: 'flux2-bench-1024', hiddenSize: 1024, numHeads: 8, depthDouble: 2, depthSingle: opt('single', 6), contextDim: 1024 };
const ROWS = 16, COLS = 16, TXT = 64, RANK = 16;
const gib = (b: number) => (b / 2 ** 30).toFixed(2);
const noise = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);

function build(weights: K.WeightSource) {
  const adapters = new AdapterSet({ rank: RANK, targets: fluxTargetSpec('ai_toolkit'), namer: fluxKohyaName });
  const b = new K.Builder(weights, adapters.hook({ training: true }));
  b.gradientCheckpointing = true;
  const img = K.input('img', [1, ROWS * COLS, CFG.inChannels]), txt = K.input('txt', [1, TXT, CFG.contextDim]), t = K.input('t', [1]), target = K.input('target', [1, ROWS * COLS, CFG.inChannels]);
  const y = fluxTransformer(b, CFG, { img, txt, timesteps: t, rope: ropeTables(jointPositions(CFG, TXT, ROWS, COLS), CFG.axesDim, CFG.theta) });
  return { adapters, inputs: [img, txt, t, target], loss: K.reduceMean(K.square(K.sub(y, target))) };
}

async function run(mode: 'resident' | 'offloaded', file: string) {
  const rt = new K.Runtime({ threads: Number(process.env.LORAGRAPH_THREADS ?? 0) });
  const { tensors } = await indexSafetensors(file);
  const m = build(new CheckpointWeights(tensors, file, { external: true }));
  const spec = { inputs: m.inputs, params: m.adapters.params, loss: m.loss, optimizer: K.adamw(), memoryLimitBytes: 0 };
  const t0 = performance.now();
  const ts = mode === 'offloaded' ? await OffloadedStep.create(rt, spec) : await K.TrainStep.create(rt, spec);
  await ts.init(m.adapters.initialValues(1));
  const feed = Object.fromEntries(m.inputs.map((x, i) => [(x.source as { name: string }).name, { dtype: 'float32' as const, shape: [...x.shape], data: x.size === 1 ? new Float32Array([0.5]) : noise(x.size, i) }]));
  const setup = (performance.now() - t0) / 1000;
  const losses: number[] = [];
  let best = Infinity;
  for (let s = 0; s <= STEPS; s++) {
    const t = performance.now();
    losses.push((await ts.step([feed], 1e-4, s + 1)).loss);
    if (s > 0 || STEPS === 0) best = Math.min(best, (performance.now() - t) / 1000);
  }
  const segmentWeights = ts instanceof OffloadedStep ? ts.maxSegmentWeightBytes : 0;
  const layout = ts instanceof OffloadedStep ? ts.layout : undefined;
  await rt.close();
  return { mode, setup, best, loss: losses[0], peak: peakRss(), estimate: ts.memoryEstimate.total, segmentWeights, layout };
}

/** One denoiser call as the Sampler makes it (CFG: batch 2), resident or block by block. */
async function sample(mode: 'sample-resident' | 'sample-offloaded', file: string) {
  const rt = new K.Runtime({ threads: Number(process.env.LORAGRAPH_THREADS ?? 0) });
  const { tensors } = await indexSafetensors(file);
  const b = new K.Builder(new CheckpointWeights(tensors, file, { external: true }));
  // Offloading needs the blocks marked; in a forward graph that is all gradient checkpointing does.
  b.gradientCheckpointing = mode === 'sample-offloaded';
  const img = K.input('img', [2, ROWS * COLS, CFG.inChannels]), txt = K.input('txt', [2, TXT, CFG.contextDim]), t = K.input('t', [2]);
  const y = fluxTransformer(b, CFG, { img, txt, timesteps: t, rope: ropeTables(jointPositions(CFG, TXT, ROWS, COLS), CFG.axesDim, CFG.theta) });
  const inputs = [img, txt, t];
  const t0 = performance.now();
  let estimate: number, runner: { run(f: Record<string, K.HostTensor>): Promise<Record<string, K.HostTensor>> };
  if (mode === 'sample-offloaded') {
    const off = OffloadedForward.plan(inputs, { y });
    estimate = off.memoryEstimate.total;
    runner = await off.load(rt);
  } else {
    estimate = estimateGraphMemory([y]).total;
    runner = await rt.load(K.compileGraph(inputs, { y }));
  }
  const feed = Object.fromEntries(inputs.map((x, i) => [(x.source as { name: string }).name, { dtype: 'float32' as const, shape: [...x.shape], data: x === t ? new Float32Array([0.5, 0.5]) : noise(x.size, i) }]));
  const setup = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const out = (await runner.run(feed)).y.data as Float32Array;
  const seconds = (performance.now() - t1) / 1000;
  await rt.close();
  return { mode, setup, seconds, estimate, peak: peakRss(), head: Array.from(out.subarray(0, 4096)) };
}

const mode = process.argv[2];
if (mode === 'resident' || mode === 'offloaded') console.log(JSON.stringify(await run(mode, process.argv[3])));
else if (mode === 'sample-resident' || mode === 'sample-offloaded') console.log(JSON.stringify(await sample(mode, process.argv[3])));
else {
  const dir = mkdtempSync(join(tmpdir(), 'lg-bench-offload-'));
  try {
    const file = join(dir, 'flux2-1024.safetensors');
    const w = new K.RandomWeights(1, 0.02);
    build(w);
    await writeSafetensors(file, [...w.tensors].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]));
    w.tensors.clear();
    const self = fileURLToPath(import.meta.url);
    const child = (m: string) => {
      const r = spawnSync(process.execPath, [...process.execArgv, self, m, file, ...process.argv.slice(2)], { encoding: 'utf8', maxBuffer: 1 << 26 });
      if (r.status !== 0) throw new Error(`bench:offload ${m} failed:\n${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
    console.log(`bench:offload — FLUX.2-architecture ${CFG.hiddenSize} wide, ${CFG.depthDouble} double + ${CFG.depthSingle} single blocks, ${ROWS * COLS} image + ${TXT} text tokens, LoRA rank ${RANK}, weights file ${gib(statSync(file).size)} GiB fp32, CPU (load ${load()})`);
    const [res, off] = [child('resident'), child('offloaded')];
    for (const r of [res, off]) {
      const extra = r.layout ? `, ${r.layout.segments} segments on ${r.layout.sessions} sessions, largest segment's weights ${gib(r.segmentWeights)} GiB` : '';
      console.log(`  ${r.mode.padEnd(9)}: peak RSS ${gib(r.peak)} GiB, estimate ${gib(r.estimate)} GiB, step ${r.best.toFixed(2)} s, setup ${r.setup.toFixed(1)} s, loss ${r.loss.toFixed(6)}${extra}`);
    }
    console.log(`  offloaded / resident: peak RSS ${(off.peak / res.peak).toFixed(2)}×, step time ${(off.best / res.best).toFixed(2)}×, loss difference ${Math.abs(off.loss - res.loss).toExponential(1)}   (load ${load()})`);
    const [sr, so] = [child('sample-resident'), child('sample-offloaded')];
    for (const r of [sr, so]) console.log(`  ${r.mode.padEnd(16)}: one denoiser call (batch 2): peak RSS ${gib(r.peak)} GiB, estimate ${gib(r.estimate)} GiB, ${r.seconds.toFixed(2)} s, setup ${r.setup.toFixed(1)} s`);
    const diff = (sr.head as number[]).reduce((m: number, v: number, i: number) => Math.max(m, Math.abs(v - so.head[i])), 0);
    console.log(`  sampling offloaded / resident: peak RSS ${(so.peak / sr.peak).toFixed(2)}×, estimate ${(so.estimate / sr.estimate).toFixed(2)}×, time ${(so.seconds / sr.seconds).toFixed(2)}×, max |Δ prediction| ${diff.toExponential(1)} (first 4096 values)   (load ${load()})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
