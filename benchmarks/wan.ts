// npm run bench:wan — one LoRA training step (forward + backward + AdamW, rank 16 on the block's 10
// linear layers, ai-toolkit's/musubi's targets) of one full-size Wan 2.2 A14B expert block (width 5120,
// FFN 13824, 40 heads) at 480×832: 60×104 latent, 30×52 tokens per latent frame, 512 text tokens.
// Random frozen weights in fp32, read by ORT from a weight file as a checkpoint's are (external data),
// gradient checkpointing on (the block is recomputed in the backward pass, as a 40-block step needs),
// each measured configuration in its own child process so its peak memory is its own; the peak is the
// step's (VmHWM reset after loading), which is what the pre-flight estimates.
//
// The target clip is 33 frames = 9 latent frames = 14,040 tokens. Plain self-attention would hold 40
// heads of 14,040² fp32 scores (31.5 GB per copy, ≈92 GiB at peak) — more than this machine's RAM — so
// the block attends in query chunks (memory-efficient attention, kernels/dit/layers.ts `ditAttention`):
// one chunk's scores at a time, recomputed per chunk in the backward pass. The step is measured at the
// full 14,040 tokens; the engine's pre-flight (TrainStep.preflight, kernels/train/memory.ts) is printed beside the
// measured peak, and the plain-attention estimate beside it. Smaller sizes (--frames 1,9) are
// extrapolated to 14,040 by the FLOP count (linear layers grow with tokens, attention with tokens²).
// Each step's GFLOP/s is printed as a fraction of a GEMM 2048³ probe (benchmarks/gemm.ts, the same one
// bench:flux prints) measured in the same run, before and after the steps, in its own child process with
// the same LORAGRAPH_THREADS: the machine's ceiling then, so a slow step on a busy machine reads as one.
//
//   npm run bench:wan                         (under flock /tmp/loragraph-heavy.lock)
//   options: --frames 9 (latent frames measured, comma-separated), --steps N (timed steps after the
//   first, default 0: the first step is timed), --chunk N (attention query rows per chunk; 0 = plain)
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as K from '../kernels';
import { AdapterSet } from '../kernels/adapters/adapter-set';
import { WAN22_T2V_A14B as CFG } from '../kernels/wan/config';
import { wanBlock, wanRope } from '../kernels/wan/transformer';
import { wanKohyaName, wanTargetSpec } from '../kernels/wan/lora';
import { WeightFile } from '../kernels/nn/weight-file';
import { gemm, noise } from './gemm';
import { peakRss, resetPeak, rssNow } from './process-memory';
import { PreflightWeights, UniformWeights } from './uniform-weights';

const argv = process.argv;
const opt = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : dflt; };
const FRAMES = opt('frames', '9').split(',').map(Number);
const STEPS = Number(opt('steps', '0'));
const CHUNK = argv.includes('--chunk') ? Number(opt('chunk', '0')) : undefined;
const TARGET_FRAMES = 9, ROWS = 30, COLS = 52, TEXT = 512, RANK = 16;
const tokensOf = (frames: number) => frames * ROWS * COLS;
const secs = (t0: number) => (performance.now() - t0) / 1000;
const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

/** Matmul FLOPs of the block's forward pass at L video tokens: linears, then attention's two matmuls. */
function forwardFlops(L: number) {
  const d = CFG.dim, f = CFG.ffnDim;
  const linear = 2 * L * (4 * d * d + 2 * d * d + 2 * d * f) + 2 * TEXT * 2 * d * d;
  const attention = 4 * L * L * d + 4 * L * TEXT * d;
  return { linear, attention };
}

/**
 * Matmul FLOPs of a training step: the forward, its recomputation (checkpointing), then the backward
 * pass — a frozen linear needs only dX (once its forward; rank-16 LoRA matmuls are negligible), attention
 * dQ, dK and dV from four matmuls (twice its forward).
 */
const stepFlops = (f: { linear: number; attention: number }) => 3 * f.linear + 4 * f.attention;

/** The block's training graph: x, e0, context in; mean square of the output as the loss. */
function build(weights: K.WeightSource, frames: number, chunk = CHUNK) {
  const d = CFG.dim, L = tokensOf(frames);
  const adapters = new AdapterSet({ rank: RANK, targets: wanTargetSpec('blocks'), namer: wanKohyaName });
  const b = new K.Builder(weights, adapters.hook({ training: true }));
  b.gradientCheckpointing = true;
  b.attentionChunk = chunk;
  const x = K.input('x', [1, L, d]), e0 = K.input('e0', [1, 1, 6, d]), ctx = K.input('ctx', [1, TEXT, d]);
  const rope = wanRope(CFG, [frames, ROWS, COLS]);
  const out = b.block(() => wanBlock(b.scope('blocks.0'), CFG, x, e0, ctx, undefined, rope));
  return { adapters, inputs: [x, e0, ctx], loss: K.reduceMean(K.square(out)) };
}

