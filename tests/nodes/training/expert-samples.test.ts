// Previews of a two-expert (multistage) state: each sampler step runs the expert owning its noise level
// with that expert's LoRA. Proved on two random tiny models: boundary 0 (no step below it) renders
// exactly what the high-noise expert alone renders, boundary 1 (every step below it) exactly the
// low-noise expert alone, one in between neither; and the low-noise expert's LoRA changes the image only when
// some step is the low-noise expert's.
import { describe, it, expect } from 'vitest';
import { renderSamples } from '../../../nodes/sampling/render';
import { defaultRuntime } from '../../../kernels';
import type { AdapterSpec, SamplerSettings } from '../../../nodes/sockets';
import { randomWeights } from '../training-fixture';
import { tinyRandomModel } from './tiny-model';

const high = tinyRandomModel(1);
const low = tinyRandomModel(5);
const spec: AdapterSpec = {
  kind: 'adapter', algo: 'LoRA', rank: 4, alpha: 4, convRank: 4, convAlpha: 4, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'attention', include: [], exclude: [], trainTextEncoder: false, byteSize: () => 64,
};
const settings: SamplerSettings = {
  kind: 'sampler_settings', prompts: [{ prompt: 'a red circle' }], negativePrompt: '', seed: 3, walkSeed: false, steps: 4, cfg: 4,
  sampler: 'euler', scheduler: 'auto', width: 64, height: 64, loraStrength: 1, byteSize: () => 0,
};
const hiW = randomWeights(spec, high.model, 7);
const loW = randomWeights(spec, low.model, 8);
const common = { clip: high.clip, vae: high.vae, settings };
const render = async (o: Partial<Parameters<typeof renderSamples>[0]>) => Buffer.from((await renderSamples({ ...common, model: high.model, ...o }))[0].rgb);

describe('two-expert previews', () => {
  it('route each step to the expert owning its noise level, each with its own LoRA', async () => {
    const highOnly = await render({ adapter: { spec, weights: hiW } });
    const lowOnly = await render({ model: low.model, adapter: { spec, weights: loW } });
    expect(highOnly.equals(lowOnly)).toBe(false);
    const both = (boundary: number, lowWeights = loW) => render({ adapter: { spec, weights: hiW }, lowNoise: { model: low.model, adapter: { spec, weights: lowWeights }, boundary } });
    // Every step's timestep lies in [0, 1000): boundary 0 gives every step to the high-noise expert, 1 to the low-noise one.
    expect((await both(0)).equals(highOnly)).toBe(true);
    expect((await both(1)).equals(lowOnly)).toBe(true);
    const mixed = await both(0.5);
    expect(mixed.equals(highOnly) || mixed.equals(lowOnly)).toBe(false);
    // The low-noise LoRA matters exactly when the low-noise expert runs some step.
    const otherLow = randomWeights(spec, low.model, 9);
    expect((await both(0.5, otherLow)).equals(mixed)).toBe(false);
    expect((await both(0, otherLow)).equals(highOnly)).toBe(true);
  }, 300_000);

  it('releaseAfter unloads both experts\' denoisers once rendered; the next render loads them again, same pixels', async () => {
    const req = { ...common, model: high.model, adapter: { spec, weights: hiW }, lowNoise: { model: low.model, adapter: { spec, weights: loW }, boundary: 0.5 } };
    const a = Buffer.from((await renderSamples(req))[0].rgb);
    const loaded = defaultRuntime().loadedSessions().count;
    const b = Buffer.from((await renderSamples({ ...req, releaseAfter: true }))[0].rgb);
    expect(defaultRuntime().loadedSessions().count).toBe(loaded - 2);
    expect(b.equals(a)).toBe(true);
    expect(Buffer.from((await renderSamples(req))[0].rgb).equals(a)).toBe(true);
    expect(defaultRuntime().loadedSessions().count).toBe(loaded);
  }, 300_000);
});
