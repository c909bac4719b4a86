// bench:memory — how close the memory pre-flight's estimate (kernels/train/memory.ts) comes to the
// measured peak RSS of training steps of the tiny SD UNet (LoRA on attention, AdamW) for fp32, bf16, fp16,
// int8 and nf4 bases (narrowed or quantised weights in a scratch file, as the Load Model and Quantize
// nodes keep them), with and without
// gradient checkpointing, one configuration per child process. Prints estimate / measured per
// configuration and the worst relative error against the 15% target. (bench:sd15 prints the
// same ratio for the full-size SD 1.5 UNet.)
//
//   npm run bench:memory                    batch 4 at 16×16 latents, fp32/bf16/fp16/int8/nf4 × checkpointing off and on
//   options: --batch N, --latent N, --bases fp32,int8,nf4
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RandomWeights, Runtime, TrainStep, adamw, type HostTensor } from '../kernels';
import { Rng } from '../kernels/random';
import { tinyConfig } from '../kernels/sd/config';
import { sdAdapters } from '../kernels/sd/lora';
import { buildSdTrainGraph } from '../kernels/sd/training-graph';
import { QuantizedWeights } from '../kernels/quant/graph-weights';
import { WeightFile } from '../kernels/nn/weight-file';
import { PrecisionWeights } from '../kernels/nn/precision';
import type { QuantScheme } from '../kernels/quant';
import { peakRss } from './process-memory';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const batch = Number(arg('batch') ?? 4), latent = Number(arg('latent') ?? 16);

async function child(recompute: boolean, base: string) {
  const cfg = tinyConfig();
  const rt = new Runtime();
  const adapters = sdAdapters(cfg, { rank: 8, alpha: 8, targets: { preset: 'attention' }, trainTextEncoder: false });
  const file = base === 'fp32' ? undefined : new WeightFile(undefined, `tiny-${base}`);
  const weights = !file ? new RandomWeights(5)
    : base === 'bf16' || base === 'fp16' ? new PrecisionWeights(new RandomWeights(5), { precision: base, file })
    : new QuantizedWeights(new RandomWeights(5), { scheme: base as QuantScheme, file });
  const g = buildSdTrainGraph({ config: cfg, unetWeights: weights, adapters, batch, latentSize: [latent, latent], gradientCheckpointing: recompute });
  const ts = await TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, extraOutputs: g.extra, optimizer: adamw(), maxGradNorm: 1 });
  await ts.init(adapters.unet.initialValues(new Rng('memory-init')));
  const rng = new Rng('memory-data');
  const normal = (shape: number[]): HostTensor => ({ dtype: 'float32', shape, data: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))) });
  const lat = [batch, cfg.unet.inChannels, latent, latent];
  const feeds: Record<string, HostTensor> = {
    latents: normal(lat), noise: normal(lat), context: normal([batch, cfg.text.maxPositions, cfg.unet.crossAttentionDim]),
    timesteps: { dtype: 'int64', shape: [batch], data: BigInt64Array.from({ length: batch }, (_, i) => BigInt((100 + 150 * i) % 1000)) },
  };
  (globalThis as { gc?: () => void }).gc?.();
  writeFileSync('/proc/self/clear_refs', '5'); // VmHWM from here: the training steps
  for (let s = 1; s <= 3; s++) await ts.step([feeds], 1e-4, s);
  const measured = peakRss();
  const e = ts.memoryEstimate;
  console.log(`tiny UNet ${base}, batch ${batch}, ${latent}×${latent} latents, checkpointing ${recompute ? 'on ' : 'off'}: measured training peak ${mib(measured)}, `
    + `estimate ${mib(e.total)} (weights ${mib(e.weights)}, inputs ${mib(e.inputs)}, activations ${mib(e.activations)}, runtime ${mib(e.runtime)}); estimate/measured=${(e.total / measured).toFixed(3)}`);
  console.log(`RESULT ${JSON.stringify({ recompute, measured, estimate: e.total })}`);
  await ts.dispose();
  await rt.close();
  file?.remove();
}

const bases = (arg('bases') ?? 'fp32,bf16,fp16,int8,nf4').split(',');
if (arg('recompute')) await child(arg('recompute') === 'on', arg('base') ?? 'fp32');
else {
  const self = fileURLToPath(import.meta.url);
  let worst = 0, measuredAll = true;
  for (const [base, rc] of bases.flatMap((b) => [[b, 'off'], [b, 'on']])) {
    const r = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', self, '--recompute', rc, '--base', base, '--batch', String(batch), '--latent', String(latent)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = (r.stdout ?? '').split('\n');
    process.stdout.write(lines.filter((l) => !l.startsWith('RESULT ')).join('\n'));
    const res = lines.find((l) => l.startsWith('RESULT '));
    if (r.status !== 0 || !res) { console.error(`[${base}, checkpointing ${rc}] failed (exit ${r.status ?? r.signal})`); process.exitCode = 1; measuredAll = false; continue; }
    const { measured, estimate } = JSON.parse(res.slice(7));
    worst = Math.max(worst, Math.abs(estimate / measured - 1));
  }
  console.log(`tiny_preflight_estimate_worst_relative_error=${worst.toFixed(3)} (target ≤ 0.15) ${measuredAll && worst <= 0.15 ? 'PASS' : 'FAIL'}`);
}
