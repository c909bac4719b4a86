// Load Model's `offload: blocks` in sampling: the Train node's preview samples draw the resident pixels
// with the LoRA in training applied inside the offloaded blocks, and the Sampler's pre-flight counts a
// segment's weights instead of the whole denoiser's — a limit the resident sampler is refused under
// lets the offloaded one render, and the refusal names offload.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import sharp from 'sharp';
import { samplerNode, samplerSettings } from '../../nodes/sampler';
import { trainingSampler } from '../../nodes/training/samples';
import { adapterSetsFor } from '../../nodes/models/adapters';
import { MemoryPreflightError } from '../../kernels/train/memory';
import type { ClipValue, ImagesValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { adapterSpec, loadTiny, randomWeights } from './training-fixture';

const { ctx } = nodeContext();
let model: ModelValue, clip: ClipValue, vae: VaeValue;
beforeAll(async () => { ({ model, clip, vae } = await loadTiny(ctx)); });
const before = process.env.LORAGRAPH_MEMORY_LIMIT_MB;
afterEach(() => { if (before === undefined) delete process.env.LORAGRAPH_MEMORY_LIMIT_MB; else process.env.LORAGRAPH_MEMORY_LIMIT_MB = before; });

const offloaded = () => ({ ...model, offload: 'blocks' as const });
const pixels = async (png: Uint8Array) => new Uint8Array(await sharp(Buffer.from(png)).raw().toBuffer());
function maxDiff(a: Uint8Array, b: Uint8Array) {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('layer offloading in sampling', () => {
  it('the Train node\'s preview samples of an offloaded model are the resident ones, LoRA included', async () => {
    const settings = samplerSettings({
      prompts: 'a red circle\na blue square --d 9', negativePrompt: '', seed: 3, walkSeed: false, steps: 2, cfg: 5, sampler: 'euler', scheduler: 'auto',
      width: 0, height: 0, loraStrength: 1, numFrames: 0, fps: 16, cfgHighNoise: 0, startImage: 'none',
    });
    const { spec } = await adapterSpec(ctx, { rank: 4, alpha: 4 }, model);
    const weights = randomWeights(spec, model);
    const noop = () => {};
    const adapters = adapterSetsFor(spec, model);
    const res = await trainingSampler(model, clip, vae, spec, settings)(10, weights, adapters, noop);
    const off = await trainingSampler(offloaded(), clip, vae, spec, settings)(10, weights, adapters, noop);
    expect(off.tiles).toEqual(res.tiles);
    // Latents agree to ~1e-5; an 8-bit pixel may land one level off at a rounding edge.
    expect(maxDiff(await pixels(res.png), await pixels(off.png))).toBeLessThanOrEqual(1);
    // The LoRA matters here (so the offloaded blocks did apply it): without it the grid differs.
    const zero = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, { ...v, data: new Float32Array(v.data.length) }]));
    const bare = await trainingSampler(offloaded(), clip, vae, spec, settings)(10, zero, adapters, noop);
    expect(maxDiff(await pixels(bare.png), await pixels(off.png))).toBeGreaterThan(8);
  }, 300_000);

  it('the Sampler\'s pre-flight estimates the largest segment: a limit refusing the resident model lets the offloaded one render', async () => {
    const sample = (m: ModelValue) => samplerNode.execute({ inputs: { model: m, clip, vae }, widgets: samplerNode.widgets.parse({ steps: 2, prompts: 'a red circle --w 96 --h 64', seed: 1 }), ctx });
    process.env.LORAGRAPH_MEMORY_LIMIT_MB = '1';
    const refused = (await sample(model).catch((e) => e)) as MemoryPreflightError;
    expect(refused).toBeInstanceOf(MemoryPreflightError);
    expect(refused.message).toContain('set offload to blocks on Load Model (now none)');
    const refusedOff = (await sample(offloaded()).catch((e) => e)) as MemoryPreflightError;
    expect(refusedOff).toBeInstanceOf(MemoryPreflightError);
    expect(refusedOff.message).not.toContain('set offload');
    const [resident, off] = [refused.estimate, refusedOff.estimate];
    expect(off.weights).toBeLessThan(resident.weights);
    expect(off.total).toBeLessThan(resident.total);
    // Between the two estimates: the resident sampler is refused, the offloaded one renders.
    process.env.LORAGRAPH_MEMORY_LIMIT_MB = String((resident.total + off.total) / 2 / 2 ** 20);
    await expect(sample(model)).rejects.toThrow(/needs an estimated/);
    const r = await sample(offloaded());
    expect((r.outputs.images as ImagesValue).images).toHaveLength(1);
  }, 300_000);
});
