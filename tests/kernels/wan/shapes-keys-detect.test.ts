// Full-size Wan transformers named and counted without allocating weights; Wan ↔ diffusers names as a
// bijection; each release recognised from its tensor names and shapes alone.
import { describe, it, expect } from 'vitest';
import {
  WAN21_FLF2V_14B, WAN21_I2V_14B, WAN21_T2V_14B, WAN21_T2V_1_3B, WAN22_I2V_A14B, WAN22_T2V_A14B, WAN22_TI2V_5B, WAN_TINY, ropeAxes, type WanTransformerConfig,
} from '../../../kernels/wan/config';
import { wanTransformerShapes } from '../../../kernels/wan/shapes';
import { diffusersToWan, wanToDiffusers } from '../../../kernels/wan/keys';
import { detectWanTransformer } from '../../../kernels/wan/detect';

/** Parameters of Wan's WanModel counted layer by layer from its constructor's shapes (independent of the builder). */
function closedFormCount(c: WanTransformerConfig): number {
  const d = c.dim, f = c.ffnDim, lin = (i: number, o: number) => i * o + o;
  const patch = c.patch.reduce((a, b) => a * b, 1);
  let block = 8 * lin(d, d) + 4 * d /* q/k norms */ + 2 * d /* norm3 */ + lin(d, f) + lin(f, d) + 6 * d;
  if (c.clipImageDim) block += 2 * lin(d, d) + d;
  let top = d * c.inChannels * patch + d + lin(c.textDim, d) + lin(d, d) + lin(c.freqDim, d) + lin(d, d) + lin(d, 6 * d) + lin(d, c.outChannels * patch) + 2 * d;
  if (c.clipImageDim) top += 2 * c.clipImageDim + lin(c.clipImageDim, c.clipImageDim) + lin(c.clipImageDim, d) + 2 * d;
  if (c.firstLastFrame) top += 2 * 257 * c.clipImageDim; // MLPProj's emb_pos [1, 257 × 2, 1280]
  return top + c.numLayers * block;
}

