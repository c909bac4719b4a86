// FLUX LoRA targets (ai-toolkit's default, attention, all linear) and the three file layouts:
// every format written reads back to the same weight deltas, fused qkv ↔ split to_q/to_k/to_v.
import { describe, it, expect } from 'vitest';
import { selectTargets } from '../../../kernels/adapters/targets';
import { FLUX1_DEV, FLUX2_KLEIN_9B, FLUX2_TINY, type FluxTransformerConfig } from '../../../kernels/flux/config';
import { fluxTransformerShapes } from '../../../kernels/flux/shapes';
import { FLUX_LORA_FORMATS, fluxLoraDelta, fluxLoraFormatOf, fluxTargetSpec, readFluxLora, writeFluxLora, type FluxLoraModule } from '../../../kernels/flux/lora';
import { Rng } from '../../../kernels/random';

const modulesOf = (cfg: FluxTransformerConfig) => fluxTransformerShapes(cfg).modules;

describe('FLUX LoRA targets', () => {
  it('klein 9B: ai-toolkit trains 112 modules, attention 32, all linear 121', () => {
    const m = modulesOf(FLUX2_KLEIN_9B);
    const ai = selectTargets(m, fluxTargetSpec('ai_toolkit')).map((x) => x.module);
    expect(ai.length).toBe(112);
    expect(new Set(ai.slice(0, 8))).toEqual(new Set(['img_attn.qkv', 'txt_attn.qkv', 'img_attn.proj', 'img_mlp.0', 'img_mlp.2', 'txt_attn.proj', 'txt_mlp.0', 'txt_mlp.2'].map((s) => `double_blocks.0.${s}`)));
    expect(ai.filter((x) => x.startsWith('single_blocks.'))).toHaveLength(48);
    expect(selectTargets(m, fluxTargetSpec('attention'))).toHaveLength(32);
    expect(selectTargets(m, fluxTargetSpec('all_linear'))).toHaveLength(121);
  });
});

function randomLora(cfg: FluxTransformerConfig, rank: number, alpha: number, seed: number): Map<string, FluxLoraModule> {
  const rng = new Rng(seed);
  const out = new Map<string, FluxLoraModule>();
  for (const info of selectTargets(modulesOf(cfg), fluxTargetSpec('ai_toolkit'))) {
    if (info.kind !== 'linear') continue;
    const down = rng.fork(`${info.module}.d`).fillUniform(new Float32Array(rank * info.inFeatures), -1, 1);
    const up = rng.fork(`${info.module}.u`).fillUniform(new Float32Array(info.outFeatures * rank), -1, 1);
    out.set(info.module, { down, up, rank, alpha, inFeatures: info.inFeatures, outFeatures: info.outFeatures });
  }
  return out;
}

function expectSameDeltas(a: Map<string, FluxLoraModule>, b: Map<string, FluxLoraModule>) {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  for (const [k, m] of a) {
    const da = fluxLoraDelta(m), db = fluxLoraDelta(b.get(k)!);
    let worst = 0;
    for (let i = 0; i < da.length; i++) worst = Math.max(worst, Math.abs(da[i] - db[i]));
    expect(worst, k).toBeLessThan(1e-5);
  }
}

