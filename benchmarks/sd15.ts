// bench:sd15 — one LoRA training step on a full-size SD 1.5 UNet loaded from a single-file checkpoint
// (random weights written to a temporary folder), plus the embedded tiny model's step at batch 16.
// Prints seconds per step and peak memory. Base weights in fp32; quantised bases come later.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Builder, RandomWeights, Runtime, TrainStep, adamw, compileGraph, grad, input, reduceMean, square, sub,
  type HostTensor, type Tensor, type WeightSource,
} from '../kernels';
import { AdapterSet } from '../kernels/adapters';
import { SD15, tinyConfig, type SdConfig } from '../kernels/sd/config';
import { unet } from '../kernels/sd/unet';
import { saveSingleFile } from '../kernels/sd/save';
import { loadSd } from '../kernels/sd/load';

const peakRssGiB = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 2 ** 20 : process.memoryUsage().rss / 2 ** 30;
};
const secs = (t0: number) => (performance.now() - t0) / 1000;
const fixed = (shape: number[], seed: number): HostTensor => ({
  dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.731 + seed)),
});

/** The denoising loss of a UNet with LoRA on its attention projections; returns graph pieces. */
function loraLoss(cfg: SdConfig, weights: WeightSource, batch: number, latent: number, rank: number) {
  const adapters = new AdapterSet({ rank, alpha: rank, targets: { preset: 'attention' } });
  const x = input('noisy', [batch, cfg.unet.inChannels, latent, latent]);
  const t = input('timestep', [batch]);
  const ctx = input('context', [batch, cfg.text.maxPositions, cfg.unet.crossAttentionDim]);
  const target = input('target', [batch, cfg.unet.outChannels, latent, latent]);
  const pred = unet(new Builder(weights, adapters.hook()), cfg.unet, { sample: x, timestep: t, context: ctx });
  const loss = reduceMean(square(sub(pred, target)));
  const feeds = {
    noisy: fixed([batch, cfg.unet.inChannels, latent, latent], 1), timestep: { dtype: 'float32' as const, shape: [batch], data: new Float32Array(batch).fill(500) },
    context: fixed([batch, cfg.text.maxPositions, cfg.unet.crossAttentionDim], 2), target: fixed([batch, cfg.unet.outChannels, latent, latent], 3),
  };
  return { adapters, inputs: [x, t, ctx, target, ...adapters.extraInputs], loss, feeds };
}

async function tinyStep(rt: Runtime) {
  const cfg = tinyConfig(1024);
  const { adapters, inputs, loss, feeds } = loraLoss(cfg, new RandomWeights(1), 16, 16, 8);
  const ts = await TrainStep.create(rt, { inputs, params: adapters.params, loss, optimizer: adamw(), maxGradNorm: 1 });
  await ts.init(adapters.initialValues(1));
  await ts.step([feeds], 1e-4, 1);
  const n = 5;
  const t0 = performance.now();
  for (let s = 2; s < 2 + n; s++) await ts.step([feeds], 1e-4, s);
  console.log(`tiny UNet (${(cfg.unet.blockOutChannels).join('/')}) LoRA rank 8 train step, batch 16, 64×64 px (16×16 latents): ${(secs(t0) / n).toFixed(3)} s/step`);
  await ts.dispose();
}

/**
 * A fused forward/backward/AdamW step compiled with external data. TrainStep compiles without an
 * external-data folder, which a >2 GB fp32 base needs, so the benchmark builds the same graph here.
 */
