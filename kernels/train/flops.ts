// Floating-point operations of a symbolic graph, counted from the shapes of its matrix products and
// convolutions (2 per multiply-add; elementwise work is left out, as GPU peak figures are quoted for
// matrix units). Used by bench:gpu to report achieved TFLOP/s against the device's peak.
import type { Tensor } from '../tensor';
import { topoOrder } from '../autodiff';

/** Multiply-add FLOPs of the matmuls, linears and convolutions needed for `outputs`. */
export function graphFlops(outputs: Tensor[]): number {
  let flops = 0;
  for (const t of topoOrder(outputs)) {
    const src = t.source;
    if (src.kind !== 'op') continue;
    const [a, b] = src.inputs;
    switch (src.op) {
      case 'matmul': // out [..., M, N], inner K
        flops += 2 * t.size * a.shape[a.rank - 1];
        break;
      case 'linear': // out [..., out], inner in
        flops += 2 * t.size * b.shape[1];
        break;
      case 'conv2d': // out [N, Cout, Ho, Wo], each a dot over Cin/groups × kh × kw
        flops += 2 * t.size * b.shape[1] * b.shape[2] * b.shape[3];
        break;
      case 'chunkedAttention': { // q kᵀ and p v over all chunks: [..., L, D]·[..., S, D] and [..., L, S]·[..., S, Dv]
        const [q, k] = src.inputs;
        const s = k.shape[k.rank - 2];
        flops += 2 * q.size * s + 2 * t.size * s;
        break;
      }
      case 'conv2dInputGrad': { // a transposed conv: each output-gradient value spreads over the kernel
        const w = b;
        flops += 2 * a.size * w.shape[1] * w.shape[2] * w.shape[3];
        break;
      }
    }
  }
  return flops;
}
