// Deepening a trained transformer (progressive growing): the grown model keeps every trained tensor
// under its name and adds blocks that start as identities — fresh initial values, except the
// projections that write into the residual stream, which start at zero. The grown model then computes
// exactly what the trained one did, and training goes on from there with the extra depth instead of
// starting the larger model from noise (on this project's CPUs, hours saved per tiny model).
import type { HostTensor } from '../tensor';

type State = Record<string, HostTensor>;

export interface BlockGrowth {
  /** The blocks' names: `${stem}${index}.…` (e.g. `transformer/double_blocks.`). */
  stem: string;
  /** Blocks the trained model has (indices below are trained, at or above are new). */
  trained: number;
  /** What follows `${stem}${index}.` for the tensors that write into the residual stream (zeroed in new blocks). */
  outputs: readonly string[];
}

/**
 * The grown model's starting values: `fresh` holds initial values for every tensor of the grown
 * architecture; names the trained model has take its values (the shapes must agree), new blocks'
 * outputs are zero. Refuses a trained tensor the grown model lacks, and a new tensor that is not part
 * of a new block — either means the two architectures differ by more than depth.
 */
export function growBlocks(trainedWeights: State, fresh: State, growth: readonly BlockGrowth[]): State {
  const out: State = {};
  for (const [name, init] of Object.entries(fresh)) {
    const old = trainedWeights[name];
    if (old) {
      if (old.shape.join() !== init.shape.join()) throw new Error(`grow: ${name} is [${old.shape}] in the trained model, [${init.shape}] in the grown one`);
      out[name] = old;
      continue;
    }
    const g = growth.find((x) => name.startsWith(x.stem));
    const m = g && /^(\d+)\.(.+)$/.exec(name.slice(g.stem.length));
    if (!g || !m || Number(m[1]) < g.trained) throw new Error(`grow: ${name} is neither trained nor part of a new block`);
    out[name] = g.outputs.includes(m[2]) ? { dtype: 'float32', shape: [...init.shape], data: new Float32Array(init.data.length) } : init;
  }
  const dropped = Object.keys(trainedWeights).filter((k) => !(k in fresh));
  if (dropped.length) throw new Error(`grow: the grown model has no ${dropped.slice(0, 3).join(', ')}${dropped.length > 3 ? ` (and ${dropped.length - 3} more)` : ''}`);
  return out;
}

/** FLUX.1/FLUX.2 blocks: the double blocks' attention and MLP projections of both streams, the single blocks' linear2. */
export const fluxGrowth = (prefix: string, doubleBlocks: number, singleBlocks: number): BlockGrowth[] => [
  { stem: `${prefix}double_blocks.`, trained: doubleBlocks, outputs: ['img_attn.proj.weight', 'img_attn.proj.bias', 'img_mlp.2.weight', 'img_mlp.2.bias', 'txt_attn.proj.weight', 'txt_attn.proj.bias', 'txt_mlp.2.weight', 'txt_mlp.2.bias'] },
  { stem: `${prefix}single_blocks.`, trained: singleBlocks, outputs: ['linear2.weight', 'linear2.bias'] },
];

/** Wan blocks: self-attention's and cross-attention's output projections and the FFN's second linear. */
export const wanGrowth = (prefix: string, blocks: number): BlockGrowth[] => [
  { stem: `${prefix}blocks.`, trained: blocks, outputs: ['self_attn.o.weight', 'self_attn.o.bias', 'cross_attn.o.weight', 'cross_attn.o.bias', 'ffn.2.weight', 'ffn.2.bias'] },
];