describe('full-size Wan transformer shapes', () => {
  const cases: [WanTransformerConfig, string][] = [
    [WAN21_T2V_1_3B, '1.419'], [WAN21_T2V_14B, '14.29'], [WAN22_T2V_A14B, '14.29'], [WAN22_I2V_A14B, '14.29'], [WAN21_I2V_14B, '16.39'], [WAN21_FLF2V_14B, '16.40'], [WAN22_TI2V_5B, '5.00'],
  ];
  for (const [cfg, billions] of cases) {
    it(`${cfg.name}: ${billions} B parameters, equal to the constructor's count`, () => {
      const s = wanTransformerShapes(cfg);
      expect(s.parameterCount).toBe(closedFormCount(cfg));
      const digits = billions.split('.')[1].length;
      expect((s.parameterCount / 1e9).toFixed(digits)).toBe(billions);
    });
  }

  it('2.1 T2V 1.3B: exact count, tensors and the layers Wan has', () => {
    const s = wanTransformerShapes(WAN21_T2V_1_3B);
    expect(s.parameterCount).toBe(1_418_996_800);
    expect(s.tensors.size).toBe(15 + 30 * 27);
    expect(s.tensors.get('patch_embedding.weight')).toEqual([1536, 16, 1, 2, 2]);
    expect(s.tensors.get('text_embedding.0.weight')).toEqual([1536, 4096]);
    expect(s.tensors.get('time_embedding.0.weight')).toEqual([1536, 256]);
    expect(s.tensors.get('time_projection.1.weight')).toEqual([6 * 1536, 1536]);
    expect(s.tensors.get('blocks.29.modulation')).toEqual([1, 6, 1536]);
    expect(s.tensors.get('blocks.0.self_attn.norm_q.weight')).toEqual([1536]); // full width, not per head
    expect(s.tensors.get('blocks.0.norm3.weight')).toEqual([1536]);
    expect(s.tensors.has('blocks.0.norm1.weight') || s.tensors.has('blocks.0.norm2.weight')).toBe(false);
    expect(s.tensors.get('blocks.0.ffn.0.weight')).toEqual([8960, 1536]);
    expect(s.tensors.get('head.head.weight')).toEqual([64, 1536]);
    expect(s.tensors.get('head.modulation')).toEqual([1, 2, 1536]);
    expect(ropeAxes(WAN21_T2V_1_3B)).toEqual([44, 42, 42]);
  });

  it('I2V: 36 input channels; only 2.1 has the CLIP branch (img_emb, k_img/v_img)', () => {
    const i21 = wanTransformerShapes(WAN21_I2V_14B).tensors;
    const i22 = wanTransformerShapes(WAN22_I2V_A14B).tensors;
    expect(i21.get('patch_embedding.weight')).toEqual([5120, 36, 1, 2, 2]);
    expect(i22.get('patch_embedding.weight')).toEqual([5120, 36, 1, 2, 2]);
    expect(i21.get('img_emb.proj.1.weight')).toEqual([1280, 1280]);
    expect(i21.get('img_emb.proj.3.weight')).toEqual([5120, 1280]);
    expect(i21.get('blocks.39.cross_attn.k_img.weight')).toEqual([5120, 5120]);
    expect(i21.get('blocks.39.cross_attn.norm_k_img.weight')).toEqual([5120]);
    expect([...i22.keys()].some((k) => k.includes('img'))).toBe(false);
    expect(wanTransformerShapes(WAN22_TI2V_5B).tensors.get('head.head.weight')).toEqual([192, 3072]);
  });

  it('2.1 FLF2V 14B: 2.1 I2V 14B plus emb_pos [1, 514, 1280] (16,395,536,704 parameters)', () => {
    const flf = wanTransformerShapes(WAN21_FLF2V_14B);
    const i2v = wanTransformerShapes(WAN21_I2V_14B);
    expect(flf.parameterCount).toBe(16_395_536_704);
    expect(flf.parameterCount - i2v.parameterCount).toBe(514 * 1280);
    expect(flf.tensors.get('img_emb.emb_pos')).toEqual([1, 514, 1280]);
    expect([...flf.tensors.keys()].filter((k) => !i2v.tensors.has(k))).toEqual(['img_emb.emb_pos']);
  });
});

describe('Wan ↔ diffusers names', () => {
  for (const cfg of [WAN21_I2V_14B, WAN21_FLF2V_14B, WAN22_TI2V_5B, WAN_TINY]) {
    it(`${cfg.name}: every tensor maps, no two onto one, and back to itself`, () => {
      const wan = [...wanTransformerShapes(cfg).tensors.keys()];
      const diff = wan.map(wanToDiffusers);
      expect(new Set(diff).size).toBe(wan.length);
      expect(diff.map(diffusersToWan)).toEqual(wan);
    });
  }

  it('the renamings diffusers makes, including norm3 → norm2 and the I2V image keys', () => {
    expect(wanToDiffusers('blocks.3.self_attn.o.weight')).toBe('blocks.3.attn1.to_out.0.weight');
    expect(wanToDiffusers('blocks.3.norm3.bias')).toBe('blocks.3.norm2.bias');
    expect(wanToDiffusers('blocks.3.cross_attn.k_img.weight')).toBe('blocks.3.attn2.add_k_proj.weight');
    expect(wanToDiffusers('blocks.3.cross_attn.k.weight')).toBe('blocks.3.attn2.to_k.weight');
    expect(wanToDiffusers('blocks.3.cross_attn.norm_k_img.weight')).toBe('blocks.3.attn2.norm_added_k.weight');
    expect(wanToDiffusers('blocks.3.modulation')).toBe('blocks.3.scale_shift_table');
    expect(wanToDiffusers('blocks.3.ffn.0.weight')).toBe('blocks.3.ffn.net.0.proj.weight');
    expect(wanToDiffusers('head.modulation')).toBe('scale_shift_table');
    expect(wanToDiffusers('head.head.bias')).toBe('proj_out.bias');
    expect(wanToDiffusers('time_projection.1.weight')).toBe('condition_embedder.time_proj.weight');
    expect(wanToDiffusers('img_emb.proj.4.weight')).toBe('condition_embedder.image_embedder.norm2.weight');
    expect(wanToDiffusers('img_emb.emb_pos')).toBe('condition_embedder.image_embedder.pos_embed');
    expect(() => wanToDiffusers('blocks.0.self_attn.qkv.weight')).toThrow(/not a Wan-format name/);
  });
});

