// Which values ONNX Runtime computes once when it loads a model: constants, and ops that read only such
// values — its constant folding — except DequantizeLinear, which it leaves to run time. The memory
// pre-flight counts these as weights, and a convolution's input gradient flips only such weights.
import type { Tensor } from '../tensor';

// Tensors never change once made, so the answer is kept for the life of each tensor.
const memo = new WeakMap<Tensor, boolean>();

/** Whether ORT computes `t` once at load. Iterative: a run-time value's ancestry is the whole network. */
export function foldedAtLoad(t: Tensor): boolean {
  const stack = [t];
  while (stack.length) {
    const x = stack[stack.length - 1];
    if (memo.has(x)) { stack.pop(); continue; }
    const src = x.source;
    if (src.kind !== 'op' || src.op === 'dequantizeLinear') { memo.set(x, src.kind === 'const'); stack.pop(); continue; }
    const pending = src.inputs.filter((i) => !memo.has(i));
    if (pending.length) { stack.push(...pending); continue; }
    memo.set(x, src.inputs.every((i) => memo.get(i)));
    stack.pop();
  }
  return memo.get(t)!;
}
