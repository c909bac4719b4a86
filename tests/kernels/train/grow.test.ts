// Growing a trained transformer by identity blocks (kernels/train/grow.ts): the grown FLUX.2 and Wan
// models compute what the trained ones did, down to float rounding — and would not if the new blocks'
// outputs were left at their initial values — and mismatched architectures are refused by name.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { FLUX2_TINY, type FluxTransformerConfig } from '../../../kernels/flux/config';
import { fluxTransformer, jointPositions } from '../../../kernels/flux/transformer';
import { WAN_TINY, type WanTransformerConfig } from '../../../kernels/wan/config';
import { wanRope, wanTransformer } from '../../../kernels/wan/transformer';
import { ropeTables } from '../../../kernels/dit';
import { fluxGrowth, growBlocks, wanGrowth, type BlockGrowth } from '../../../kernels/train/grow';
import { rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());

type State = Record<string, K.HostTensor>;
const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

const FLUX_BASE: FluxTransformerConfig = { ...FLUX2_TINY, name: 'mini2', hiddenSize: 16, numHeads: 2, depthDouble: 1, depthSingle: 2, contextDim: 6, inChannels: 8, axesDim: [2, 2, 2, 2] };
const FLUX_GROWN: FluxTransformerConfig = { ...FLUX_BASE, depthDouble: 3, depthSingle: 3 };
const WAN_BASE: WanTransformerConfig = { ...WAN_TINY, name: 'mini', dim: 24, numHeads: 2, ffnDim: 32, numLayers: 1, inChannels: 5, outChannels: 2, textDim: 6, freqDim: 8 };
const WAN_GROWN: WanTransformerConfig = { ...WAN_BASE, numLayers: 3 };

function fluxGraph(cfg: FluxTransformerConfig, w: K.WeightSource) {
  const img = K.input('img', [2, 6, cfg.inChannels]), txt = K.input('txt', [2, 3, cfg.contextDim]), t = K.input('t', [2]);
  const y = fluxTransformer(new K.Builder(w), cfg, { img, txt, timesteps: t, rope: ropeTables(jointPositions(cfg, 3, 2, 3), cfg.axesDim, cfg.theta) });
  return { inputs: [img, txt, t], y };
}
const fluxFeeds = { img: f32([2, 6, 8], rand(96)), txt: f32([2, 3, 6], rand(36)), t: f32([2], Float32Array.of(0.3, 0.8)) };

function wanGraph(cfg: WanTransformerConfig, w: K.WeightSource) {
  const latents = K.input('x', [2, 2, 2, 2, 4]), condition = K.input('c', [2, 3, 2, 2, 4]), context = K.input('ctx', [2, 3, 6]), t = K.input('t', [2]);
  const y = wanTransformer(new K.Builder(w), cfg, { latents, condition, context, timesteps: t, rope: wanRope(cfg, [2, 1, 2]) });
  return { inputs: [latents, condition, context, t], y };
}
const wanFeeds = { x: f32([2, 2, 2, 2, 4], rand(64)), c: f32([2, 3, 2, 2, 4], rand(96)), ctx: f32([2, 3, 6], rand(36)), t: f32([2], Float32Array.of(0.2, 0.9)) };

/** Random weights of a model (every tensor non-zero, so a kept block matters). */
function weightsOf(graph: (w: K.WeightSource) => unknown, seed: number): State {
  const w = new K.RandomWeights(seed, 0.4);
  graph(w);
  return Object.fromEntries(w.tensors);
}

async function run(graph: { inputs: K.Tensor[]; y: K.Tensor }, feeds: Record<string, K.HostTensor>): Promise<Float32Array> {
  const s = await runtime().load(K.compileGraph(graph.inputs, { y: graph.y }));
  return (await s.run(feeds)).y.data as Float32Array;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('growBlocks', () => {
  const cases = [
    { name: 'FLUX.2 (double and single blocks)', base: FLUX_BASE, grown: FLUX_GROWN, graph: fluxGraph, feeds: fluxFeeds, growth: fluxGrowth('', 1, 2) },
    { name: 'Wan I2V (blocks with cross-attention)', base: WAN_BASE, grown: WAN_GROWN, graph: wanGraph, feeds: wanFeeds, growth: wanGrowth('', 1) },
  ] as const;
  for (const c of cases) {
    it(`${c.name}: the grown model computes what the trained one did; without zeroed outputs it would not`, async () => {
      const graph = c.graph as (cfg: typeof c.base, w: K.WeightSource) => { inputs: K.Tensor[]; y: K.Tensor };
      const trained = weightsOf((w) => graph(c.base, w), 7);
      const fresh = weightsOf((w) => graph(c.grown, w), 8);
      const grown = growBlocks(trained, fresh, c.growth as readonly BlockGrowth[]);
      expect(Object.keys(grown).length).toBeGreaterThan(Object.keys(trained).length);
      for (const [k, v] of Object.entries(trained)) expect(grown[k], k).toBe(v);
      const before = await run(graph(c.base, new K.HostWeights(new Map(Object.entries(trained)))), c.feeds);
      const after = await run(graph(c.grown, new K.HostWeights(new Map(Object.entries(grown)))), c.feeds);
      expect(maxAbs(before)).toBeGreaterThan(1e-2);
      expect(maxDiff(before, after)).toBeLessThan(1e-5 * Math.max(1, maxAbs(before)));
      // The same growth with nothing zeroed: the new blocks change the output.
      const unzeroed = growBlocks(trained, fresh, (c.growth as readonly BlockGrowth[]).map((g) => ({ ...g, outputs: [] })));
      const changed = await run(graph(c.grown, new K.HostWeights(new Map(Object.entries(unzeroed)))), c.feeds);
      expect(maxDiff(before, changed)).toBeGreaterThan(1e-2);
    });
  }

  it('refuses architectures that differ by more than depth, naming the tensor', () => {
    const trained = weightsOf((w) => fluxGraph(FLUX_BASE, w), 7);
    const wider = weightsOf((w) => fluxGraph({ ...FLUX_GROWN, hiddenSize: 32, numHeads: 4 }, w), 8);
    expect(() => growBlocks(trained, wider, fluxGrowth('', 1, 2))).toThrow(/grow: \S+\.weight is \[16,\d+\] in the trained model, \[32,\d+\] in the grown one/);
    const fresh = weightsOf((w) => fluxGraph(FLUX_GROWN, w), 8);
    expect(() => growBlocks({ ...trained, 'extra.weight': f32([1], Float32Array.of(1)) }, fresh, fluxGrowth('', 1, 2))).toThrow(/grow: the grown model has no extra\.weight/);
    // Claiming more trained blocks than the file has: block 1 is then neither trained nor new.
    expect(() => growBlocks(trained, fresh, fluxGrowth('', 2, 2))).toThrow(/grow: double_blocks\.1\.\S+ is neither trained nor part of a new block/);
  });
});
