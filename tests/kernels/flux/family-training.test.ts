// The tiny klein trains through the families' generic pieces (kernels/families: familyAdapters,
// buildTrainGraph) exactly as the Train node drives any family: cached text conditioning, flow
// objective with the timestep in thousandths, LoRA on ai-toolkit's targets; and with the text encoder's
// LoRA too, from token ids.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { familyAdapters } from '../../../kernels/families/adapters';
import { buildTrainGraph } from '../../../kernels/families/training-graph';
import { flux2Family, tinyFlux2Config } from '../../../kernels/flux/family';
import { fluxTargetSpec } from '../../../kernels/flux/lora';
import { Rng } from '../../../kernels/random';

const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

describe('FLUX.2 through the generic training graph', () => {
  it('LoRA on the transformer (cached text) and on Qwen3 (token ids) lowers the flow loss', async () => {
    const c = tinyFlux2Config();
    const w = new K.RandomWeights(31, 0.05);
    for (const trainText of [false, true]) {
      // ai-toolkit's transformer targets, plus Qwen3's q and v projections when the text encoder trains.
      const targets = { preset: 'all_linear' as const, include: [...fluxTargetSpec('ai_toolkit').include!, '*self_attn.q_proj', '*self_attn.v_proj'] };
      const adapters = familyAdapters(flux2Family, c, { rank: 4, targets, trainTextEncoder: trainText });
      expect(adapters.denoiser.modules).toHaveLength(c.transformer.depthDouble * 8 + c.transformer.depthSingle * 2);
      expect(adapters.denoiser.modules[0].name).toMatch(/^lora_unet_double_blocks_0_/);
      if (trainText) expect(adapters.text[0].modules.map((m) => m.name).slice(0, 2)).toEqual(['lora_te1_model_layers_0_self_attn_q_proj', 'lora_te1_model_layers_0_self_attn_v_proj']);
      const g = buildTrainGraph({ family: flux2Family, config: c, denoiserWeights: w, textWeights: trainText ? [w] : undefined, adapters, batch: 2, latentSize: [4, 4] });
      expect(g.timestepDtype).toBe('float32');
      expect(g.textInput).toBe(trainText ? 'ids' : 'cond');
      const ts = await K.TrainStep.create(rt, { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw({ weightDecay: 0 }), maxGradNorm: 1 });
      const init = { ...adapters.denoiser.initialValues(1), ...(trainText ? adapters.text[0].initialValues(2) : {}) };
      await ts.init(init);
      const rng = new Rng(4);
      const feed: Record<string, K.HostTensor> = {
        latents: ht([2, 128, 4, 4], rng.fork('x').fillNormal(new Float32Array(2 * 128 * 16))),
        noise: ht([2, 128, 4, 4], rng.fork('n').fillNormal(new Float32Array(2 * 128 * 16))),
        timesteps: ht([2], Float32Array.of(0.3, 0.75)),
      };
      if (trainText) feed.ids = { dtype: 'int64', shape: [2, c.text.maxLength], data: BigInt64Array.from({ length: 2 * c.text.maxLength }, (_, i) => BigInt(i % c.text.maxLength < 10 ? (i * 7) % 250 : c.padId)) };
      else feed.context = ht([2, c.text.maxLength, c.transformer.contextDim], rng.fork('c').fillNormal(new Float32Array(2 * c.text.maxLength * c.transformer.contextDim)));
      const losses: number[] = [];
      for (let s = 1; s <= 25; s++) losses.push((await ts.step([feed], 2e-2, s)).loss);
      expect(losses[24], `train text: ${trainText}`).toBeLessThan(losses[0] * 0.85);
      await ts.dispose();
    }
  }, 240_000);
});
