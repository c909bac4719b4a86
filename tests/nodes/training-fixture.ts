// What the Train node would hand on, made directly: a loaded random-weight tiny model, an adapter spec
// from the LoRA Target node, and a TRAINING value with seeded non-zero weights (so the adapter changes
// the images), for Sampler / Save LoRA / Load LoRA tests.
import type { HostTensor } from '../../kernels';
import { Rng } from '../../kernels/random';
import loadModelNode from '../../nodes/load-model';
import loraTargetNode from '../../nodes/lora-target';
import { adapterSetsFor, setList } from '../../nodes/models/adapters';
import { tensorBytes, type AdapterSpec, type ClipValue, type ModelValue, type TrainingValue, type VaeValue } from '../../nodes/sockets';
import type { NodeContext } from '../../nodes/define';
import { writeTinyCheckpoint } from './tiny-model';

export async function loadTiny(ctx: NodeContext): Promise<{ model: ModelValue; clip: ClipValue; vae: VaeValue }> {
  const name = await writeTinyCheckpoint(ctx.paths.models);
  const r = await loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: name }), ctx });
  return r.outputs as { model: ModelValue; clip: ClipValue; vae: VaeValue };
}

export async function adapterSpec(ctx: NodeContext, widgets: Record<string, unknown>, model?: ModelValue) {
  const r = await loraTargetNode.execute({ inputs: { model }, widgets: loraTargetNode.widgets.parse(widgets), ctx });
  return { spec: r.outputs.adapter as AdapterSpec, ui: r.ui! };
}

/** Seeded normal weights of `scale` for every parameter (up included, unlike a fresh init). */
export function randomWeights(spec: AdapterSpec, model: ModelValue, seed = 7, scale = 0.3): Record<string, HostTensor> {
  const rng = new Rng(seed);
  const out: Record<string, HostTensor> = {};
  for (const set of setList(adapterSetsFor(spec, model))) {
    for (const p of set.paramSpecs) {
      const data = rng.fork(p.key).fillNormal(new Float32Array(p.shape.reduce((a, b) => a * b, 1)));
      for (let i = 0; i < data.length; i++) data[i] *= scale;
      out[p.key] = { dtype: 'float32', shape: [...p.shape], data };
    }
  }
  return out;
}

export function trainingValue(spec: AdapterSpec, model: ModelValue, weights: Record<string, HostTensor>, extra: Partial<TrainingValue> = {}): TrainingValue {
  return {
    kind: 'training', id: 'test-run', step: 120, adapter: spec, base: model.source, weights,
    optimizerState: {}, optimizerName: 'AdamW', optimizerSteps: 120, rng: {}, lossHistory: [{ step: 1, loss: 0.5 }, { step: 2, loss: 0.4 }],
    metadata: { ss_learning_rate: '0.0001', ss_seed: '42', ss_resolution: '(64, 64)', ss_tag_frequency: JSON.stringify({ star: { star: 16 } }) },
    byteSize: () => tensorBytes(weights),
    ...extra,
  };
}
