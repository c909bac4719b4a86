// Two-expert (Wan 2.2 A14B) LoRAs through the nodes, on the built-in tiny Wan 2.2 I2V pair: Save LoRA
// writes `<name>_high_noise` and `<name>_low_noise` files in every format it offers, each holding its
// expert's weights and naming its expert and boundary; Load LoRA of either file brings both back as one
// two-expert TRAINING; the Sampler with lowNoiseModel renders each step with the LoRA of the expert
// owning its noise level (the same pixels from the TRAINING, the LORA_FILE and Load LoRA); without
// lowNoiseModel it warns and samples the high-noise expert throughout; one LoRA with lowNoiseModel is refused.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import saveLoraNode from '../../nodes/save-lora';
import loadLoraNode from '../../nodes/load-lora';
import loadModelNode from '../../nodes/load-model';
import { samplerNode } from '../../nodes/sampler';
import { readLoraFileFor } from '../../nodes/models/lora-file';
import { loadSafetensors } from '../../kernels/io/safetensors';
import type { HostTensor } from '../../kernels';
import type { ClipValue, ImagesValue, LoraFileValue, ModelValue, TrainingValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { adapterSpec, randomWeights, trainingValue } from './training-fixture';

const { ctx, warnings } = nodeContext(undefined, '9');
let high: { model: ModelValue; clip: ClipValue; vae: VaeValue };
let low: ModelValue;
let t: TrainingValue;
let hiW: Record<string, HostTensor>, loW: Record<string, HostTensor>;

const loadModel = async (checkpoint: string) => (await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint }), ctx })).outputs as { model: ModelValue; clip: ClipValue; vae: VaeValue };
const save = async (training: TrainingValue, w: Record<string, unknown>) => saveLoraNode.execute({ inputs: { training }, widgets: saveLoraNode.widgets.parse(w), ctx });
const loadLora = async (file: string, w: Record<string, unknown> = {}) => (await loadLoraNode.execute({ inputs: { model: high.model }, widgets: loadLoraNode.widgets.parse({ loraFile: `output/${relative(ctx.paths.output, file)}`, ...w }), ctx })).outputs.training as TrainingValue;
const sample = async (inputs: Record<string, unknown>) => {
  const r = await samplerNode.execute({ inputs: { ...high, ...inputs } as never, widgets: samplerNode.widgets.parse({ prompts: 'a red circle moving left on a blue background', seed: 3, steps: 3, cfg: 4, sampler: 'euler', numFrames: 5 }), ctx });
  return Buffer.concat((r.outputs.images as ImagesValue).images[0].video!.frames);
};

beforeAll(async () => {
  high = await loadModel('builtin:tiny-wan');
  low = (await loadModel('builtin:tiny-wan-low-noise')).model;
  const { spec } = await adapterSpec(ctx, { rank: 4, alpha: 4, targetPreset: 'attention' }, high.model);
  hiW = randomWeights(spec, high.model, 7, 0.5);
  loW = randomWeights(spec, low, 8, 0.5);
  const expert = (weights: Record<string, HostTensor>, optimizerSteps: number) => ({ weights, optimizerState: {}, optimizerSteps });
  t = trainingValue(spec, high.model, hiW, { experts: { high_noise: expert(hiW, 60), low_noise: expert(loW, 60) }, expertBoundary: 0.9 });
}, 120_000);

