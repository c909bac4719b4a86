// Reverse-mode autodiff over the symbolic graph. The backward graph is made of the same table ops,
// so it lowers to standard ONNX. Only paths from the requested parameters to the loss are visited.
// Blocks built under `recompute` (gradient checkpointing) keep only what flows into them: their
// backward pass rebuilds the block's forward from those saved values, once the gradient reaches it.
import { Tensor, constant, arrayFor, apply, nextTensorId } from './tensor';
import { getOp } from './ops/table';
import { add, cast } from './ops/elementwise';
import { after, expand } from './ops/shape-and-reduce';

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

// --- recomputation ---------------------------------------------------------------------------------
// A block is the id range of the tensors its body created: ids grow with creation and an op's inputs
// exist before it, so a block's inside is exactly [start, end) and everything outside it that the
// block reads (its input activations, weights, adapter parameters) was made before `start`.
interface Block { start: number; end: number }
const blockOfOutput = new WeakMap<Tensor, Block>();
let recomputeDepth = 0;

/**
 * Builds `body` as a recomputed block (gradient checkpointing): the forward pass runs it as usual, but
 * the backward pass does not keep its inner activations. When the gradient reaches the block's
 * outputs, `grad` rebuilds the block from the tensors it read (the "saved inputs") and
 * differentiates the rebuilt copy. The copy reads every outside value through `after` (gated on the arriving gradient), so
 * ORT can neither schedule it before the backward pass nor merge it back into the forward pass
 * (tests/kernels/recompute.test.ts counts the nodes of the optimised model). Frozen weights that the
 * block dequantises or casts are rebuilt with it: only one block's worth is materialised at a time.
 * Blocks nested in a block are part of the outer one.
 */
export function recompute<T extends Tensor | Tensor[]>(body: () => T): T {
  if (recomputeDepth > 0) return body();
  const start = nextTensorId();
  recomputeDepth++;
  let out: T;
  try { out = body(); } finally { recomputeDepth--; }
  const block: Block = { start, end: nextTensorId() };
  for (const t of Array.isArray(out) ? out : [out]) if (t.id >= start && t.id < block.end) blockOfOutput.set(t, block);
  return out;
}

/**
 * Gradients of a scalar `loss` w.r.t. each of `params` (or of any output, given `seed`, the gradient
 * flowing into it). A parameter the loss does not depend on gets zeros.
 */
export function grad(loss: Tensor, params: Tensor[], seed?: Tensor): Tensor[] {
  if (!seed && loss.size !== 1) throw new Error(`grad: loss must be a scalar, got [${loss.shape.join(',')}]`);
  // Creation order is a topological order (see Block); it keeps each block's inside contiguous.
  const order = topoOrder([loss]).sort((a, b) => a.id - b.id);
  const wanted = new Set(params.map((p) => p.id));
  const needs = needsGradient(order, (t) => wanted.has(t.id));
  const blocks = blocksIn(order);
  const grads = new Map<number, Tensor>();
  grads.set(loss.id, seed ?? expand(cast(constant(new Float32Array([1]), [], 'float32'), loss.dtype), loss.shape));
  let b = blocks.length - 1;
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    while (b >= 0 && blocks[b].block.start > t.id) b--;
    const inside = b >= 0 && t.id < blocks[b].block.end;
    if (!inside) { backpropOne(t, grads, needs, true); continue; }
    // The whole block is differentiated at once, at its last tensor; its other tensors are skipped.
    const { block, members } = blocks[b];
    if (t !== members[members.length - 1]) continue;
    backpropBlock(members, block, grads, needs, wanted);
  }
  return params.map((p) => grads.get(p.id) ?? constant(arrayFor(p.dtype, p.size), p.shape, p.dtype));
}

/** Whether a gradient can flow from op tensor t into one of its inputs that is in `needs`. */
function reaches(t: Tensor, needs: Set<number>): boolean {
  if (t.source.kind !== 'op') return false;
  const fixed = getOp(t.source.op).constantInputs;
  return t.source.inputs.some((x, k) => needs.has(x.id) && !fixed?.includes(k));
}

/** Ids of the tensors in `order` (topological) downstream of a tensor `isLeaf` accepts. */
function needsGradient(order: Tensor[], isLeaf: (t: Tensor) => boolean): Set<number> {
  const needs = new Set<number>();
  for (const t of order) if (isLeaf(t) || reaches(t, needs)) needs.add(t.id);
  return needs;
}

