// LoRA training on the tiny klein-architecture model: the flow-matching loss falls on a fixed batch,
// and the trained LoRA written in every format (ai-toolkit, kohya, diffusers) and read back samples the
// same images as the adapter applied live in the graph.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { AdapterSet } from '../../../kernels/adapters/adapter-set';
import { FLUX2_TINY } from '../../../kernels/flux/config';
import { fluxTransformer, jointPositions } from '../../../kernels/flux/transformer';
import { buildFluxTrainGraph } from '../../../kernels/flux/training-graph';
import { FLUX_LORA_FORMATS, fluxKohyaName, fluxLoraDelta, fluxTargetSpec, readFluxLora, writeFluxLora } from '../../../kernels/flux/lora';
import { flux2Sigmas, sampleFlowEuler } from '../../../kernels/flux/sampling';
import { ropeTables } from '../../../kernels/dit';
import { Rng } from '../../../kernels/random';

const cfg = FLUX2_TINY;
const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());

const B = 2, ROWS = 4, COLS = 4, L = ROWS * COLS, T = 8;
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

describe('tiny FLUX.2 LoRA training', () => {
  it('loss falls on a fixed batch; every LoRA file format samples like the live adapter', async () => {
    const base = new K.RandomWeights(21, 0.05);
    const adapters = new AdapterSet({ rank: 4, alpha: 2, targets: fluxTargetSpec('ai_toolkit'), namer: fluxKohyaName });
    const g = buildFluxTrainGraph({ config: cfg, weights: base, adapters, batch: B, grid: [ROWS, COLS], textTokens: T });
    expect(adapters.modules).toHaveLength(cfg.depthDouble * 8 + cfg.depthSingle * 2);
    const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
    await ts.init(adapters.initialValues(5));
    const rng = new Rng(8);
    const batch = {
      latents: ht([B, L, 128], rng.fork('x0').fillNormal(new Float32Array(B * L * 128))),
      noise: ht([B, L, 128], rng.fork('noise').fillNormal(new Float32Array(B * L * 128))),
      sigmas: ht([B], Float32Array.from([0.35, 0.8])),
      text: ht([B, T, cfg.contextDim], rng.fork('text').fillNormal(new Float32Array(B * T * cfg.contextDim))),
    };
    const losses: number[] = [];
    for (let s = 1; s <= 40; s++) losses.push((await ts.step([batch], 2e-2, s)).loss);
    expect(losses[39]).toBeLessThan(losses[0] * 0.8);
    const trained = await ts.read(false);

    // Sample with the adapter live in the graph (strength 1) …
    const cond = rng.fork('cond').fillNormal(new Float32Array(T * cfg.contextDim));
    const uncond = new Float32Array(T * cfg.contextDim);
    const sampler = async (weights: K.WeightSource, set?: AdapterSet, values?: Record<string, K.HostTensor>) => {
      const img = K.input('img', [2, L, 128]), txt = K.input('txt', [2, T, cfg.contextDim]), t = K.input('t', [2]);
      const v = fluxTransformer(new K.Builder(weights, set?.hook({ training: false })), cfg, {
        img, txt, timesteps: t, rope: ropeTables(jointPositions(cfg, T, ROWS, COLS), cfg.axesDim, cfg.theta),
      });
      const extra = set ? [...Object.values(set.params), ...set.extraInputs] : [];
      const session = await rt.load(K.compileGraph([img, txt, t, ...extra], { v }));
      const fixed = set ? { ...values, ...AdapterSet.multiplierFeed(1) } : {};
      const text = new Float32Array(2 * T * cfg.contextDim);
      text.set(uncond); text.set(cond, T * cfg.contextDim);
      return sampleFlowEuler(async (x, tv) => (await session.run({
        ...fixed, img: ht([2, L, 128], x), txt: ht([2, T, cfg.contextDim], text), t: ht([2], Float32Array.from([tv, tv])),
      })).v.data as Float32Array, { sigmas: flux2Sigmas(4, L), guidance: { mode: 'cfg', scale: 4 }, seed: 3, perImage: L * 128 });
    };
    const live = await sampler(base, adapters, trained);
    const plain = await sampler(base);
    let change = 0;
    for (let i = 0; i < live.length; i++) change = Math.max(change, Math.abs(live[i] - plain[i]));
    expect(change).toBeGreaterThan(1e-3); // the LoRA does something

    // … and with each format's file merged into the base weights.
    const file = new Map(Object.entries(adapters.fileTensors(trained, 'F32')).map(([k, t]) => [k, ht([...t.shape], Float32Array.from(t.data as Float32Array))]));
    const modules = readFluxLora(cfg, file);
    for (const format of FLUX_LORA_FORMATS) {
      const loaded = readFluxLora(cfg, writeFluxLora(cfg, modules, format));
      const merged = new Map(base.tensors);
      for (const [module, m] of loaded) {
        const w = merged.get(`${module}.weight`)!;
        const d = fluxLoraDelta(m);
        merged.set(`${module}.weight`, ht(w.shape, (w.data as Float32Array).map((v, i) => v + d[i])));
      }
      const out = await sampler(new K.HostWeights(merged));
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - live[i]));
      expect(worst, format).toBeLessThan(1e-3);
    }
  }, 120_000);

  it('resumes exactly: 2 steps, save state, a fresh step graph loads it, 2 more = 4 steps straight', async () => {
    const base = new K.RandomWeights(22, 0.05);
    const rng = new Rng(12);
    const batchAt = (s: number) => ({
      latents: ht([1, L, 128], rng.fork(`x0-${s}`).fillNormal(new Float32Array(L * 128))),
      noise: ht([1, L, 128], rng.fork(`n-${s}`).fillNormal(new Float32Array(L * 128))),
      sigmas: ht([1], Float32Array.of(0.2 + 0.15 * s)),
      text: ht([1, T, cfg.contextDim], rng.fork(`t-${s}`).fillNormal(new Float32Array(T * cfg.contextDim))),
    });
    const make = async () => {
      const adapters = new AdapterSet({ rank: 2, targets: fluxTargetSpec('attention'), namer: fluxKohyaName });
      const g = buildFluxTrainGraph({ config: cfg, weights: base, adapters, batch: 1, grid: [ROWS, COLS], textTokens: T });
      const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw(), maxGradNorm: 1 });
      return { ts, adapters };
    };
    const straight = await make();
    await straight.ts.init(straight.adapters.initialValues(3));
    const lossesA: number[] = [];
    for (let s = 1; s <= 4; s++) lossesA.push((await straight.ts.step([batchAt(s)], 1e-2, s)).loss);
    const first = await make();
    await first.ts.init(first.adapters.initialValues(3));
    const lossesB: number[] = [];
    for (let s = 1; s <= 2; s++) lossesB.push((await first.ts.step([batchAt(s)], 1e-2, s)).loss);
    const saved = await first.ts.read(true);
    await first.ts.dispose();
    const second = await make();
    await second.ts.load(saved);
    for (let s = 3; s <= 4; s++) lossesB.push((await second.ts.step([batchAt(s)], 1e-2, s)).loss);
    expect(lossesB).toEqual(lossesA);
    const a = await straight.ts.read(true), b = await second.ts.read(true);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) expect(b[k].data, k).toEqual(a[k].data);
  }, 120_000);

  it('gradient checkpointing (blocks recomputed in the backward pass) trains exactly as keeping activations', async () => {
    const base = new K.RandomWeights(23, 0.05);
    const rng = new Rng(13);
    const batch = {
      latents: ht([1, L, 128], rng.fork('x0').fillNormal(new Float32Array(L * 128))),
      noise: ht([1, L, 128], rng.fork('n').fillNormal(new Float32Array(L * 128))),
      sigmas: ht([1], Float32Array.of(0.6)),
      text: ht([1, T, cfg.contextDim], rng.fork('t').fillNormal(new Float32Array(T * cfg.contextDim))),
    };
    const run = async (gradientCheckpointing: boolean) => {
      const adapters = new AdapterSet({ rank: 2, targets: fluxTargetSpec('ai_toolkit'), namer: fluxKohyaName });
      const g = buildFluxTrainGraph({ config: cfg, weights: base, adapters, batch: 1, grid: [ROWS, COLS], textTokens: T, gradientCheckpointing });
      const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw() });
      await ts.init(adapters.initialValues(4));
      const losses = [];
      for (let s = 1; s <= 3; s++) losses.push((await ts.step([batch], 1e-2, s)).loss);
      const out = { losses, weights: await ts.read(false), nodes: ts.graphs.fused?.nodeCount ?? 0 };
      await ts.dispose();
      return out;
    };
    const kept = await run(false), recomputed = await run(true);
    expect(recomputed.nodes).toBeGreaterThan(kept.nodes); // the blocks really are rebuilt
    recomputed.losses.forEach((l, i) => expect(l).toBeCloseTo(kept.losses[i], 5));
    for (const k of Object.keys(kept.weights)) {
      const a = kept.weights[k].data as Float32Array, b = recomputed.weights[k].data as Float32Array;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(worst, k).toBeLessThan(1e-5);
    }
  }, 120_000);
});
