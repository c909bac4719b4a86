// "Sample every N steps" for the Train node: renders the connected sampler settings with the current
// adapter weights and lays the images out as one grid (with where each image sits and what it shows).
// A multistage run (two experts) renders through both experts, each step by the expert owning its noise
// level with that expert's current LoRA.
import type { HostTensor } from '../../kernels';
import type { FamilyAdapters } from '../models/adapters';
import type { AdapterSpec, ClipValue, ModelValue, SamplerSettings, VaeValue } from '../sockets';
import type { SampleTile } from '../sampling/sheet';
import type { SheetVideo } from '../sampling/render';
import type { ExpertSample } from './trainer';
import { checkEndImage, isImageToVideo, requireStartImage } from '../sampling/start-image';
import { checkSamplerChoice, checkSchedulerChoice } from '../sampling/sampler-choice';

/** The grid PNG of the samples and its tiles; for video models also the animated grid of the clips. */
export type TrainingSampler = (step: number, weights: Record<string, HostTensor>, adapters: FamilyAdapters, throwIfInterrupted: () => void, experts?: ExpertSample) => Promise<{ png: Uint8Array; tiles: SampleTile[]; video?: SheetVideo }>;

export function trainingSampler(model: ModelValue, clip: ClipValue, vae: VaeValue, spec: AdapterSpec, settings: SamplerSettings): TrainingSampler {
  // An image-to-video model samples from a first frame: refused before the first step, not at the first sample.
  if (!settings.startImage && isImageToVideo(model)) requireStartImage(model);
  checkEndImage(model, !!settings.endImage);
  // A sampler the family does not offer: refused here too, not at the first sample hundreds of steps in.
  checkSamplerChoice(model, settings.sampler);
  checkSchedulerChoice(model, settings.sampler, settings.scheduler);
  return async (step, weights, _adapters, throwIfInterrupted, experts) => {
    const { renderSamples, gridSheet } = await import('../sampling/render');
    const strength = settings.loraStrength;
    const [high, low] = experts?.experts ?? [];
    const images = await renderSamples(experts ? {
      model: high.model, clip, vae, settings, adapter: { spec, weights: high.weights, strength },
      lowNoise: { model: low.model, adapter: { spec, weights: low.weights, strength }, boundary: experts.boundary }, throwIfInterrupted,
      // Between samples only the expert in training stays loaded.
      releaseAfter: true,
    } : { model, clip, vae, settings, adapter: { spec, weights, strength }, throwIfInterrupted });
    return gridSheet(images, { title: `step ${step}` });
  };
}