/**
 * The recomputed blocks (Builder.block under gradient checkpointing) that `roots` reach, in creation
 * order, each with its tensors (ops, and the constants and inputs made inside it) in creation order.
 * Layer offloading (kernels/train/offload.ts) runs each one as its own session.
 */
export function recomputedBlocks(roots: Tensor[]): { start: number; end: number; members: Tensor[] }[] {
  return blocksIn(topoOrder(roots).sort((a, b) => a.id - b.id)).map(({ block, members }) => ({ start: block.start, end: block.end, members }));
}

/** The recomputed blocks whose outputs `order` reaches, by start, each with its tensors in `order`. */
function blocksIn(order: Tensor[]): { block: Block; members: Tensor[] }[] {
  const found = new Set<Block>();
  for (const t of order) { const bl = blockOfOutput.get(t); if (bl) found.add(bl); }
  const blocks = [...found].sort((x, y) => x.start - y.start).map((block) => ({ block, members: [] as Tensor[] }));
  let k = 0;
  for (const t of order) {
    while (k < blocks.length && blocks[k].block.end <= t.id) k++;
    if (k < blocks.length && t.id >= blocks[k].block.start) blocks[k].members.push(t);
  }
  return blocks;
}

/**
 * Sends t's gradient (if any) to its inputs through the op's VJP, adding into `grads`. `rebuildWeights`:
 * frozen weights made at run time (dequantised, or cast from bf16/fp16) are made again for the VJP.
 */
function backpropOne(t: Tensor, grads: Map<number, Tensor>, needs: Set<number>, rebuildWeights = false) {
  const g = grads.get(t.id);
  if (!g || t.source.kind !== 'op' || !needs.has(t.id)) return;
  const { op, inputs, attrs } = t.source;
  const def = getOp(op);
  if (!def.vjp) throw new Error(`op '${op}' has no gradient rule but lies on a path to a trained parameter`);
  const ins = rebuildWeights ? inputs.map((x) => (needs.has(x.id) ? x : rebuiltWeight(x, g) ?? x)) : inputs;
  const gs = def.vjp(g, ins, t, attrs);
  inputs.forEach((x, k) => {
    const gx = gs[k];
    if (!gx || !needs.has(x.id)) return;
    const prev = grads.get(x.id);
    grads.set(x.id, prev ? add(prev, gx) : gx);
  });
}

// A frozen weight stored packed or in half precision reaches its layer as a small subgraph on constants
// read through after(stored, layer input) (kernels/quant/dequant.ts, kernels/nn/precision.ts). The
// backward pass (dX = g·W) would keep the forward's float32 copy of every such weight alive from the
// forward to the backward: all of them at once, a float32 base's worth. Instead the VJP reads a copy
// of the subgraph gated on the arriving gradient, so one layer's float32 weight exists at a time;
// within recomputed blocks the rebuilt block already does this.
const MAX_WEIGHT_OPS = 64;

/** x's subgraph rebuilt with every after(·, dep) gated on `g` instead; undefined when x is not such a weight. */
function rebuiltWeight(x: Tensor, g: Tensor): Tensor | undefined {
  const ops: Tensor[] = [];
  let gated = false;
  // Collect the weight's ops: each op's inputs are constants or other weight ops (an after's dep aside).
  const visit = (t: Tensor): boolean => {
    if (t.source.kind === 'const') return true;
    if (t.source.kind !== 'op' || ops.length >= MAX_WEIGHT_OPS) return false;
    if (ops.includes(t)) return true;
    const { op, inputs } = t.source;
    if (op === 'after') gated = true;
    if (!(op === 'after' ? visit(inputs[0]) : inputs.every(visit))) return false;
    ops.push(t);
    return true;
  };
  if (!visit(x) || !gated) return undefined;
  const copies = new Map<number, Tensor>();
  for (const t of ops) {
    const src = t.source as Extract<Tensor['source'], { kind: 'op' }>;
    const ins = src.op === 'after' ? [copies.get(src.inputs[0].id) ?? src.inputs[0], g] : src.inputs.map((i) => copies.get(i.id) ?? i);
    copies.set(t.id, apply(src.op, ins, src.attrs));
  }
  return copies.get(x.id);
}

