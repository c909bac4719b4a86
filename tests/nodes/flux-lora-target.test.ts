// LoRA Target's presets on the full-size FLUX.2 [klein] 9B and FLUX.1 [dev], counted from the configs
// without allocating a weight: ai-toolkit's default (attention_ff) is both streams' qkv, proj, mlp.0,
// mlp.2 in the double blocks and linear1, linear2 in the single blocks — 112 modules on klein 9B.
import { describe, it, expect } from 'vitest';
import loraTargetNode from '../../nodes/lora-target';
import type { ModelValue } from '../../nodes/sockets';
import type { ModelFamily } from '../../kernels/families/contract';
import { ShapeRecorder } from '../../kernels';
import { flux2Family, FLUX2_KLEIN_9B_FAMILY } from '../../kernels/flux/family';
import { flux1Family, FLUX1_DEV_FAMILY } from '../../kernels/flux/family1';
import { nodeContext } from './context';

const { ctx } = nodeContext(undefined, '4');

/** A MODEL of a full-size config whose weights are never read (LoRA Target only traces shapes). */
const fullSize = (family: ModelFamily, config: unknown): ModelValue => Object.freeze({
  kind: 'model' as const, family, config, denoiser: new ShapeRecorder(), quantization: 'none' as const, byteSize: () => 0,
  source: Object.freeze({ path: '/nowhere', label: 'full size', family: family.id, id: 'x', config }),
});

const target = async (model: ModelValue, widgets: Record<string, unknown>) => {
  const r = await loraTargetNode.execute({ inputs: { model }, widgets: loraTargetNode.widgets.parse(widgets), ctx });
  return r.ui as { text: string[]; trainableParams: number };
};

/** rank × (in + out) summed over the modules, from the architecture's widths (not from the model code). */
const loraParams = (rank: number, shapes: [number, number][]) => rank * shapes.reduce((n, [i, o]) => n + i + o, 0);

describe('LoRA Target presets on full-size FLUX', () => {
  it('klein 9B: ai-toolkit\'s default is 112 modules, attention 32, all-linear 121, with their parameter counts', async () => {
    const model = fullSize(flux2Family, FLUX2_KLEIN_9B_FAMILY);
    const H = 4096, mlp = 3 * H; // SwiGLU: mlp.0 projects to gate and value (2 × 3H)
    const double: [number, number][] = [[H, 3 * H], [H, H], [H, 2 * mlp], [mlp, H]];
    const single: [number, number][] = [[H, 3 * H + 2 * mlp], [H + mlp, H]];
    const aiToolkit = [...Array(8 * 2).fill(double).flat(), ...Array(24).fill(single).flat()] as [number, number][];
    const d = await target(model, { rank: 16, alpha: 16 });
    expect(d.text[1]).toMatch(/ in 112 transformer modules$/);
    expect(d.trainableParams).toBe(loraParams(16, aiToolkit));
    const attention = Array(8 * 2).fill([double[0], double[1]]).flat() as [number, number][];
    const a = await target(model, { rank: 16, targetPreset: 'attention' });
    expect(a.text[1]).toMatch(/ in 32 transformer modules$/);
    expect(a.trainableParams).toBe(loraParams(16, attention));
    // Plus img_in (128 latent channels), txt_in (3 × 4096 Qwen3-8B features), time_in ×2 (256-channel
    // sinusoid), the three shared modulations and the final layer's modulation and projection.
    const rest: [number, number][] = [[128, H], [3 * 4096, H], [256, H], [H, H], [H, 6 * H], [H, 6 * H], [H, 3 * H], [H, 2 * H], [H, 128]];
    const all = await target(model, { rank: 16, targetPreset: 'all_linear' });
    expect(all.text[1]).toMatch(/ in 121 transformer modules$/);
    expect(all.trainableParams).toBe(loraParams(16, [...aiToolkit, ...rest]));
  }, 120_000);

  it('FLUX.1 dev: ai-toolkit\'s default is 19 × 8 + 38 × 2 = 228 modules', async () => {
    const d = await target(fullSize(flux1Family, FLUX1_DEV_FAMILY), { rank: 8, alpha: 8 });
    expect(d.text[1]).toMatch(/ in 228 transformer modules$/);
  }, 120_000);
});
