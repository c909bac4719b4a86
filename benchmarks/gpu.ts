// bench:gpu — LoRA training steps on a GPU: SD 1.5 at 512², SDXL at 1024² and one FLUX.2 [klein]
// 9B-size transformer block, each with random frozen weights (nothing to download), gradient
// checkpointing on and AdamW on rank-16 LoRA. Runs on the CUDA EP when the CUDA build of
// onnxruntime-node is installed, else on the WebGPU EP (any vendor). Prints per model: s/step, peak
// device memory (CUDA: nvidia-smi, polled), FLOP/step (matmuls and convolutions, counted from the graph),
// achieved TFLOP/s and its share of the GPU's peak.
//
//   npm run bench:gpu                       every model on the best GPU EP
//   npm run bench:gpu -- --models sd15      one model (sd15, sdxl, klein9b-block)
//   options: --ep cuda|webgpu|cpu, --steps N (timed steps after one warm-up, default 3),
//            --quick (tiny sizes: checks the script itself on any machine, CPU included),
//            LORAGRAPH_GPU_PEAK_TFLOPS=… (the peak to compare with, if the GPU is not in the table)
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Builder, RandomWeights, Runtime, TrainStep, adamw, input, matmul, reduceMean, mul, sub, transpose, reshape, softmax, add, silu, split, concat, layerNorm, constant, grad, type AdapterHook, type ExecutionProvider, type HostTensor, type Tensor } from '../kernels';
import { Rng } from '../kernels/random';
import { SD15, tinyConfig } from '../kernels/sd/config';
import { unet } from '../kernels/sd/unet';
import { SDXL_BASE, tinySdxlConfig, sdxlUnet } from '../kernels/sdxl';
import { graphFlops } from '../kernels/train/flops';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const quick = process.argv.includes('--quick');
const steps = Number(arg('steps') ?? (quick ? 1 : 3));
const RANK = 16;

/** The EP to use: --ep, else CUDA when its provider library is present, else WebGPU. */
function chooseEp(): ExecutionProvider {
  const asked = arg('ep');
  if (asked) return asked as ExecutionProvider;
  const ort = createRequire(import.meta.url)('onnxruntime-node');
  const backends: { name: string }[] = ort.listSupportedBackends?.() ?? [];
  return backends.some((b) => b.name === 'cuda') ? 'cuda' : 'webgpu';
}

/** Peak FLOP/s of known GPUs (dense; fp32 through TF32 tensor cores, as ORT's CUDA EP uses by default). */
const PEAK_TFLOPS: [RegExp, number][] = [[/H200|H100.*SXM|GH200/i, 495], [/H100/i, 378], [/A100/i, 156], [/L40S/i, 183], [/L4\b/i, 60], [/4090/i, 82.6], [/3090/i, 35.6], [/A10\b/i, 62.5], [/T4\b/i, 8.1]];

function gpuInfo(): { name: string; peakTflops?: number } {
  const env = Number(process.env.LORAGRAPH_GPU_PEAK_TFLOPS);
  const r = spawnSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8' });
  const name = r.status === 0 ? r.stdout.trim().split('\n')[0] : 'unknown GPU (no nvidia-smi)';
  return { name, peakTflops: env > 0 ? env : PEAK_TFLOPS.find(([re]) => re.test(name))?.[1] };
}

/** Polls nvidia-smi's used memory while a model runs; `stop` returns the peak in bytes (undefined without nvidia-smi). */
function watchDeviceMemory() {
  let peak: number | undefined;
  const p = spawn('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-lms', '200'], { stdio: ['ignore', 'pipe', 'ignore'] });
  p.on('error', () => { /* no nvidia-smi: peak stays unknown */ });
  p.stdout?.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) { const mib = Number(line.trim().split('\n')[0]); if (line.trim() && Number.isFinite(mib)) peak = Math.max(peak ?? 0, mib * 2 ** 20); }
  });
  return { stop: () => { p.kill(); return peak; } };
}

