// npm run bench:flux — one LoRA training step (forward + backward + AdamW, rank 16 on ai-toolkit's
// targets) of one full-size FLUX.2 [klein] 9B double block and one single block at 1024² (4096 image
// + 512 text tokens) on CPU, random frozen weights in fp32 read by ORT from a weight file as a checkpoint's
// are (external data), each block in its own child process so each peak memory is its own; the peak is
// the step's (VmHWM reset after loading), printed beside the engine's pre-flight estimate of it
// (TrainStep.preflight, as bench:wan does). Prints seconds and peak memory per block, the whole 8 + 24-block
// step extrapolated from them, and GEMM GFLOP/s measured in the same run (the machine's ceiling). Attention
// is memory-efficient at this size (kernels/dit/layers.ts `ditAttention`: 32 heads × 4,608² scores are
// 2.5 GiB per copy, so it runs in query chunks of ≤ 512 MiB and recomputes them in the backward pass).
//
//   npm run bench:flux                         (under flock /tmp/loragraph-heavy.lock)
//   options: --tokens N (image tokens, default 4096), --text N (default 512), --steps N (timed, default 2),
//   --chunk N (attention query rows per chunk; 0 = plain attention; default automatic)
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as K from '../kernels';
import { AdapterSet } from '../kernels/adapters/adapter-set';
import { FLUX2_KLEIN_9B as CFG, mlpHidden } from '../kernels/flux/config';
import { doubleBlock, singleBlock, jointPositions } from '../kernels/flux/transformer';
import { fluxKohyaName, fluxTargetSpec } from '../kernels/flux/lora';
import { ropeTables } from '../kernels/dit';
import { gemm, noise } from './gemm';
import { WeightFile } from '../kernels/nn/weight-file';
import { peakRss, resetPeak, rssNow } from './process-memory';
import { PreflightWeights, UniformWeights } from './uniform-weights';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const IMG = arg('tokens', 4096), TXT = arg('text', 512), STEPS = arg('steps', 2), RANK = 16;
const CHUNK = process.argv.includes('--chunk') ? arg('chunk', 0) : undefined;
const secs = (t0: number) => (performance.now() - t0) / 1000;
const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

/** Matmul FLOPs of a block's forward pass, linears and attention apart (their backward passes cost differently). */
function forwardFlops(part: 'double' | 'single'): { linear: number; attention: number } {
  const h = CFG.hiddenSize, L = IMG + TXT, m = mlpHidden(CFG);
  const attention = 4 * L * L * h;
  if (part === 'double') return { linear: 2 * L * (3 * h * h + h * h + 2 * m * h + m * h), attention };
  return { linear: 2 * L * (h * (3 * h + 2 * m) + (h + m) * h), attention };
}

/** A block's training graph over `weights`: its LoRA (ai-toolkit's targets), inputs, and the mean square of its output as the loss. */
function build(part: 'double' | 'single', weights: K.WeightSource) {
  const h = CFG.hiddenSize;
  const set = () => ({ shift: K.input(`m${n++}`, [1, h]), scale: K.input(`m${n++}`, [1, h]), gate: K.input(`m${n++}`, [1, h]) });
  let n = 0;
  const adapters = new AdapterSet({ rank: RANK, targets: fluxTargetSpec('ai_toolkit'), namer: fluxKohyaName });
  const b = new K.Builder(weights, adapters.hook({ training: true }));
  b.attentionChunk = CHUNK;
  const rope = ropeTables(jointPositions(CFG, TXT, IMG / 64, 64), CFG.axesDim, CFG.theta);
  let inputs: K.Tensor[], loss: K.Tensor;
  if (part === 'double') {
    const img = K.input('img', [1, IMG, h]), txt = K.input('txt', [1, TXT, h]);
    const mod = { img: [set(), set()], txt: [set(), set()] };
    const out = doubleBlock(b.scope('double_blocks.0'), CFG, img, txt, mod, rope);
    loss = K.add(K.reduceMean(K.square(out.img)), K.reduceMean(K.square(out.txt)));
    inputs = [img, txt, ...[...mod.img, ...mod.txt].flatMap((s) => [s.shift, s.scale, s.gate])];
  } else {
    const x = K.input('x', [1, TXT + IMG, h]);
    const mod = set();
    loss = K.reduceMean(K.square(singleBlock(b.scope('single_blocks.0'), CFG, x, mod, rope)));
    inputs = [x, mod.shift, mod.scale, mod.gate];
  }
  return { adapters, inputs, loss };
}

const NORM_SCALES = /norm\.(query|key)_norm\.scale$/;