describe('two-expert LoRAs', () => {
  for (const format of ['ai-toolkit', 'kohya', 'diffusers'] as const) {
    it(`Save LoRA (${format}) writes <name>_high_noise and <name>_low_noise, each with its expert's weights, expert and boundary`, async () => {
      const r = await save(t, { name: `pair-${format}`, fileName: '{name}/{name}', format, dtype: 'fp32' });
      const v = r.outputs.loraFile as LoraFileValue;
      const dir = join(ctx.paths.output, `pair-${format}`);
      expect(v.experts).toEqual({ high_noise: join(dir, `pair-${format}_high_noise.safetensors`), low_noise: join(dir, `pair-${format}_low_noise.safetensors`) });
      expect(v.path).toBe(v.experts!.high_noise);
      expect(v.expertBoundary).toBe(0.9);
      expect(existsSync(join(dir, `pair-${format}.safetensors`))).toBe(false);
      for (const [expert, weights] of [['high_noise', hiW], ['low_noise', loW]] as const) {
        const file = v.experts![expert];
        const { metadata } = await loadSafetensors(file);
        expect(metadata.loragraph_expert).toBe(expert);
        expect(metadata.loragraph_expert_boundary).toBe('0.9');
        expect(metadata.loragraph_format).toBe(format);
        const back = await readLoraFileFor(file, high.model);
        expect(back.format).toBe(format);
        // Alpha = rank here, so folding it into the weights (ai-toolkit, diffusers) leaves them as they are.
        for (const [k, w] of Object.entries(weights)) {
          const got = back.weights[k]!.data as Float32Array, want = w.data as Float32Array;
          expect(Math.max(...got.map((x, i) => Math.abs(x - want[i]!))), `${expert} ${k}`).toBeLessThan(1e-6);
        }
      }
      expect(r.ui!.text![0]).toContain(`pair-${format}_high_noise.safetensors`);
      expect(r.ui!.text![1]).toContain(`pair-${format}_low_noise.safetensors`);
    }, 120_000);
  }

  it('Load LoRA of either expert\'s file brings both back as one two-expert TRAINING; pairExperts off loads the file alone', async () => {
    const v = (await save(t, { name: 'pair-load', fileName: '{name}', dtype: 'fp32' })).outputs.loraFile as LoraFileValue;
    for (const file of [v.experts!.high_noise, v.experts!.low_noise]) {
      const loaded = await loadLora(file);
      expect(Object.keys(loaded.experts!)).toEqual(['high_noise', 'low_noise']);
      expect(loaded.expertBoundary).toBe(0.9);
      expect(loaded.weights).toBe(loaded.experts!.high_noise.weights);
      for (const [k, w] of Object.entries(loW)) expect(loaded.experts!.low_noise.weights[k]!.data, k).toEqual(w.data);
      for (const [k, w] of Object.entries(hiW)) expect(loaded.experts!.high_noise.weights[k]!.data, k).toEqual(w.data);
    }
    const alone = await loadLora(v.experts!.low_noise, { pairExperts: false });
    expect(alone.experts).toBeUndefined();
    for (const [k, w] of Object.entries(loW)) expect(alone.weights[k]!.data, k).toEqual(w.data);
    expect(basename(v.path)).toBe('pair-load_high_noise.safetensors');
  }, 120_000);

  it('Sampler with lowNoiseModel runs each expert\'s steps with its own LoRA: same clip from TRAINING, LORA_FILE and Load LoRA', async () => {
    const both = await sample({ training: t, lowNoiseModel: low });
    // The low-noise expert's LoRA changes the clip: some steps are below the boundary.
    const otherLow = { ...t, experts: { ...t.experts!, low_noise: { ...t.experts!.low_noise, weights: randomWeights(t.adapter, low, 9, 0.5) } } };
    expect((await sample({ training: otherLow, lowNoiseModel: low })).equals(both)).toBe(false);
    // So does the high-noise expert's.
    const otherHigh = { ...t, experts: { ...t.experts!, high_noise: { ...t.experts!.high_noise, weights: randomWeights(t.adapter, high.model, 10, 0.5) } } };
    expect((await sample({ training: otherHigh, lowNoiseModel: low })).equals(both)).toBe(false);
    const v = (await save(t, { name: 'pair-sample', fileName: '{name}', dtype: 'fp32' })).outputs.loraFile as LoraFileValue;
    expect((await sample({ loraFile: v, lowNoiseModel: low })).equals(both)).toBe(true);
    expect((await sample({ training: await loadLora(v.path), lowNoiseModel: low })).equals(both)).toBe(true);
  }, 300_000);

  it('Sampler without lowNoiseModel warns and runs the high-noise expert throughout; one LoRA with lowNoiseModel is refused', async () => {
    const single = { ...t, experts: undefined, expertBoundary: undefined };
    const before = warnings.length;
    expect((await sample({ training: t })).equals(await sample({ training: single }))).toBe(true);
    expect(warnings.slice(before).join('\n')).toMatch(/lowNoiseModel is not connected/);
    await expect(sample({ training: single, lowNoiseModel: low })).rejects.toThrow(/lowNoiseModel: the adapter is one LoRA, not one per expert/);
    await expect(sample({ lowNoiseModel: high.model })).rejects.toThrow(/lowNoiseModel: the same model is connected/);
  }, 120_000);
});
