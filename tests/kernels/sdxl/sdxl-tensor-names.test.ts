// The full SDXL config, built without allocating weights, asks for exactly the real checkpoint's
// tensors: parameter counts as published, the SGM UNet layout derived here independently of the model
// code (from the SGM block structure), bigG's fused in_proj and transposed projection, and a
// single-file ↔ diffusers map that covers every tensor once. kohya/PEFT LoRA names and target counts.
import { describe, it, expect } from 'vitest';
import { SDXL_BASE } from '../../../kernels/sdxl/config';
import { sdxlComponentTensors, SDXL_COMPONENTS, SdxlKeyMap, singleFileShape, isIgnoredSdxlKey, type SdxlComponent } from '../../../kernels/sdxl/keys';
import { isSdxlKohyaDefaultTarget, sdxlKohyaName, sdxlPeftName, SDXL_LORA_COMPONENTS, SDXL_LORA_METADATA } from '../../../kernels/sdxl/lora-names';

const count = (shapes: Iterable<number[]>) => [...shapes].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
const tensors = Object.fromEntries(SDXL_COMPONENTS.map((c) => [c, sdxlComponentTensors(SDXL_BASE, c)])) as Record<SdxlComponent, ReturnType<typeof sdxlComponentTensors>>;
const map = new SdxlKeyMap(SDXL_BASE);

/** SGM's UNet (sgm.modules.diffusionmodules.openaimodel with SDXL's config), written out block by block. */
function sgmUnetLayout(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const put = (k: string, s: number[]) => m.set(`model.diffusion_model.${k}`, s);
  const lin = (k: string, o: number, i: number, bias = true) => { put(`${k}.weight`, [o, i]); if (bias) put(`${k}.bias`, [o]); };
  const conv = (k: string, o: number, i: number, ks: number) => { put(`${k}.weight`, [o, i, ks, ks]); put(`${k}.bias`, [o]); };
  const norm = (k: string, c: number) => { put(`${k}.weight`, [c]); put(`${k}.bias`, [c]); };
  const res = (k: string, cin: number, cout: number) => {
    norm(`${k}.in_layers.0`, cin); conv(`${k}.in_layers.2`, cout, cin, 3); lin(`${k}.emb_layers.1`, cout, 1280);
    norm(`${k}.out_layers.0`, cout); conv(`${k}.out_layers.3`, cout, cout, 3);
    if (cin !== cout) conv(`${k}.skip_connection`, cout, cin, 1);
  };
  const spatial = (k: string, c: number, depth: number) => {
    norm(`${k}.norm`, c); lin(`${k}.proj_in`, c, c);
    for (let d = 0; d < depth; d++) {
      const t = `${k}.transformer_blocks.${d}`;
      for (const a of ['attn1', 'attn2']) {
        const ctx = a === 'attn1' ? c : 2048;
        lin(`${t}.${a}.to_q`, c, c, false); lin(`${t}.${a}.to_k`, c, ctx, false); lin(`${t}.${a}.to_v`, c, ctx, false); lin(`${t}.${a}.to_out.0`, c, c);
      }
      for (const n of ['norm1', 'norm2', 'norm3']) norm(`${t}.${n}`, c);
      lin(`${t}.ff.net.0.proj`, 8 * c, c); lin(`${t}.ff.net.2`, c, 4 * c);
    }
    lin(`${k}.proj_out`, c, c);
  };
  lin('time_embed.0', 1280, 320); lin('time_embed.2', 1280, 1280);
  lin('label_emb.0.0', 1280, 2816); lin('label_emb.0.2', 1280, 1280);
  conv('input_blocks.0.0', 320, 4, 3);
  res('input_blocks.1.0', 320, 320); res('input_blocks.2.0', 320, 320); conv('input_blocks.3.0.op', 320, 320, 3);
  res('input_blocks.4.0', 320, 640); spatial('input_blocks.4.1', 640, 2); res('input_blocks.5.0', 640, 640); spatial('input_blocks.5.1', 640, 2);
  conv('input_blocks.6.0.op', 640, 640, 3);
  res('input_blocks.7.0', 640, 1280); spatial('input_blocks.7.1', 1280, 10); res('input_blocks.8.0', 1280, 1280); spatial('input_blocks.8.1', 1280, 10);
  res('middle_block.0', 1280, 1280); spatial('middle_block.1', 1280, 10); res('middle_block.2', 1280, 1280);
  const skips = [320, 320, 320, 320, 640, 640, 640, 1280, 1280];
  const outs = [1280, 1280, 1280, 640, 640, 640, 320, 320, 320];
  let h = 1280;
  outs.forEach((c, i) => {
    res(`output_blocks.${i}.0`, h + skips.pop()!, c);
    if (c !== 320) spatial(`output_blocks.${i}.1`, c, c === 1280 ? 10 : 2);
    if (i === 2 || i === 5) conv(`output_blocks.${i}.2.conv`, c, c, 3);
    h = c;
  });
  norm('out.0', 320); conv('out.2', 4, 320, 3);
  return m;
}

