// npm run bench:engine — the engine's speed relative to the machine's plain GEMM through ORT, measured
// in one run: GEMM GFLOP/s, then a LoRA train step (forward + backward + AdamW) over a stack of
// 1024-wide frozen linear layers with rank-16 adapters, and a small conv-net train step.
import * as K from '../kernels';

const threads = Number(process.env.LORAGRAPH_THREADS ?? 0);
const rt = new K.Runtime({ threads, ep: (process.env.LORAGRAPH_EP as K.ExecutionProvider) ?? 'cpu' });
const rand = (n: number, scale: number, seed: number) => {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return ((s >>> 0) / 2 ** 32 - 0.5) * 2 * scale; });
};
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

async function timeIt(fn: () => Promise<unknown>, minMs = 1500, warmup = 1) {
  for (let i = 0; i < warmup; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs || n < 3) { await fn(); n++; }
  return (performance.now() - t0) / n;
}

// 1. Plain GEMM: a chain of 1024³ matmuls in one graph, so per-run overhead is amortised.
async function gemm(): Promise<() => Promise<number>> {
  const n = 1024, chain = 4;
  const x = K.input('x', [n, n]);
  let y = x;
  for (let i = 0; i < chain; i++) y = K.matmul(y, K.constant(rand(n * n, 1 / 32, i + 1), [n, n]));
  const s = await rt.load(K.compileGraph([x], { y }));
  const feed = { x: ht([n, n], rand(n * n, 1, 9)) };
  return async () => (2 * n * n * n * chain) / ((await timeIt(() => s.run(feed))) / 1000) / 1e9;
}

// 2. LoRA stack: frozen 1024×1024 layers, rank-16 adapters trained with AdamW.
async function loraStack(): Promise<() => Promise<number>> {
  const tokens = 1024, width = 1024, layers = 4, rank = 16;
  const x = K.input('x', [tokens, width]);
  const params: Record<string, K.Tensor> = {};
  const init: Record<string, K.HostTensor> = {};
  let h = x;
  for (let l = 0; l < layers; l++) {
    const w = K.constant(rand(width * width, 1 / 32, 100 + l), [width, width], 'float32', `layer${l}.weight`);
    const down = K.input(`layer${l}.lora_down`, [rank, width]);
    const up = K.input(`layer${l}.lora_up`, [width, rank]);
    params[`layer${l}.lora_down`] = down;
    params[`layer${l}.lora_up`] = up;
    init[`layer${l}.lora_down`] = ht([rank, width], rand(rank * width, 1 / 32, 200 + l));
    init[`layer${l}.lora_up`] = ht([width, rank], rand(width * rank, 1 / 64, 300 + l));
    const base = K.linear(h, w);
    h = K.gelu(K.add(base, K.mul(K.linear(K.linear(h, down), up), 1)), 'tanh');
  }
  const loss = K.reduceMean(K.square(h));
  const ts = await K.TrainStep.create(rt, { inputs: [x], params, loss, optimizer: K.adamw() });
  await ts.init(init);
  const feed = [{ x: ht([tokens, width], rand(tokens * width, 1, 7)) }];
  let step = 1;
  // Useful FLOPs: forward base + LoRA, backward dX through base and LoRA, and dA/dB (no dW for frozen base).
  const perLayer = 2 * tokens * width * width * 2 + 2 * tokens * rank * (width + width) * 3;
  return async () => (perLayer * layers) / ((await timeIt(() => ts.step(feed, 1e-4, step++))) / 1000) / 1e9;
}

// 3. Small conv net: 3×3 convs at 64 channels on 32×32, all weights trained with AdamW.
async function convNet(): Promise<() => Promise<number>> {
  const batch = 16, ch = 64, hw = 32, layers = 3;
  const x = K.input('x', [batch, ch, hw, hw]);
  const params: Record<string, K.Tensor> = {};
  const init: Record<string, K.HostTensor> = {};
  let h = x;
  for (let l = 0; l < layers; l++) {
    const w = K.input(`conv${l}.weight`, [ch, ch, 3, 3]);
    params[`conv${l}.weight`] = w;
    init[`conv${l}.weight`] = ht([ch, ch, 3, 3], rand(ch * ch * 9, 1 / 24, 400 + l));
    h = K.silu(K.conv2d(h, w, undefined, { padding: 1 }));
  }
  const loss = K.reduceMean(K.square(h));
  const ts = await K.TrainStep.create(rt, { inputs: [x], params, loss, optimizer: K.adamw() });
  await ts.init(init);
  const feed = [{ x: ht([batch, ch, hw, hw], rand(batch * ch * hw * hw, 1, 8)) }];
  let step = 1;
  // forward + dX + dW, each 2·N·Cout·Cin·9·H·W (the first layer's dX is not needed but is counted as done).
  const flops = 3 * layers * 2 * batch * ch * ch * 9 * hw * hw;
  return async () => flops / ((await timeIt(() => ts.step(feed, 1e-4, step++))) / 1000) / 1e9;
}

// Rounds interleave the three measurements and each keeps its best, so a busy machine (other processes
// taking a core for a while) biases none of them against the others.
const runners = { gemm: await gemm(), conv: await convNet(), lora: await loraStack() };
const best = { gemm: 0, conv: 0, lora: 0 };
const rounds = Number(process.env.ROUNDS ?? 3);
for (let r = 0; r < rounds; r++) {
  for (const k of ['gemm', 'conv', 'lora'] as const) best[k] = Math.max(best[k], await runners[k]());
}
console.log(`load average ${(await import('node:os')).loadavg().map((v) => v.toFixed(2)).join(' ')}; best of ${rounds} interleaved rounds`);
console.log(`gemm_gflops=${best.gemm.toFixed(1)}`);
console.log(`conv_train_step_gflops=${best.conv.toFixed(1)} conv_train_step_vs_gemm=${(best.conv / best.gemm).toFixed(3)}`);
console.log(`lora_train_step_gflops=${best.lora.toFixed(1)}`);
console.log(`train_step_vs_gemm=${(best.lora / best.gemm).toFixed(3)}`);
await rt.close();
