// Reverse-mode autodiff over the symbolic graph. The backward graph is made of the same table ops,
// so it lowers to standard ONNX. Only paths from the requested parameters to the loss are visited.
import { Tensor, constant, arrayFor } from './tensor';
import { getOp } from './ops/table';
import { add, cast } from './ops/elementwise';
import { expand } from './ops/shape-and-reduce';

/** Tensors reachable from `roots` through op inputs, in topological order (inputs first). */
export function topoOrder(roots: Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<number>();
  // Iterative DFS: real model graphs are deep enough to overflow the JS stack.
  const stack: [Tensor, number][] = roots.map((r) => [r, 0]);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    if (i === 0 && seen.has(t.id)) { stack.pop(); continue; }
    const ins = t.source.kind === 'op' ? t.source.inputs : [];
    if (i < ins.length) {
      top[1]++;
      if (!seen.has(ins[i].id)) stack.push([ins[i], 0]);
    } else {
      stack.pop();
      if (!seen.has(t.id)) { seen.add(t.id); order.push(t); }
    }
  }
  return order;
}

/**
 * Gradients of a scalar `loss` w.r.t. each of `params` (or of any output, given `seed`, the gradient
 * flowing into it). A parameter the loss does not depend on gets zeros.
 */
export function grad(loss: Tensor, params: Tensor[], seed?: Tensor): Tensor[] {
  if (!seed && loss.size !== 1) throw new Error(`grad: loss must be a scalar, got [${loss.shape.join(',')}]`);
  const order = topoOrder([loss]);
  const wanted = new Set(params.map((p) => p.id));
  // A tensor needs a gradient when a wanted parameter lies upstream of it.
  const needs = new Set<number>();
  for (const t of order) {
    if (wanted.has(t.id)) needs.add(t.id);
    else if (t.source.kind === 'op' && t.source.inputs.some((x) => needs.has(x.id))) needs.add(t.id);
  }
  const grads = new Map<number, Tensor>();
  grads.set(loss.id, seed ?? expand(cast(constant(new Float32Array([1]), [], 'float32'), loss.dtype), loss.shape));
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t.id);
    if (!g || t.source.kind !== 'op' || !needs.has(t.id)) continue;
    const { op, inputs, attrs } = t.source;
    const def = getOp(op);
    if (!def.vjp) throw new Error(`op '${op}' has no gradient rule but lies on a path to a trained parameter`);
    const gs = def.vjp(g, inputs, t, attrs);
    inputs.forEach((x, k) => {
      const gx = gs[k];
      if (!gx || !needs.has(x.id)) return;
      const prev = grads.get(x.id);
      grads.set(x.id, prev ? add(prev, gx) : gx);
    });
  }
  return params.map((p) => grads.get(p.id) ?? constant(arrayFor(p.dtype, p.size), p.shape, p.dtype));
}
