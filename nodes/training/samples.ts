// "Sample every N steps" for the Train node: renders the connected sampler settings with the current
// adapter weights and lays the images out as one grid (with where each image sits and what it shows).
import type { HostTensor } from '../../kernels';
import type { FamilyAdapters } from '../models/adapters';
import type { AdapterSpec, ClipValue, ModelValue, SamplerSettings, VaeValue } from '../sockets';
import type { SampleTile } from '../sampling/sheet';

export type TrainingSampler = (step: number, weights: Record<string, HostTensor>, adapters: FamilyAdapters, throwIfInterrupted: () => void) => Promise<{ png: Uint8Array; tiles: SampleTile[] }>;

export function trainingSampler(model: ModelValue, clip: ClipValue, vae: VaeValue, spec: AdapterSpec, settings: SamplerSettings): TrainingSampler {
  return async (step, weights, _adapters, throwIfInterrupted) => {
    const { renderSamples, gridSheet } = await import('../sampling/render');
    const images = await renderSamples({ model, clip, vae, settings, adapter: { spec, weights, strength: settings.loraStrength }, throwIfInterrupted });
    return gridSheet(images, { title: `step ${step}` });
  };
}