describe('Wan detection from keys', () => {
  const file = (cfg: WanTransformerConfig, layout: 'wan' | 'diffusers', prefix: string) => {
    const shapes = new Map([...wanTransformerShapes(cfg).tensors].map(([k, s]) => [prefix + (layout === 'wan' ? k : wanToDiffusers(k)), s]));
    return { keys: [...shapes.keys()], shapeOf: (k: string) => shapes.get(k) };
  };

  for (const cfg of [WAN21_T2V_1_3B, WAN21_I2V_14B, WAN21_FLF2V_14B, WAN22_I2V_A14B, WAN22_TI2V_5B]) {
    for (const [layout, prefix] of [['wan', ''], ['wan', 'model.diffusion_model.'], ['diffusers', ''], ['diffusers', 'transformer.']] as const) {
      it(`${cfg.name} in ${layout} names${prefix ? ` under ${prefix}` : ''}`, () => {
        const f = file(cfg, layout, prefix);
        const d = detectWanTransformer(f.keys, f.shapeOf)!;
        expect(d.variant).toBe(cfg.name);
        expect(d.config).toBe(cfg);
        expect(d.layout).toBe(layout);
        expect(d.prefix).toBe(prefix);
        expect(d.sameKeysAs).toEqual([]);
      });
    }
  }

  it('14B T2V: 2.1 and the 2.2 expert share every tensor; the file name picks, and names the expert', () => {
    const f = file(WAN21_T2V_14B, 'wan', 'model.diffusion_model.');
    const plain = detectWanTransformer(f.keys, f.shapeOf, { fileName: 'wan2.1_t2v_14B_bf16.safetensors' })!;
    expect(plain.variant).toBe('wan2.1-t2v-14b');
    expect(plain.sameKeysAs).toEqual(['wan2.2-t2v-a14b']);
    const high = detectWanTransformer(f.keys, f.shapeOf, { fileName: 'wan2.2_t2v_high_noise_14B_fp16.safetensors' })!;
    expect(high.variant).toBe('wan2.2-t2v-a14b');
    expect(high.expert).toBe('high_noise');
    expect(detectWanTransformer(f.keys, f.shapeOf, { fileName: 'my_low-noise.safetensors' })!.expert).toBe('low_noise');
  });

  it('FLF2V is told from I2V by img_emb.emb_pos alone; positions for another token count are refused', () => {
    const f = file(WAN21_FLF2V_14B, 'wan', 'model.diffusion_model.');
    expect(detectWanTransformer(f.keys, f.shapeOf)!.config.firstLastFrame).toBe(true);
    const without = f.keys.filter((k) => !k.endsWith('emb_pos'));
    expect(detectWanTransformer(without, f.shapeOf)!.variant).toBe('wan2.1-i2v-14b');
    const odd = (k: string) => (k.endsWith('emb_pos') ? [1, 257, 1280] : f.shapeOf(k));
    expect(() => detectWanTransformer(f.keys, odd)).toThrow(/emb_pos is \[1,257,1280\]; Wan 2\.1 FLF2V's holds \[1, 514, 1280\]/);
  });

  it('custom sizes (the tiny model) need the head count from metadata; FLUX names are not Wan', () => {
    const f = file(WAN_TINY, 'wan', '');
    expect(() => detectWanTransformer(f.keys, f.shapeOf)).toThrow(/head count/);
    const d = detectWanTransformer(f.keys, f.shapeOf, { numHeads: 4 })!;
    expect(d.variant).toBeUndefined();
    const { name: _a, ...got } = d.config;
    const { name: _b, ...want } = WAN_TINY;
    expect(got).toEqual(want);
    expect(detectWanTransformer(['double_blocks.0.img_attn.qkv.weight', 'img_in.weight'], () => [1, 1])).toBeUndefined();
  });
});