/** LoRA (down random, up zero) on the linear layers whose module path matches `targets`. */
function lora(targets: RegExp) {
  const params: Record<string, Tensor> = {};
  const init: Record<string, HostTensor> = {};
  const rng = new Rng('bench-gpu-lora');
  const hook: AdapterHook = (info, x) => {
    if (info.kind !== 'linear' || !targets.test(info.module)) return undefined;
    const down = input(`${info.module}.lora_down`, [RANK, info.inFeatures]);
    const up = input(`${info.module}.lora_up`, [info.outFeatures, RANK]);
    params[`${info.module}.lora_down`] = down;
    params[`${info.module}.lora_up`] = up;
    init[`${info.module}.lora_down`] = { dtype: 'float32', shape: [RANK, info.inFeatures], data: rng.fillNormal(new Float32Array(RANK * info.inFeatures), 0, 1 / info.inFeatures) };
    init[`${info.module}.lora_up`] = { dtype: 'float32', shape: [info.outFeatures, RANK], data: new Float32Array(info.outFeatures * RANK) };
    return matmul(matmul(x, transpose(down)), transpose(up));
  };
  return { hook, params, init };
}

interface Workload { name: string; inputs: Tensor[]; feeds: Record<string, HostTensor>; loss: Tensor; params: Record<string, Tensor>; init: Record<string, HostTensor> }

const normal = (rng: Rng, shape: number[]): HostTensor => ({ dtype: 'float32', shape, data: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))) });
const mse = (a: Tensor, b: Tensor) => reduceMean(mul(sub(a, b), sub(a, b)));

function sd15(): Workload {
  const cfg = quick ? tinyConfig() : SD15;
  const side = quick ? 8 : 64; // 512² px
  const { hook, params, init } = lora(/attn\d\.to_(q|k|v|out\.0)$/);
  const b = new Builder(new RandomWeights(1), hook);
  b.gradientCheckpointing = true;
  const sample = input('sample', [1, 4, side, side]);
  const context = input('context', [1, 77, cfg.unet.crossAttentionDim]);
  const target = input('target', [1, 4, side, side]);
  const pred = unet(b, cfg.unet, { sample, timestep: constant([500], [1]), context });
  const rng = new Rng('sd15');
  return { name: `SD 1.5 UNet, ${side * 8}² px`, inputs: [sample, context, target], loss: mse(pred, target), params, init,
    feeds: { sample: normal(rng, [1, 4, side, side]), context: normal(rng, [1, 77, cfg.unet.crossAttentionDim]), target: normal(rng, [1, 4, side, side]) } };
}

function sdxl(): Workload {
  const cfg = quick ? tinySdxlConfig() : SDXL_BASE;
  const side = quick ? 8 : 128; // 1024² px
  const { hook, params, init } = lora(/attn\d\.to_(q|k|v|out\.0)$/);
  const b = new Builder(new RandomWeights(2), hook);
  b.gradientCheckpointing = true;
  const ctxDim = cfg.unet.crossAttentionDim;
  const pooledDim = cfg.textG.projectionDim;
  const sample = input('sample', [1, 4, side, side]);
  const context = input('context', [1, 77, ctxDim]);
  const pooled = input('pooled', [1, pooledDim]);
  const timeIds = input('time_ids', [1, 6]);
  const target = input('target', [1, 4, side, side]);
  const pred = sdxlUnet(b, cfg, { sample, timestep: constant([500], [1]), context, pooled, timeIds });
  const rng = new Rng('sdxl');
  return { name: `SDXL UNet, ${side * 8}² px`, inputs: [sample, context, pooled, timeIds, target], loss: mse(pred, target), params, init,
    feeds: { sample: normal(rng, [1, 4, side, side]), context: normal(rng, [1, 77, ctxDim]), pooled: normal(rng, [1, pooledDim]),
      time_ids: { dtype: 'float32', shape: [1, 6], data: new Float32Array([side * 8, side * 8, 0, 0, side * 8, side * 8]) }, target: normal(rng, [1, 4, side, side]) } };
}

/**
 * One single-stream transformer block at FLUX.2 [klein] 9B's width (hidden 4096, 32 heads, SwiGLU MLP
 * ratio 3) over 4096 image + 512 text tokens (1024² px): joint attention and MLP in parallel, as FLUX
 * single blocks are; RoPE and the modulation are left out (little compute).
 */