describe('SDXL tensor names and shapes', () => {
  it('parameter counts match the published SDXL 1.0 base sizes', () => {
    expect(count(tensors.unet.shapes.values())).toBe(2_567_463_684);
    expect(count(tensors.text_encoder.shapes.values())).toBe(123_060_480);
    expect(count(tensors.text_encoder_2.shapes.values())).toBe(694_659_840);
    expect(count(tensors.vae.shapes.values())).toBe(83_653_863);
  });

  it('the UNet in single-file names is exactly SGM\'s block layout (names and shapes)', () => {
    const want = sgmUnetLayout();
    expect(count(want.values())).toBe(2_567_463_684);
    const got = new Map(map.singleFileKeys().filter((k) => k.startsWith('model.diffusion_model.')).map((k) => [k, map.singleFileShape(k)!]));
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, s] of want) expect(got.get(k), k).toEqual(s);
  });

  it('single-file keys: 2513 model tensors (2515 with logit_scale and position_ids, as sd_xl_base_1.0), bigG fused and transposed', () => {
    const keys = map.singleFileKeys();
    expect(keys.length).toBe(2513);
    expect(keys.filter((k) => k.startsWith('conditioner.embedders.1.model.')).length).toBe(517 - 2 * 32 * 2);
    for (let i = 0; i < 32; i++) {
      expect(map.singleFileShape(`conditioner.embedders.1.model.transformer.resblocks.${i}.attn.in_proj_weight`)).toEqual([3840, 1280]);
      expect(map.singleFileShape(`conditioner.embedders.1.model.transformer.resblocks.${i}.attn.in_proj_bias`)).toEqual([3840]);
    }
    expect(map.singleFileShape('conditioner.embedders.1.model.text_projection')).toEqual([1280, 1280]);
    expect(map.singleFileShape('conditioner.embedders.1.model.positional_embedding')).toEqual([77, 1280]);
    expect(map.singleFileShape('conditioner.embedders.0.transformer.text_model.final_layer_norm.weight')).toEqual([768]);
    expect(map.singleFileShape('first_stage_model.decoder.mid.attn_1.q.weight')).toEqual([512, 512, 1, 1]);
    expect(map.singleFileShape('model.diffusion_model.label_emb.0.0.weight')).toEqual([1280, 2816]);
    expect(map.singleFileShape('model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight')).toEqual([640, 640]);
    for (const k of ['conditioner.embedders.1.model.logit_scale', 'conditioner.embedders.0.transformer.text_model.embeddings.position_ids']) {
      expect(map.toDiffusers(k), k).toBeUndefined();
      expect(isIgnoredSdxlKey(k), k).toBe(true);
    }
  });

  it('single file ↔ diffusers is a bijection over every tensor (fused in_proj = q, k, v rows; text_projection transposed)', () => {
    const seen = new Set<string>();
    for (const key of map.singleFileKeys()) {
      const parts = map.toDiffusers(key)!;
      expect(parts.length === 1 || parts.length === 3, key).toBe(true);
      parts.forEach((p, i) => {
        expect(p, `${key} part ${i}`).toBeDefined();
        const slot = map.toSingleFile(p.component, p.name)!;
        expect(slot.key).toBe(key);
        expect(slot.part ?? 0).toBe(i);
        expect(singleFileShape(slot, p.shape)).toEqual(map.singleFileShape(key));
        expect(tensors[p.component].shapes.get(p.name)).toEqual(p.shape);
        const id = `${p.component}/${p.name}`;
        expect(seen.has(id), id).toBe(false);
        seen.add(id);
      });
      if (parts.length === 3) expect(parts.map((p) => p.name.replace(/.*self_attn\.(\w)_proj.*/, '$1'))).toEqual(['q', 'k', 'v']);
    }
    expect(seen.size).toBe(SDXL_COMPONENTS.reduce((n, c) => n + tensors[c].shapes.size, 0));
    expect(map.toSingleFile('text_encoder_2', 'text_projection.weight')).toEqual({ key: 'conditioner.embedders.1.model.text_projection', transpose: true });
    expect(map.toSingleFile('text_encoder_2', 'text_model.encoder.layers.31.self_attn.v_proj.bias'))
      .toEqual({ key: 'conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_bias', part: 2 });
    expect(map.toSingleFile('text_encoder_2', 'text_model.encoder.layers.0.mlp.fc1.weight')?.key).toBe('conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.weight');
    expect(map.toSingleFile('unet', 'add_embedding.linear_2.bias')?.key).toBe('model.diffusion_model.label_emb.0.2.bias');
    expect(map.toSingleFile('unet', 'up_blocks.0.upsamplers.0.conv.weight')?.key).toBe('model.diffusion_model.output_blocks.2.2.conv.weight');
    expect(map.toSingleFile('text_encoder', 'text_model.encoder.layers.11.mlp.fc2.bias')?.key).toBe('conditioner.embedders.0.transformer.text_model.encoder.layers.11.mlp.fc2.bias');
  });
});