async function step(frames: number) {
  const rt = new K.Runtime({ threads: Number(process.env.LORAGRAPH_THREADS ?? 0) });
  const t0 = performance.now();
  // The frozen weights reach ORT from a file, as a checkpoint's do (no JS copy held beside ORT's).
  const file = new WeightFile(undefined, 'wan-block');
  const { adapters, inputs, loss } = build(new UniformWeights(/norm\w*\.weight$/, file), frames);
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
  return { frames, tokens: tokensOf(frames), modules: adapters.modules.length, setup, first, best: Math.min(first, ...times), peak, loadPeak, resident, reset };
}

/**
 * The engine's memory pre-flight of the step (TrainStep.preflight: forward, recomputation, backward and
 * AdamW, as TrainStep.create checks it), its weights constants as the step's are — without building it.
 */
function estimate(frames: number, chunk = CHUNK) {
  const { adapters, inputs, loss } = build(new PreflightWeights(), frames, chunk);
  const e = K.TrainStep.preflight({ inputs, params: adapters.params, loss, optimizer: K.adamw() });
  return { frames, tokens: tokensOf(frames), activations: e.activations, weights: e.weights, total: e.total };
}

const mode = argv[2];
if (mode === 'step') console.log(JSON.stringify(await step(Number(argv[3]))));
else if (mode === 'estimate') console.log(JSON.stringify(estimate(Number(argv[3]))));
else if (mode === 'estimate-plain') console.log(JSON.stringify(estimate(Number(argv[3]), 0)));
else if (mode === 'gemm') console.log(JSON.stringify({ gflops: await gemm() }));
else {
  const self = fileURLToPath(import.meta.url);
  const child = (...args: string[]) => {
    const r = spawnSync(process.execPath, [...process.execArgv, self, ...args, ...argv.slice(2)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`bench:wan ${args.join(' ')} failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`bench:wan — one Wan 2.2 A14B expert block (${CFG.dim} wide, FFN ${CFG.ffnDim}, ${CFG.numHeads} heads), 480×832, LoRA rank ${RANK}, fp32, gradient checkpointing, CPU (load ${load()})`);
  const g = child('gemm');
  console.log(`  GEMM 2048³ (same run): ${g.gflops.toFixed(0)} GFLOP/s`);
  const target = tokensOf(TARGET_FRAMES);
  const est = child('estimate', String(TARGET_FRAMES));
  const plain = child('estimate-plain', String(TARGET_FRAMES));
  console.log(`  target: 33 frames = ${TARGET_FRAMES} latent frames × ${ROWS} × ${COLS} = ${target} tokens; estimated peak ${gib(est.total)} GiB with ${CHUNK === 0 ? 'plain' : 'memory-efficient'} attention (activations ${gib(est.activations)} GiB, weights as ORT holds them ${gib(est.weights)} GiB); plain attention: ${gib(plain.total)} GiB`);
  for (const f of FRAMES) {
    const e = child('estimate', String(f));
    const r = child('step', String(f));
    const fl = forwardFlops(r.tokens);
    const gflops = stepFlops(fl) / r.best / 1e9;
    const ratio = stepFlops(forwardFlops(target)) / stepFlops(fl);
    const block = r.best * ratio;
    console.log(`  measured ${f} latent frame(s) = ${r.tokens} tokens: ${r.modules} LoRA modules, setup ${r.setup.toFixed(1)} s, first step ${r.first.toFixed(1)} s, step ${r.best.toFixed(1)} s (${gflops.toFixed(0)} GFLOP/s, ${(gflops / g.gflops).toFixed(2)} of GEMM), peak ${gib(r.peak)} GiB measured${r.reset ? ' over the step' : ' (VmHWM could not be reset: loading included)'} vs ${gib(e.total)} GiB estimated (${(e.total / r.peak).toFixed(2)} of it); resident before the step ${gib(r.resident)} GiB, loading's peak ${gib(r.loadPeak)} GiB`);
    console.log(`    → extrapolated to ${target} tokens by FLOPs (×${ratio.toFixed(1)}): ${block.toFixed(0)} s per block, ${(CFG.numLayers * block / 60).toFixed(0)} min per ${CFG.numLayers}-block step (embedders and head not counted; a busy machine inflates it — compare the GFLOP/s with GEMM)`);
  }
  // GEMM again after the steps: on a shared machine the load changes during a run of many minutes.
  const g2 = child('gemm');
  console.log(`  GEMM 2048³ after the blocks: ${g2.gflops.toFixed(0)} GFLOP/s`);
  console.log(`  attention is ${(100 * 4 * forwardFlops(target).attention / stepFlops(forwardFlops(target))).toFixed(0)}% of the step's FLOPs at ${target} tokens`);
  console.log(`  (load ${load()})`);
}
