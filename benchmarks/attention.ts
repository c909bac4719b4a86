// npm run bench:attention — peak memory and time of attention's forward + backward, plain against
// memory-efficient (query-chunked, kernels/ops/nn.ts `chunkedAttention`), each in its own child
// process so each peak RSS is its own. Default: 16 heads × 4096 tokens × 64 (a 1 GiB fp32 score matrix
// per copy), chunks of 512 queries; prints peak RSS above the process baseline, seconds, the ratios,
// and the engine's pre-flight estimate beside each measurement.
//
//   npm run bench:attention      (under flock /tmp/loragraph-heavy.lock)
//   options: --heads N --tokens N --dim N --chunk N --steps N
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as K from '../kernels';
import { estimateGraphMemory } from '../kernels/train/memory';
import { peakRss } from './process-memory';

const opt = (name: string, dflt: number) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? Number(process.argv[i + 1]) : dflt; };
const H = opt('heads', 16), L = opt('tokens', 4096), D = opt('dim', 64), CHUNK = opt('chunk', 512), STEPS = opt('steps', 2);
const gib = (b: number) => (b / 2 ** 30).toFixed(2);
const noise = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);

/** q, k, v in; their gradients of mean(attn²) out (the backward pass of a block's attention). */
function build(chunk: number) {
  const [q, k, v] = ['q', 'k', 'v'].map((n) => K.input(n, [1, H, L, D]));
  const y = K.scaledDotProductAttention(q, k, v, chunk ? { chunk } : {});
  const grads = K.grad(K.reduceMean(K.square(y)), [q, k, v]);
  return { inputs: [q, k, v], outputs: { gq: grads[0], gk: grads[1], gv: grads[2] } };
}

async function measure(chunk: number) {
  const rt = new K.Runtime({ threads: Number(process.env.LORAGRAPH_THREADS ?? 0) });
  const { inputs, outputs } = build(chunk);
  const est = estimateGraphMemory(Object.values(outputs));
  const s = await rt.load(K.compileGraph(inputs, outputs));
  const feed = Object.fromEntries(['q', 'k', 'v'].map((n, i) => [n, { dtype: 'float32' as const, shape: [1, H, L, D], data: noise(H * L * D, i) }]));
  const base = peakRss();
  let best = Infinity;
  for (let i = 0; i < STEPS; i++) { const t = performance.now(); await s.run(feed); best = Math.min(best, (performance.now() - t) / 1000); }
  await rt.close();
  return { chunk, best, peak: peakRss(), base, estimate: est.activations + est.inputs };
}

const mode = process.argv[2];
if (mode === 'one') console.log(JSON.stringify(await measure(Number(process.argv[3]))));
else {
  const self = fileURLToPath(import.meta.url);
  const child = (chunk: number) => {
    const r = spawnSync(process.execPath, [...process.execArgv, self, 'one', String(chunk), ...process.argv.slice(2)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`bench:attention chunk ${chunk} failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`bench:attention — fwd + bwd (dq, dk, dv) of ${H} heads × ${L} tokens × ${D}, fp32, CPU; one [H, L, L] score copy = ${gib(H * L * L * 4)} GiB (load ${load()})`);
  const [plain, chunked] = [child(0), child(CHUNK)];
  for (const r of [plain, chunked]) {
    const name = r.chunk ? `chunked (${r.chunk} queries)` : 'plain             ';
    console.log(`  ${name}: ${r.best.toFixed(2)} s, peak RSS ${gib(r.peak)} GiB (${gib(r.peak - r.base)} GiB above the loaded session; estimated activations + inputs ${gib(r.estimate)} GiB)`);
  }
  console.log(`  chunked / plain: peak ${(chunked.peak / plain.peak).toFixed(2)}×, time ${(chunked.best / plain.best).toFixed(2)}×   (load ${load()})`);
}