/**
 * Differentiates one recomputed block: rebuilds its ops from the values it read (each read gated on
 * the gradient arriving at the block), runs the VJPs over the rebuilt copy, and adds the gradients of
 * the outside values into `grads`. The forward copy's inner tensors are never used by the backward.
 */
function backpropBlock(members: Tensor[], block: Block, grads: Map<number, Tensor>, needs: Set<number>, wanted: Set<number>) {
  const outGrads = members.filter((t) => grads.has(t.id) && needs.has(t.id));
  if (!outGrads.length) return;
  const arrived = grads.get(outGrads[0].id)!;
  const inside = (t: Tensor) => t.id >= block.start && t.id < block.end && t.source.kind === 'op';
  const copies = new Map<number, Tensor>();
  // Outside value → its gated stand-in; the stand-in's gradient is the outside value's.
  const gated = new Map<number, { outside: Tensor; stand: Tensor }>();
  const gate = (x: Tensor) => {
    let e = gated.get(x.id);
    if (!e) gated.set(x.id, (e = { outside: x, stand: after(x, arrived) }));
    return e.stand;
  };
  const rebuilt: Tensor[] = [];
  for (const t of members) {
    if (!inside(t)) continue;
    const src = t.source as Extract<Tensor['source'], { kind: 'op' }>;
    let ins = src.inputs.map((x) => copies.get(x.id) ?? x);
    // An op reading only outside values would be identical to its forward twin (and merged with it):
    // gate one outside value, preferring a computed one over a constant so weights stay initializers.
    if (!src.inputs.some((x) => copies.has(x.id))) {
      const k = Math.max(0, src.inputs.findIndex((x) => x.source.kind !== 'const'));
      ins = ins.map((x, j) => (j === k ? gate(x) : x));
    }
    const c = apply(src.op, ins, src.attrs);
    copies.set(t.id, c);
    rebuilt.push(c);
  }
  const stands = [...gated.values()].filter((e) => needs.has(e.outside.id));
  const rebuiltIds = new Set(rebuilt.map((t) => t.id));
  // Leaves of the local pass: gated stand-ins, and outside values read directly, that need gradients.
  const direct = new Map<number, Tensor>();
  const localNeeds = new Set<number>(stands.map((e) => e.stand.id));
  for (const t of rebuilt) {
    const fixed = getOp((t.source as { op: string }).op).constantInputs;
    (t.source as { inputs: Tensor[] }).inputs.forEach((x, k) => {
      if (!fixed?.includes(k) && !rebuiltIds.has(x.id) && !localNeeds.has(x.id) && needs.has(x.id)) { direct.set(x.id, x); localNeeds.add(x.id); }
    });
    if (reaches(t, localNeeds)) localNeeds.add(t.id);
  }
  const local = new Map<number, Tensor>();
  for (const t of outGrads) local.set(copies.get(t.id)!.id, grads.get(t.id)!);
  for (let i = rebuilt.length - 1; i >= 0; i--) backpropOne(rebuilt[i], local, localNeeds);
  const leaves: [Tensor, Tensor | undefined][] = [...stands.map((e) => [e.outside, local.get(e.stand.id)] as [Tensor, Tensor | undefined]), ...[...direct.values()].map((x) => [x, local.get(x.id)] as [Tensor, Tensor | undefined])];
  // The gradients of the parameters read in the block (LoRA down/up) need the rebuilt activations; the
  // gradient leaving the block waits for them (gated), so every scheduler computes them before the
  // earlier blocks' backward and the rebuilt block dies at once. Left to a depth-first order they ran
  // last, keeping every block's rebuilt layer inputs alive together (SD 1.5 at 256²: 2.3× less activation
  // memory instead of 3×, measured by bench:sd15).
  const paramGrads = leaves.filter(([x, g]) => g && wanted.has(x.id)).map(([, g]) => g!);
  const addTo = (x: Tensor, g: Tensor | undefined) => {
    if (!g) return;
    if (!wanted.has(x.id)) for (const pg of paramGrads) g = after(g, pg);
    const prev = grads.get(x.id);
    grads.set(x.id, prev ? add(prev, g) : g);
  };
  for (const [x, g] of leaves) addTo(x, g);
}