describe('FLUX LoRA files', () => {
  it('names in each layout', () => {
    const lora = randomLora(FLUX2_TINY, 2, 1, 1);
    const ai = writeFluxLora(FLUX2_TINY, lora, 'ai-toolkit');
    expect(ai.has('diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight')).toBe(true);
    expect([...ai.keys()].some((k) => k.endsWith('.alpha'))).toBe(false);
    const kohya = writeFluxLora(FLUX2_TINY, lora, 'kohya');
    expect(kohya.get('lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight')!.shape).toEqual([3 * FLUX2_TINY.hiddenSize, 2]);
    expect(kohya.get('lora_unet_single_blocks_1_linear2.alpha')!.data[0]).toBe(1);
    const diff = writeFluxLora(FLUX2_TINY, lora, 'diffusers');
    expect(diff.get('transformer.transformer_blocks.0.attn.to_k.lora_B.weight')!.shape).toEqual([FLUX2_TINY.hiddenSize, 2]);
    expect(diff.get('transformer.transformer_blocks.1.attn.add_v_proj.lora_A.weight')!.shape).toEqual([2, FLUX2_TINY.hiddenSize]);
    expect(diff.has('transformer.single_transformer_blocks.0.attn.to_qkv_mlp_proj.lora_A.weight')).toBe(true);
    expect(diff.has('transformer.transformer_blocks.0.ff_context.linear_out.lora_B.weight')).toBe(true);
    for (const f of FLUX_LORA_FORMATS) expect(fluxLoraFormatOf(writeFluxLora(FLUX2_TINY, lora, f).keys())).toBe(f);
  });

  for (const cfg of [FLUX2_TINY, { ...FLUX1_DEV, hiddenSize: 32, numHeads: 2, depthDouble: 2, depthSingle: 2, contextDim: 8, pooledDim: 4, axesDim: [4, 6, 6] }]) {
    for (const format of FLUX_LORA_FORMATS) {
      it(`FLUX.${cfg.generation}: ${format} file reads back to the same deltas (alpha ≠ rank)`, () => {
        const lora = randomLora(cfg, 4, 2, 5);
        expectSameDeltas(lora, readFluxLora(cfg, writeFluxLora(cfg, lora, format)));
      });
    }
  }

  it('diffusers parts with their own down matrices fuse into stacked downs and a block-diagonal up', () => {
    const lora = randomLora(FLUX2_TINY, 2, 2, 9);
    const file = writeFluxLora(FLUX2_TINY, lora, 'diffusers');
    // Train-time diffusers LoRAs on q/k/v have independent A matrices: make k's its own.
    const ka = file.get('transformer.transformer_blocks.0.attn.to_k.lora_A.weight')!;
    file.set('transformer.transformer_blocks.0.attn.to_k.lora_A.weight', { ...ka, data: (ka.data as Float32Array).map((v) => v * -0.5) });
    const back = readFluxLora(FLUX2_TINY, file);
    const fused = back.get('double_blocks.0.img_attn.qkv')!;
    expect(fused.rank).toBe(6);
    const delta = fluxLoraDelta(fused);
    const orig = fluxLoraDelta(lora.get('double_blocks.0.img_attn.qkv')!);
    const h = FLUX2_TINY.hiddenSize;
    for (let r = 0; r < 3 * h; r++) for (let c = 0; c < h; c += 7) {
      const expected = r >= h && r < 2 * h ? orig[r * h + c] * -0.5 : orig[r * h + c];
      expect(delta[r * h + c]).toBeCloseTo(expected, 4);
    }
  });

  it('a partial fused layer and a foreign layer are reported by name', () => {
    const file = writeFluxLora(FLUX2_TINY, randomLora(FLUX2_TINY, 2, 2, 3), 'diffusers');
    file.delete('transformer.transformer_blocks.0.attn.to_v.lora_A.weight');
    expect(() => readFluxLora(FLUX2_TINY, file)).toThrow(/2 of the 3 parts of 'double_blocks.0.img_attn.qkv'/);
    const k = writeFluxLora(FLUX2_TINY, randomLora(FLUX2_TINY, 2, 2, 3), 'kohya');
    k.set('lora_unet_double_blocks_9_img_attn_qkv.lora_down.weight', k.get('lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight')!);
    expect(() => readFluxLora(FLUX2_TINY, k)).toThrow(/double_blocks_9_img_attn_qkv/);
  });
});

describe('FLUX LoRA files: the other spellings and the final layer', () => {
  it('BFL names under diffusion_model. with kohya\'s lora_down/lora_up/alpha read as the same deltas', () => {
    const mods = randomLora(FLUX2_TINY, 4, 2, 5);
    const kohya = writeFluxLora(FLUX2_TINY, mods, 'kohya');
    const renamed = new Map([...kohya].map(([k, v]) => [k.replace(/^lora_unet_(.*?)\.(lora_down|lora_up|alpha)/, (_, m: string, s: string) => `diffusion_model.${[...mods.keys()].find((x) => x.replace(/\./g, '_') === m)}.${s}`), v]));
    expect([...renamed.keys()]).toContain('diffusion_model.double_blocks.0.img_attn.qkv.lora_down.weight');
    expect(fluxLoraFormatOf(renamed.keys())).toBe('ai-toolkit');
    expectSameDeltas(mods, readFluxLora(FLUX2_TINY, renamed));
  });

  it('diffusers\' norm_out is (scale, shift): the final modulation\'s up rows swap halves, and swap back on reading', () => {
    const info = modulesOf(FLUX2_TINY).find((m) => m.module === 'final_layer.adaLN_modulation.1')!;
    if (info.kind !== 'linear') throw new Error('expected a linear');
    const rank = 2, rows = info.outFeatures;
    const up = Float32Array.from({ length: rows * rank }, (_, i) => i);
    const mods = new Map([[info.module, { down: new Float32Array(rank * info.inFeatures).fill(0.5), up, rank, alpha: rank, inFeatures: info.inFeatures, outFeatures: rows }]]);
    const d = writeFluxLora(FLUX2_TINY, mods, 'diffusers');
    const written = d.get('transformer.norm_out.linear.lora_B.weight')!.data as Float32Array;
    expect(written.slice(0, (rows / 2) * rank)).toEqual(up.slice((rows / 2) * rank));
    expect(written.slice((rows / 2) * rank)).toEqual(up.slice(0, (rows / 2) * rank));
    expect(writeFluxLora(FLUX2_TINY, mods, 'ai-toolkit').get('diffusion_model.final_layer.adaLN_modulation.1.lora_B.weight')!.data).toEqual(up);
    expect(readFluxLora(FLUX2_TINY, d).get(info.module)!.up).toEqual(up);
  });
});
