// BFL ↔ diffusers names of the FLUX transformers: exact lists, a bijection of row slices, weight
// round trips both ways, and detection of variant and layout from names and shapes alone.
import { describe, it, expect } from 'vitest';
import { FLUX1_DEV, FLUX2_DEV, FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, FLUX2_TINY, FLUX1_SCHNELL, type FluxTransformerConfig } from '../../../kernels/flux/config';
import { fluxBflToDiffusers, fluxDiffusersToBfl, fluxKeyMapping } from '../../../kernels/flux/keys';
import { fluxTransformerShapes } from '../../../kernels/flux/shapes';
import { detectFluxTransformer } from '../../../kernels/flux/detect';
import type { HostTensor } from '../../../kernels';

function diffusersShapes(cfg: FluxTransformerConfig): Map<string, number[]> {
  const bfl = fluxTransformerShapes(cfg).tensors;
  const out = new Map<string, number[]>();
  for (const m of fluxKeyMapping(cfg)) {
    const s = bfl.get(m.bfl)!;
    for (const p of m.diffusers) out.set(p.key, [p.rows[1] - p.rows[0], ...s.slice(1)]);
  }
  return out;
}

/** Diffusers keys of a config's BFL tensors, checked to be a bijection of row slices tiling each tensor once. */
const bijection = (cfg: FluxTransformerConfig): string[] => {
  const mapping = fluxKeyMapping(cfg);
  const shapes = fluxTransformerShapes(cfg).tensors;
  expect(mapping.map((m) => m.bfl).sort()).toEqual([...shapes.keys()].sort());
  const seen = new Set<string>();
  for (const m of mapping) {
    let at = 0;
    for (const p of m.diffusers) {
      expect(p.rows[0]).toBe(at);
      at = p.rows[1];
      expect(seen.has(p.key), p.key).toBe(false);
      seen.add(p.key);
    }
    expect(at, m.bfl).toBe(shapes.get(m.bfl)![0]);
  }
  return [...seen];
};

