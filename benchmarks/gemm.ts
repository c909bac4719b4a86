// The GEMM probe the block benchmarks (bench:flux, bench:wan) print beside their GFLOP/s: a chain of four
// 2048³ fp32 matmuls through the same engine and thread count (LORAGRAPH_THREADS) as the blocks, so a
// block's GFLOP/s reads as a fraction of what this machine reaches on plain matmuls in the same run.
// The scripts run it in its own child process, as each block, so its memory and threads are not shared.
import * as K from '../kernels';

/** Side of the square matmuls; the printed label ("GEMM 2048³") names it. */
export const GEMM_N = 2048;

/** Deterministic values in [−0.5, 0.5]: the probe's matrices and the block benchmarks' inputs. */
export const noise = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);

/** Best of three timed runs (after one warm-up) of the matmul chain, in GFLOP/s. */
export async function gemm(): Promise<number> {
  const rt = new K.Runtime({ threads: Number(process.env.LORAGRAPH_THREADS ?? 0) });
  const n = GEMM_N, chain = 4;
  const x = K.input('x', [n, n]);
  let y = x;
  // Weights scaled by 1/32 keep the chained products in a normal float range.
  for (let i = 0; i < chain; i++) y = K.matmul(y, K.constant(noise(n * n, i + 1).map((v) => v / 32), [n, n]));
  const s = await rt.load(K.compileGraph([x], { y }));
  const feed: Record<string, K.HostTensor> = { x: { dtype: 'float32', shape: [n, n], data: noise(n * n, 9) } };
  await s.run(feed);
  let best = Infinity;
  for (let i = 0; i < 3; i++) { const t = performance.now(); await s.run(feed); best = Math.min(best, (performance.now() - t) / 1000); }
  await rt.close();
  return (2 * n * n * n * chain) / best / 1e9;
}
