// The registry's detection (kernels/families/detect.ts, which picks the family) and FLUX's own
// (kernels/flux/detect.ts, which picks the variant) agree on every FLUX release as ComfyUI tells them
// apart: `double_stream_modulation_img` means FLUX.2, `txt_in`'s width and the block counts the
// variant — for BFL names bare or under ComfyUI's prefixes and for diffusers names; FLUX.2 [dev] is
// detected as FLUX.2 and refused by name when loaded.
import { describe, it, expect } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { detectFamily } from '../../../kernels/families/detect';
import { detectCheckpoint, familyById } from '../../../kernels/families/registry';
import { detectFluxTransformer } from '../../../kernels/flux/detect';
import { fluxKeyMapping } from '../../../kernels/flux/keys';
import { fluxTransformerShapes } from '../../../kernels/flux/shapes';
import { FLUX1_DEV, FLUX1_SCHNELL, FLUX2_DEV, FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, type FluxTransformerConfig } from '../../../kernels/flux/config';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import loadModelNode from '../../../nodes/load-model';
import { nodeContext } from '../../nodes/context';
import { writeTinyDev } from './tiny-dev-files';
import { checkSamplerChoice, checkSchedulerChoice } from '../../../nodes/sampling/sampler-choice';
import type { ModelValue } from '../../../nodes/sockets';

/** diffusers tensor names and shapes of a config, from the BFL ones (fused rows split). */
function diffusersShapes(cfg: FluxTransformerConfig): Map<string, number[]> {
  const bfl = fluxTransformerShapes(cfg).tensors;
  const out = new Map<string, number[]>();
  for (const m of fluxKeyMapping(cfg)) for (const p of m.diffusers) out.set(p.key, [p.rows[1] - p.rows[0], ...bfl.get(m.bfl)!.slice(1)]);
  return out;
}

describe('FLUX detection: the registry and the FLUX loader agree', () => {
  const cases: [FluxTransformerConfig, string][] = [[FLUX2_KLEIN_4B, 'flux2'], [FLUX2_KLEIN_9B, 'flux2'], [FLUX2_DEV, 'flux2'], [FLUX1_DEV, 'flux1'], [FLUX1_SCHNELL, 'flux1']];
  for (const [cfg, family] of cases) {
    it(`${cfg.name}: ${family}, the variant by txt_in width and block counts, in every layout`, () => {
      const bfl = fluxTransformerShapes(cfg).tensors;
      const layouts: [string, Map<string, number[]>][] = [
        ...['', 'model.diffusion_model.', 'diffusion_model.'].map((p): [string, Map<string, number[]>] => [`BFL '${p}'`, new Map([...bfl].map(([k, s]) => [p + k, s]))]),
        ['diffusers', diffusersShapes(cfg)],
      ];
      for (const [what, shapes] of layouts) {
        const keys = [...shapes.keys()];
        const evidence = detectFamily(keys, (k) => shapes.get(k));
        expect(evidence.family, what).toBe(family);
        if (family === 'flux2') expect(evidence.reason, what).toMatch(/double_stream_modulation_(img|txt)/);
        // The label users see: dev by its guidance embedder, klein 4B and 9B as klein; FLUX.1 has no variant label.
        expect(evidence.label, what).toBe(family === 'flux1' ? undefined : cfg.guidanceEmbed ? 'FLUX.2 [dev]' : 'FLUX.2 [klein]');
        const flux = detectFluxTransformer(keys, (k) => shapes.get(k))!;
        expect(flux.config.generation, what).toBe(family === 'flux2' ? 2 : 1);
        expect(flux.variant, what).toBe(cfg.name);
        expect(familyById(family).id).toBe(family);
      }
    });
  }

  it('FLUX.2 [dev] is detected as FLUX.2 and Load Model asks for its Mistral text encoder by name', async () => {
    const { ctx } = nodeContext(undefined, '2');
    // Detection reads names and shapes: a one-block miniature with dev's switches (guidance embedding, Mistral-width text).
    const mini = { ...FLUX2_DEV, hiddenSize: 32, numHeads: 2, depthDouble: 1, depthSingle: 1, contextDim: 8, axesDim: [4, 4, 4, 4] };
    const shapes = fluxTransformerShapes(mini).tensors;
    mkdirSync(join(ctx.paths.models, 'diffusion_models'), { recursive: true });
    await writeSafetensors(join(ctx.paths.models, 'diffusion_models', 'flux2-dev.safetensors'), Object.fromEntries([...shapes].map(([k, s]): [string, TensorToWrite] => [`model.diffusion_model.${k}`, { dtype: 'F32', shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) }])));
    await expect(loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse({ checkpoint: 'diffusion_models/flux2-dev.safetensors' }), ctx }))
      .rejects.toThrow(/^checkpoint: .*flux2-dev\.safetensors: no Mistral Small 3 text encoder \(FLUX\.2 \[dev\]'s, e\.g\. mistral_3_small_flux2_bf16\.safetensors\) found beside it or in .*text_encoders/);
  });
});