async function externalTrainStep(rt: Runtime, dir: string, inputs: Tensor[], params: Record<string, Tensor>, loss: Tensor) {
  const opt = adamw();
  const names = Object.keys(params);
  const lr = input('lr', [], 'float32'), step = input('step', [], 'float32');
  const state: Record<string, Record<string, Tensor>> = {};
  for (const n of names) state[n] = Object.fromEntries(Object.entries(opt.state(params[n].shape)).map(([k, s]) => [k, input(`${n}:${k}`, s.shape)]));
  const grads = grad(loss, names.map((n) => params[n]));
  const outs: Record<string, Tensor> = { loss };
  names.forEach((n, i) => {
    const r = opt.update(params[n], grads[i], state[n], { lr, step });
    outs[`new:${n}`] = r.param;
    for (const [k, v] of Object.entries(r.state)) outs[`new:${n}:${k}`] = v;
  });
  const stateInputs = names.flatMap((n) => Object.values(state[n]));
  const t0 = performance.now();
  const graph = compileGraph([...inputs, ...names.map((n) => params[n]), ...stateInputs, lr, step], outs, { name: 'sd15_lora_step', externalDir: dir });
  console.log(`  compiled train graph: ${graph.nodeCount} nodes, ${(graph.bytes.length / 2 ** 20).toFixed(1)} MiB protobuf, ${(graph.initializerBytes / 2 ** 30).toFixed(2)} GiB initializers (external), ${secs(t0).toFixed(1)} s`);
  const t1 = performance.now();
  const session = await rt.load(graph);
  console.log(`  ORT session created in ${secs(t1).toFixed(1)} s`);
  const slot = (k: string) => `bench/${k}`;
  const store: Record<string, string> = {};
  for (const n of names) { store[`new:${n}`] = slot(n); for (const k of Object.keys(state[n])) store[`new:${n}:${k}`] = slot(`${n}:${k}`); }
  return {
    async init(values: Record<string, HostTensor>) {
      const put: Record<string, HostTensor> = {};
      for (const n of names) {
        put[slot(n)] = values[n];
        for (const k of Object.keys(state[n])) put[slot(`${n}:${k}`)] = { dtype: 'float32', shape: [...params[n].shape], data: new Float32Array(params[n].size) };
      }
      await rt.put(put);
    },
    async step(feeds: Record<string, HostTensor>, s: number) {
      const f: Record<string, any> = { ...feeds, lr: { dtype: 'float32', shape: [], data: new Float32Array([1e-4]) }, step: { dtype: 'float32', shape: [], data: new Float32Array([s]) } };
      for (const n of names) { f[n] = { slot: slot(n) }; for (const k of Object.keys(state[n])) f[`${n}:${k}`] = { slot: slot(`${n}:${k}`) }; }
      const out = await session.run(f, { fetch: ['loss'], store });
      return out.loss.data[0] as number;
    },
  };
}

async function fullStep(rt: Runtime) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-sd15-'));
  try {
    const file = join(dir, 'sd15-random.safetensors');
    let t0 = performance.now();
    // Uniform noise with std 0.02 (norm scales 1): a fast stand-in for trained weights.
    let s = 12345;
    await saveSingleFile(file, SD15, (_c, name, shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      if (/norm.*\.weight$/.test(name)) return out.fill(1);
      const a = 0.02 * Math.sqrt(3) * 2 / 2 ** 32;
      for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s * a - 0.02 * Math.sqrt(3); }
      return out;
    }, { dtype: 'F32' });
    console.log(`SD 1.5 single file (UNet + text encoder + VAE, fp32 random weights) written in ${secs(t0).toFixed(1)} s`);
    t0 = performance.now();
    const model = await loadSd(file, { external: true });
    console.log(`  loaded and checked (${model.family}, ${model.dtypes.join('/')}) in ${secs(t0).toFixed(1)} s`);
    t0 = performance.now();
    const { adapters, inputs, loss, feeds } = loraLoss(SD15, model.unet, 1, 32, 16);
    console.log(`  graph built in ${secs(t0).toFixed(1)} s: LoRA rank 16 on ${adapters.modules.length} attention projections, ${(adapters.trainableCount / 1e6).toFixed(2)}M trainable`);
    const ts = await externalTrainStep(rt, join(dir, 'model'), inputs, adapters.params, loss);
    await ts.init(adapters.initialValues(1));
    t0 = performance.now();
    const first = await ts.step(feeds, 1);
    console.log(`  first step (includes ORT warm-up): ${secs(t0).toFixed(2)} s, loss ${first.toFixed(4)}`);
    const n = 3;
    t0 = performance.now();
    for (let i = 2; i < 2 + n; i++) await ts.step(feeds, i);
    console.log(`SD 1.5 UNet LoRA rank 16 train step, batch 1, 256×256 px (32×32 latents), fp32 base: ${(secs(t0) / n).toFixed(2)} s/step, peak RSS ${peakRssGiB().toFixed(2)} GiB`);
    console.log('  quantised bases (int8, 4-bit, fp8): not measured yet');
    model.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const rt = new Runtime();
await tinyStep(rt);
if (!process.argv.includes('--tiny-only')) await fullStep(rt);
await rt.close();