describe('FLUX.2 key layouts', () => {
  it('klein 9B: the exact diffusers list (244 tensors) and a bijection of row slices', () => {
    const cfg = FLUX2_KLEIN_9B;
    expect(fluxKeyMapping(cfg).length).toBe(201);
    const keys = bijection(cfg);
    // 8 double blocks × (12 BFL tensors, two of them split in three) → 16 each; 24 single × 4; 9 top-level.
    expect(keys.length).toBe(9 + 8 * 16 + 24 * 4);
    expect(keys).toContain('transformer_blocks.7.attn.add_v_proj.weight');
    expect(keys).toContain('transformer_blocks.0.attn.norm_added_k.weight');
    expect(keys).toContain('transformer_blocks.0.ff_context.linear_out.weight');
    expect(keys).toContain('single_transformer_blocks.23.attn.to_qkv_mlp_proj.weight');
    expect(keys).toContain('single_transformer_blocks.23.attn.to_out.weight');
    expect(keys).toContain('time_guidance_embed.timestep_embedder.linear_1.weight');
    expect(keys).toContain('norm_out.linear.weight');
    expect(keys.filter((k) => k.startsWith('transformer_blocks.0.')).sort()).toEqual([
      'attn.add_k_proj', 'attn.add_q_proj', 'attn.add_v_proj', 'attn.norm_added_k', 'attn.norm_added_q', 'attn.norm_k', 'attn.norm_q',
      'attn.to_add_out', 'attn.to_k', 'attn.to_out.0', 'attn.to_q', 'attn.to_v', 'ff.linear_in', 'ff.linear_out', 'ff_context.linear_in', 'ff_context.linear_out',
    ].map((k) => `transformer_blocks.0.${k}.weight`).sort());
    const d = diffusersShapes(cfg);
    expect(d.get('transformer_blocks.0.attn.to_k.weight')).toEqual([4096, 4096]);
    expect(d.get('norm_out.linear.weight')).toEqual([8192, 4096]);
  });

  for (const cfg of [FLUX2_TINY, FLUX1_DEV]) {
    it(`${cfg.name}: weights survive BFL → diffusers → BFL bit for bit, and the final modulation halves swap`, () => {
      const small = cfg === FLUX1_DEV ? { ...cfg, hiddenSize: 32, numHeads: 2, depthDouble: 1, depthSingle: 1, contextDim: 8, pooledDim: 4, axesDim: [4, 6, 6] } : cfg;
      const bfl = new Map<string, HostTensor>();
      let v = 0;
      for (const [k, s] of fluxTransformerShapes(small).tensors) {
        const n = s.reduce((a, b) => a * b, 1);
        bfl.set(k, { dtype: 'float32', shape: s, data: Float32Array.from({ length: n }, () => v++) });
      }
      const diff = fluxBflToDiffusers(small, bfl);
      const back = fluxDiffusersToBfl(small, diff);
      expect([...back.keys()]).toEqual([...bfl.keys()]);
      for (const [k, t] of bfl) {
        expect(back.get(k)!.shape).toEqual(t.shape);
        expect(back.get(k)!.data).toEqual(t.data);
      }
      const mod = bfl.get('final_layer.adaLN_modulation.1.weight')!;
      const h = small.hiddenSize;
      const norm = diff.get('norm_out.linear.weight')!;
      expect(norm.data[0]).toBe(mod.data[h * h]); // diffusers' first half is BFL's scale (second half)
      const qkv = bfl.get('double_blocks.0.img_attn.qkv.weight')!;
      expect(diff.get('transformer_blocks.0.attn.to_k.weight')!.data[0]).toBe(qkv.data[h * h]);
    });
  }

  it('klein 4B and FLUX.1 dev/schnell at full size: exact diffusers lists and a bijection of row slices', () => {
    const block = (keys: string[], prefix: string) => keys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)).sort();
    const wb = (names: string[]) => names.flatMap((n) => [`${n}.weight`, `${n}.bias`]);

    // klein 4B: 9 top-level tensors, 16 per double block (qkv split in three, twice), 4 per single block.
    const klein4 = bijection(FLUX2_KLEIN_4B);
    expect(klein4).toHaveLength(9 + 5 * 16 + 20 * 4);
    expect(block(klein4, 'transformer_blocks.4.')).toEqual(block(bijection(FLUX2_KLEIN_9B), 'transformer_blocks.7.'));
    expect(klein4).not.toContain('transformer_blocks.5.attn.to_q.weight');

    // FLUX.1 dev: BFL's 780 tensors become diffusers' 20 + 19 × 32 + 38 × 14, biases everywhere but the norms.
    const dev = bijection(FLUX1_DEV);
    expect(fluxTransformerShapes(FLUX1_DEV).tensors.size).toBe(20 + 19 * 24 + 38 * 8);
    expect(dev).toHaveLength(20 + 19 * 32 + 38 * 14);
    expect(block(dev, 'transformer_blocks.18.')).toEqual([
      ...wb(['norm1.linear', 'norm1_context.linear', 'attn.to_q', 'attn.to_k', 'attn.to_v', 'attn.add_q_proj', 'attn.add_k_proj', 'attn.add_v_proj',
        'attn.to_out.0', 'attn.to_add_out', 'ff.net.0.proj', 'ff.net.2', 'ff_context.net.0.proj', 'ff_context.net.2']),
      ...['attn.norm_q', 'attn.norm_k', 'attn.norm_added_q', 'attn.norm_added_k'].map((n) => `${n}.weight`),
    ].sort());
    expect(block(dev, 'single_transformer_blocks.37.')).toEqual([
      ...wb(['norm.linear', 'attn.to_q', 'attn.to_k', 'attn.to_v', 'proj_mlp', 'proj_out']), 'attn.norm_q.weight', 'attn.norm_k.weight',
    ].sort());
    expect(dev.filter((k) => !k.includes('blocks.')).sort()).toEqual(wb([
      'x_embedder', 'context_embedder', 'time_text_embed.timestep_embedder.linear_1', 'time_text_embed.timestep_embedder.linear_2',
      'time_text_embed.guidance_embedder.linear_1', 'time_text_embed.guidance_embedder.linear_2', 'time_text_embed.text_embedder.linear_1',
      'time_text_embed.text_embedder.linear_2', 'norm_out.linear', 'proj_out',
    ]).sort());
    // schnell: the same without the guidance embedder.
    const schnell = bijection(FLUX1_SCHNELL);
    expect(dev.filter((k) => !schnell.includes(k)).sort()).toEqual(wb(['time_text_embed.guidance_embedder.linear_1', 'time_text_embed.guidance_embedder.linear_2']).sort());
  });

  it('FLUX.1: single-block linear1 splits into q, k, v and proj_mlp', () => {
    const m = fluxKeyMapping(FLUX1_DEV).find((x) => x.bfl === 'single_blocks.0.linear1.weight')!;
    expect(m.diffusers).toEqual([
      { key: 'single_transformer_blocks.0.attn.to_q.weight', rows: [0, 3072] },
      { key: 'single_transformer_blocks.0.attn.to_k.weight', rows: [3072, 6144] },
      { key: 'single_transformer_blocks.0.attn.to_v.weight', rows: [6144, 9216] },
      { key: 'single_transformer_blocks.0.proj_mlp.weight', rows: [9216, 21504] },
    ]);
    expect(fluxKeyMapping(FLUX1_DEV).find((x) => x.bfl === 'double_blocks.3.img_mod.lin.bias')!.diffusers[0].key).toBe('transformer_blocks.3.norm1.linear.bias');
  });
});

describe('FLUX transformer detection', () => {
  const cases: [FluxTransformerConfig, string][] = [[FLUX2_KLEIN_4B, 'flux2-klein-4b'], [FLUX2_KLEIN_9B, 'flux2-klein-9b'], [FLUX2_DEV, 'flux2-dev'], [FLUX1_DEV, 'flux1-dev'], [FLUX1_SCHNELL, 'flux1-schnell']];
  for (const [cfg, name] of cases) {
    it(`${name} from BFL names under model.diffusion_model. and from diffusers names`, () => {
      const bfl = fluxTransformerShapes(cfg).tensors;
      const prefixed = new Map([...bfl].map(([k, s]) => [`model.diffusion_model.${k}`, s]));
      const a = detectFluxTransformer([...prefixed.keys()], (k) => prefixed.get(k))!;
      expect(a).toMatchObject({ layout: 'bfl', prefix: 'model.diffusion_model.', variant: name });
      const d = diffusersShapes(cfg);
      const b = detectFluxTransformer([...d.keys()], (k) => d.get(k))!;
      expect(b).toMatchObject({ layout: 'diffusers', prefix: '', variant: name });
      expect(b.config).toEqual(cfg);
    });
  }
  it('the tiny klein-architecture model: sizes read from the shapes', () => {
    const t = fluxTransformerShapes(FLUX2_TINY).tensors;
    const det = detectFluxTransformer([...t.keys()], (k) => t.get(k))!;
    expect(det.variant).toBeUndefined();
    expect({ ...det.config, name: FLUX2_TINY.name }).toEqual(FLUX2_TINY);
  });
  it('an SD checkpoint is not a FLUX transformer', () => {
    expect(detectFluxTransformer(['model.diffusion_model.input_blocks.0.0.weight'], () => [320, 4, 3, 3])).toBeUndefined();
  });
});