describe('a diffusers folder without model_index.json', () => {
  it('a sharded transformer/ is detected from all its shards together (the first alone would look like FLUX.1)', async () => {
    const { ctx } = nodeContext(undefined, '5');
    const mini = { ...FLUX2_KLEIN_9B, hiddenSize: 32, numHeads: 2, depthDouble: 1, depthSingle: 1, contextDim: 8, axesDim: [4, 4, 4, 4] };
    const shapes = [...diffusersShapes(mini)];
    // Shard 2 holds the shared modulations, shard 1 everything else (as a size-ordered split may fall).
    const second = shapes.filter(([k]) => k.startsWith('double_stream_modulation'));
    const first = shapes.filter(([k]) => !k.startsWith('double_stream_modulation'));
    const folder = join(ctx.paths.models, 'klein-diffusers');
    mkdirSync(join(folder, 'transformer'), { recursive: true });
    const write = (name: string, part: [string, number[]][]) => writeSafetensors(join(folder, 'transformer', name), Object.fromEntries(part.map(([k, s]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) }])));
    await write('diffusion_pytorch_model-00001-of-00002.safetensors', first);
    await write('diffusion_pytorch_model-00002-of-00002.safetensors', second);
    expect(detectFamily(first.map(([k]) => k)).family).toBe('flux1');
    expect(await detectCheckpoint(folder)).toMatchObject({ family: 'flux2', reason: expect.stringMatching(/double_stream_modulation/) });
  });

  it('Load Model names a FLUX.2 [dev] checkpoint FLUX.2 [dev] and the built-in klein FLUX.2 [klein]; a wrong family widget is told the variant', async () => {
    const { ctx } = nodeContext(undefined, '3');
    const files = await writeTinyDev(ctx.paths.models);
    const load = (widgets: Record<string, unknown>) => loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse(widgets), ctx });
    const dev = await load({ checkpoint: 'diffusion_models/flux2-dev-tiny.safetensors' });
    expect((dev.ui as { text: string[] }).text[0]).toMatch(/^FLUX\.2 \[dev\] · flux2-dev-tiny \(/);
    expect(dev.ui).toMatchObject({ family: 'flux2', familyLabel: 'FLUX.2 [dev]' });
    // The Sampler's and Train's refusals name the variant too.
    expect(() => checkSamplerChoice(dev.outputs.model as ModelValue, 'ddim')).toThrow(/^sampler: FLUX\.2 \[dev\] is a flow-matching model/);
    expect(() => checkSchedulerChoice(dev.outputs.model as ModelValue, 'euler', 'no-such-scheduler')).toThrow(/^scheduler: FLUX\.2 \[dev\] steps on /);
    const klein = await load({ checkpoint: 'builtin:tiny-flux' });
    expect((klein.ui as { text: string[] }).text[0]).toMatch(/^FLUX\.2 \[klein\] · /);
    expect(klein.ui).toMatchObject({ family: 'flux2', familyLabel: 'FLUX.2 [klein]' });
    await expect(load({ checkpoint: 'diffusion_models/flux2-dev-tiny.safetensors', family: 'flux1' })).rejects.toThrow(/^family: .*flux2-dev-tiny\.safetensors looks like FLUX\.2 \[dev\] \(.*with a guidance embedder\), not FLUX\.1/);
    expect(files.transformer).toContain('flux2-dev-tiny');
  });
});
