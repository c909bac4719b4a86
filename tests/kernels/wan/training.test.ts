// LoRA training on the tiny Wan-architecture model: the flow-matching loss falls on a fixed clip batch,
// and the trained LoRA, saved as kohya/musubi names and rewritten in every format (ai-toolkit,
// kohya, diffusers), merged into the base weights predicts what the live adapter predicts.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { AdapterSet } from '../../../kernels/adapters/adapter-set';
import { WAN_TINY } from '../../../kernels/wan/config';
import { wanRope, wanTransformer } from '../../../kernels/wan/transformer';
import { buildWanTrainGraph } from '../../../kernels/wan/training-graph';
import { readWanLora, wanKohyaName, wanTargetSpec, writeWanLora, WAN_LORA_FORMATS, type WanLoraModule } from '../../../kernels/wan/lora';
import { Rng } from '../../../kernels/random';

const cfg = WAN_TINY;
const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());

const B = 2, F = 3, H = 4, W = 4, T = 6;
const LAT = [B, cfg.outChannels, F, H, W];
const n = LAT.reduce((a, b) => a * b, 1);
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

function delta(m: WanLoraModule): Float32Array {
  const w = new Float32Array(m.outFeatures * m.inFeatures);
  for (let o = 0; o < m.outFeatures; o++) for (let r = 0; r < m.rank; r++) for (let i = 0; i < m.inFeatures; i++) w[o * m.inFeatures + i] += (m.up[o * m.rank + r] * m.down[r * m.inFeatures + i] * m.alpha) / m.rank;
  return w;
}

describe('tiny Wan LoRA training', () => {
  it('loss falls on a fixed clip batch; every LoRA file format predicts like the live adapter', async () => {
    const base = new K.RandomWeights(31, 0.05);
    const adapters = new AdapterSet({ rank: 4, alpha: 2, targets: wanTargetSpec('blocks'), namer: wanKohyaName });
    const g = buildWanTrainGraph({ config: cfg, weights: base, adapters, batch: B, latentSize: [F, H, W], textTokens: T, gradientCheckpointing: true });
    expect(adapters.modules).toHaveLength(cfg.numLayers * 10);
    const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
    await ts.init(adapters.initialValues(5));
    const rng = new Rng(8);
    const batch = {
      latents: ht(LAT, rng.fork('x0').fillNormal(new Float32Array(n))),
      noise: ht(LAT, rng.fork('noise').fillNormal(new Float32Array(n))),
      sigmas: ht([B], Float32Array.from([0.35, 0.9])),
      text: ht([B, T, cfg.textDim], rng.fork('text').fillNormal(new Float32Array(B * T * cfg.textDim))),
    };
    const losses: number[] = [];
    for (let s = 1; s <= 40; s++) losses.push((await ts.step([batch], 2e-2, s)).loss);
    expect(losses[39]).toBeLessThan(losses[0] * 0.8);
    const trained = await ts.read(false);

    // The velocity for one noisy clip, with the adapter live (strength 1) or with weights merged.
    const x = K.input('x', LAT), txt = K.input('txt', [B, T, cfg.textDim]), t = K.input('t', [B]);
    const feed = { x: batch.latents, txt: batch.text, t: batch.sigmas };
    const predict = async (weights: K.WeightSource, set?: AdapterSet) => {
      const v = wanTransformer(new K.Builder(weights, set?.hook({ training: false })), cfg, { latents: x, context: txt, timesteps: t, rope: wanRope(cfg, [F, H / 2, W / 2]) });
      const extra = set ? [...Object.values(set.params), ...set.extraInputs] : [];
      const s = await rt.load(K.compileGraph([x, txt, t, ...extra], { v }));
      return (await s.run({ ...feed, ...(set ? { ...trained, ...AdapterSet.multiplierFeed(1) } : {}) })).v.data as Float32Array;
    };
    const live = await predict(base, adapters);
    const plain = await predict(base);
    expect(Math.max(...live.map((v, i) => Math.abs(v - plain[i])))).toBeGreaterThan(1e-3); // the LoRA does something

    const file = new Map(Object.entries(adapters.fileTensors(trained, 'F32')).map(([k, v]) => [k, ht([...v.shape], Float32Array.from(v.data as Float32Array))]));
    expect(file.has('lora_unet_blocks_0_self_attn_q.lora_down.weight')).toBe(true);
    const modules = readWanLora(cfg, file);
    expect(modules.size).toBe(cfg.numLayers * 10);
    for (const format of WAN_LORA_FORMATS) {
      const loaded = readWanLora(cfg, writeWanLora(cfg, modules, format));
      const merged = new Map(base.tensors);
      for (const [module, m] of loaded) {
        const w = merged.get(`${module}.weight`)!;
        const d = delta(m);
        merged.set(`${module}.weight`, ht(w.shape, (w.data as Float32Array).map((v, i) => v + d[i])));
      }
      const out = await predict(new K.HostWeights(merged));
      expect(Math.max(...out.map((v, i) => Math.abs(v - live[i]))), format).toBeLessThan(1e-4);
    }
  }, 120_000);
});