describe('SDXL LoRA names', () => {
  const targets = (c: (typeof SDXL_LORA_COMPONENTS)[number]) => tensors[c].modules.filter((m) => isSdxlKohyaDefaultTarget(c, m));

  it('kohya trains 722 UNet linears, 72 in CLIP-L and 192 in bigG', () => {
    expect(targets('unet').length).toBe(722);
    expect(targets('text_encoder').length).toBe(72);
    expect(targets('text_encoder_2').length).toBe(192);
  });

  it('kohya names are SGM paths for the UNet and transformers paths for te1/te2, unique and reversible', () => {
    const names = new Map<string, string>();
    for (const c of SDXL_LORA_COMPONENTS) {
      for (const m of tensors[c].modules) {
        const n = sdxlKohyaName(c, m.module, SDXL_BASE.unet);
        expect(names.has(n), n).toBe(false);
        names.set(n, `${c}/${m.module}`);
      }
    }
    expect(sdxlKohyaName('unet', 'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q', SDXL_BASE.unet)).toBe('lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q');
    expect(sdxlKohyaName('unet', 'mid_block.attentions.0.transformer_blocks.9.ff.net.0.proj', SDXL_BASE.unet)).toBe('lora_unet_middle_block_1_transformer_blocks_9_ff_net_0_proj');
    expect(sdxlKohyaName('unet', 'up_blocks.1.attentions.2.proj_out', SDXL_BASE.unet)).toBe('lora_unet_output_blocks_5_1_proj_out');
    expect(sdxlKohyaName('unet', 'down_blocks.0.resnets.0.conv1', SDXL_BASE.unet)).toBe('lora_unet_input_blocks_1_0_in_layers_2');
    expect(sdxlKohyaName('text_encoder', 'text_model.encoder.layers.0.self_attn.q_proj', SDXL_BASE.unet)).toBe('lora_te1_text_model_encoder_layers_0_self_attn_q_proj');
    expect(sdxlKohyaName('text_encoder_2', 'text_model.encoder.layers.31.mlp.fc2', SDXL_BASE.unet)).toBe('lora_te2_text_model_encoder_layers_31_mlp_fc2');
    const unetTargets = targets('unet').map((m) => sdxlKohyaName('unet', m.module, SDXL_BASE.unet));
    expect(unetTargets.every((n) => /^lora_unet_(input_blocks_[4578]_1|middle_block_1|output_blocks_[0-5]_1)_/.test(n))).toBe(true);
  });

  it('PEFT names keep the diffusers paths under unet / text_encoder / text_encoder_2; metadata names SDXL base', () => {
    expect(sdxlPeftName('unet', 'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q')).toBe('unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q');
    expect(sdxlPeftName('text_encoder_2', 'text_model.encoder.layers.3.self_attn.k_proj')).toBe('text_encoder_2.text_model.encoder.layers.3.self_attn.k_proj');
    expect(SDXL_LORA_METADATA).toEqual({ ss_base_model_version: 'sdxl_base_v1-0', 'modelspec.architecture': 'stable-diffusion-xl-v1-base/lora' });
  });
});