async function blockStep(part: 'double' | 'single') {
  const rt = new K.Runtime({ threads: Number(process.env.LORAGRAPH_THREADS ?? 0) });
  const t0 = performance.now();
  // The frozen weights reach ORT from a file, as a checkpoint's do (no JS copy held beside ORT's).
  const file = new WeightFile(undefined, `flux-${part}-block`);
  const { adapters, inputs, loss } = build(part, new UniformWeights(NORM_SCALES, file));
  const ts = await K.TrainStep.create(rt, { inputs, params: adapters.params, loss, optimizer: K.adamw() });
  await ts.init(adapters.initialValues(1));
  const feed: Record<string, K.HostTensor> = {};
  inputs.forEach((t, i) => { feed[(t.source as { name: string }).name] = ht([...t.shape], noise(t.size, i)); });
  const setup = secs(t0);
  const loadPeak = peakRss();
  // The pre-flight estimates the step, so the peak is the step's: loading's passing copies are left out.
  (globalThis as { gc?: () => void }).gc?.();
  const reset = resetPeak();
  const resident = rssNow();
  const t1 = performance.now();
  await ts.step([feed], 1e-4, 1);
  const first = secs(t1);
  const times: number[] = [];
  for (let s = 0; s < STEPS; s++) { const t = performance.now(); await ts.step([feed], 1e-4, s + 2); times.push(secs(t)); }
  const peak = peakRss();
  await rt.close();
  file.remove();
  const best = Math.min(first, ...times);
  // Forward, then the backward pass: a frozen linear needs only dX (once its forward; the LoRA's own
  // matmuls are negligible at rank 16), attention dQ, dK and dV from four matmuls (twice its forward).
  const f = forwardFlops(part);
  const gflops = (2 * f.linear + 3 * f.attention) / best / 1e9;
  return { part, modules: adapters.modules.length, setup, first, best, gflops, peak, loadPeak, resident, reset };
}

/** The engine's memory pre-flight of a block's step (TrainStep.preflight), its weights constants as the step's are — without building it. */
function estimate(part: 'double' | 'single') {
  const { adapters, inputs, loss } = build(part, new PreflightWeights());
  const e = K.TrainStep.preflight({ inputs, params: adapters.params, loss, optimizer: K.adamw() });
  return { activations: e.activations, weights: e.weights, total: e.total };
}

const part = process.argv[2];
if (part === 'double' || part === 'single') {
  console.log(JSON.stringify(await blockStep(part)));
} else if (part === 'estimate-double' || part === 'estimate-single') {
  console.log(JSON.stringify(estimate(part === 'estimate-double' ? 'double' : 'single')));
} else if (part === 'gemm') {
  console.log(JSON.stringify({ gflops: await gemm() }));
} else {
  const self = fileURLToPath(import.meta.url);
  const child = (p: string) => {
    const r = spawnSync(process.execPath, [...process.execArgv, self, p, ...process.argv.slice(2)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`bench:flux ${p} failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  console.log(`bench:flux — FLUX.2 [klein] 9B blocks, ${IMG} image + ${TXT} text tokens, LoRA rank ${RANK}, fp32 on CPU (load ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  const g = child('gemm');
  console.log(`  GEMM 2048³ (same run):         ${g.gflops.toFixed(0)} GFLOP/s`);
  const rows = ['double', 'single'].map((p) => {
    const e = child(`estimate-${p}`);
    const r = child(p);
    console.log(`  ${p} block: ${r.modules} LoRA modules, setup ${r.setup.toFixed(1)} s, first step ${r.first.toFixed(1)} s, step ${r.best.toFixed(1)} s (${r.gflops.toFixed(0)} GFLOP/s, ${(r.gflops / g.gflops).toFixed(2)} of GEMM), peak ${gib(r.peak)} GiB measured${r.reset ? ' over the step' : ' (VmHWM could not be reset: loading included)'} vs ${gib(e.total)} GiB estimated (${(e.total / r.peak).toFixed(2)} of it; activations ${gib(e.activations)}, weights as ORT holds them ${gib(e.weights)}); resident before the step ${gib(r.resident)} GiB, loading's peak ${gib(r.loadPeak)} GiB`);
    return r;
  });
  // GEMM again after the blocks: on a shared machine the load changes during a run of many minutes.
  const g2 = child('gemm');
  console.log(`  GEMM 2048³ after the blocks:    ${g2.gflops.toFixed(0)} GFLOP/s`);
  const whole = CFG.depthDouble * rows[0].best + CFG.depthSingle * rows[1].best;
  console.log(`  whole step extrapolated (${CFG.depthDouble} double + ${CFG.depthSingle} single blocks, embedders not counted): ${whole.toFixed(0)} s`);
  console.log(`  (load ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
}
