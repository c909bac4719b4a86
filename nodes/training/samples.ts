// "Sample every N steps" for the Train node: renders the connected sampler settings with the current
// adapter weights and lays the images out as one grid.
import type { HostTensor } from '../../kernels';
import type { FamilyAdapters } from '../models/adapters';
import type { AdapterSpec, ClipValue, ModelValue, SamplerSettings, VaeValue } from '../sockets';

export type TrainingSampler = (step: number, weights: Record<string, HostTensor>, adapters: FamilyAdapters, throwIfInterrupted: () => void) => Promise<Uint8Array>;

export function trainingSampler(model: ModelValue, clip: ClipValue, vae: VaeValue, spec: AdapterSpec, settings: SamplerSettings): TrainingSampler {
  return async (step, weights, _adapters, throwIfInterrupted) => {
    const { renderSamples, gridPng } = await import('../sampling/render');
    const images = await renderSamples({ model, clip, vae, settings, adapter: { spec, weights, strength: settings.loraStrength }, throwIfInterrupted });
    return gridPng(images, { title: `step ${step}` });
  };
}