function klein9bBlock(): Workload {
  const hidden = quick ? 64 : 4096, heads = quick ? 4 : 32, mlp = hidden * 3, tokens = quick ? 32 : 4096 + 512;
  const { hook, params, init } = lora(/linear[12]$/);
  const b = new Builder(new RandomWeights(3), hook);
  b.gradientCheckpointing = true;
  const x = input('x', [1, tokens, hidden]);
  const target = input('target', [1, tokens, hidden]);
  const ln = constant(new Float32Array(hidden).fill(1), [hidden]);
  const zero = constant(new Float32Array(hidden), [hidden]);
  const y = b.block(() => {
    const h = layerNorm(x, ln, zero, 1e-6);
    const [q, k, v, gate, value] = split(b.linear('linear1', h, hidden, 3 * hidden + 2 * mlp, false), [hidden, hidden, hidden, mlp, mlp], -1);
    const perHead = (t: Tensor) => transpose(reshape(t, [1, tokens, heads, hidden / heads]), [0, 2, 1, 3]);
    const attn = matmul(softmax(matmul(mul(perHead(q), 1 / Math.sqrt(hidden / heads)), transpose(perHead(k), [0, 1, 3, 2])), -1), perHead(v));
    const merged = reshape(transpose(attn, [0, 2, 1, 3]), [1, tokens, hidden]);
    return add(x, b.linear('linear2', concat([merged, mul(silu(gate), value)], -1), hidden + mlp, hidden, false));
  });
  const rng = new Rng('klein');
  return { name: `FLUX.2 [klein] 9B-size single block, ${tokens} tokens`, inputs: [x, target], loss: mse(y, target), params, init,
    feeds: { x: normal(rng, [1, tokens, hidden]), target: normal(rng, [1, tokens, hidden]) } };
}

const MODELS: Record<string, () => Workload> = { sd15, sdxl, 'klein9b-block': klein9bBlock };

async function main() {
  const ep = chooseEp();
  const gpu = gpuInfo();
  console.log(`bench:gpu on ${ep} — ${gpu.name}${gpu.peakTflops ? `, peak ${gpu.peakTflops} TFLOP/s (fp32 via TF32)` : ''}${quick ? ' (--quick: tiny sizes)' : ''}`);
  const names = arg('models')?.split(',') ?? Object.keys(MODELS);
  for (const n of names) {
    if (!MODELS[n]) throw new Error(`--models: unknown model '${n}' (expected ${Object.keys(MODELS).join(', ')})`);
    const rt = new Runtime({ ep });
    const watch = watchDeviceMemory();
    try {
      let t0 = performance.now();
      const w = MODELS[n]();
      // Forward + backward FLOPs, counted on the same loss and gradients the step compiles.
      const flops = graphFlops([w.loss, ...grad(w.loss, Object.values(w.params))]);
      const ts = await TrainStep.create(rt, { inputs: w.inputs, params: w.params, loss: w.loss, optimizer: adamw(), maxGradNorm: 1, memoryLimitBytes: 0 });
      await ts.init(w.init);
      console.log(`[${n}] ${w.name}: built and loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${(flops / 1e12).toPrecision(3)} TFLOP per step (recomputed blocks included)`);
      await ts.step([w.feeds], 1e-4, 1);
      const times: number[] = [];
      for (let i = 0; i < steps; i++) {
        t0 = performance.now();
        await ts.step([w.feeds], 1e-4, 2 + i);
        times.push((performance.now() - t0) / 1000);
      }
      const s = times.reduce((a, b) => a + b, 0) / times.length;
      const peak = watch.stop();
      const tflops = flops / s / 1e12;
      console.log(`${n}: ${s.toFixed(3)} s/step, peak device memory ${peak === undefined ? 'n/a' : `${(peak / 2 ** 30).toFixed(2)} GiB`}, `
        + `${tflops.toPrecision(3)} TFLOP/s${gpu.peakTflops ? `, ${(100 * tflops / gpu.peakTflops).toFixed(1)}% of peak` : ''}`);
      await ts.dispose();
    } finally {
      watch.stop();
      await rt.close();
    }
  }
}

await main();
