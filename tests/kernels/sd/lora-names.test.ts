// LoRA module names for SD 1.5 exactly as kohya, diffusers and PEFT write them, both ways.
import { describe, it, expect } from 'vitest';
import { SD15 } from '../../../kernels/sd/config';
import { componentTensors } from '../../../kernels/sd/keys/expected';
import { LoraNames, kohyaName, kohyaKeys, peftKeys, diffusersKeys, parseDiffusersKey, isKohyaDefaultTarget } from '../../../kernels/sd/lora-names';

const unetModules = componentTensors(SD15, 'unet').modules;
const teModules = componentTensors(SD15, 'text_encoder').modules;

describe('SD 1.x LoRA names', () => {
  it('kohya names of well-known modules', () => {
    expect(kohyaName('unet', 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q')).toBe('lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q');
    expect(kohyaName('unet', 'up_blocks.3.attentions.2.transformer_blocks.0.ff.net.0.proj')).toBe('lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_0_proj');
    expect(kohyaName('unet', 'down_blocks.0.resnets.0.conv1')).toBe('lora_unet_down_blocks_0_resnets_0_conv1');
    expect(kohyaName('text_encoder', 'text_model.encoder.layers.0.self_attn.q_proj')).toBe('lora_te_text_model_encoder_layers_0_self_attn_q_proj');
    expect(kohyaKeys('unet', 'mid_block.attentions.0.proj_in')).toEqual({
      down: 'lora_unet_mid_block_attentions_0_proj_in.lora_down.weight', up: 'lora_unet_mid_block_attentions_0_proj_in.lora_up.weight', alpha: 'lora_unet_mid_block_attentions_0_proj_in.alpha',
    });
    expect(peftKeys('text_encoder', 'text_model.encoder.layers.0.self_attn.q_proj').down).toBe('text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight');
    expect(peftKeys('unet', 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q').up).toBe('unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight');
  });

  it("diffusers names: attention projections as diffusers' processors named them, other modules LoRACompatible, text encoder lora_linear_layer", () => {
    const block = 'down_blocks.0.attentions.0.transformer_blocks.0';
    expect(diffusersKeys('unet', `${block}.attn1.to_q`)).toEqual({ down: `unet.${block}.attn1.processor.to_q_lora.down.weight`, up: `unet.${block}.attn1.processor.to_q_lora.up.weight` });
    expect(diffusersKeys('unet', `${block}.attn2.to_out.0`).down).toBe(`unet.${block}.attn2.processor.to_out_lora.down.weight`);
    expect(diffusersKeys('unet', `${block}.ff.net.0.proj`).up).toBe(`unet.${block}.ff.net.0.proj.lora.up.weight`);
    expect(diffusersKeys('unet', 'down_blocks.0.resnets.0.conv1').down).toBe('unet.down_blocks.0.resnets.0.conv1.lora.down.weight');
    expect(diffusersKeys('text_encoder', 'text_model.encoder.layers.3.self_attn.out_proj').up).toBe('text_encoder.text_model.encoder.layers.3.self_attn.out_proj.lora_linear_layer.up.weight');
    expect(diffusersKeys('text_encoder_2', 'text_model.encoder.layers.31.mlp.fc2').down).toBe('text_encoder_2.text_model.encoder.layers.31.mlp.fc2.lora_linear_layer.down.weight');
    expect(diffusersKeys('transformer', 'transformer_blocks.0.attn.to_q').down).toBe('transformer.transformer_blocks.0.attn.to_q.lora_A.weight');
    // What diffusers' and kohya's other layouts name the same modules reads back too.
    expect(parseDiffusersKey(`unet.${block}.attn1.to_out.0.lora_B.weight`)).toEqual({ component: 'unet', module: `${block}.attn1.to_out.0`, part: 'up' });
    expect(parseDiffusersKey('text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.down.weight')).toEqual({ component: 'text_encoder', module: 'text_model.encoder.layers.0.self_attn.k_proj', part: 'down' });
    expect(parseDiffusersKey('lora_unet_x.lora_down.weight')).toBeUndefined();
  });

  it('every SD 1.5 module round-trips through both formats, and no two modules share a kohya name', () => {
    const names = new LoraNames({ unet: unetModules, text_encoder: teModules });
    for (const [component, mods] of [['unet', unetModules], ['text_encoder', teModules]] as const) {
      for (const m of mods) {
        expect(names.fromKohya(kohyaKeys(component, m.module).down)?.module).toBe(m.module);
        expect(names.fromPeft(peftKeys(component, m.module).up)).toMatchObject({ component, module: m.module });
        expect(names.fromDiffusers(peftKeys(component, m.module).down)).toMatchObject({ component, module: m.module, part: 'down' });
        expect(names.fromDiffusers(diffusersKeys(component, m.module).up)).toMatchObject({ component, module: m.module, part: 'up' });
      }
    }
    expect(names.fromKohya('lora_unet_down_blocks_9_resnets_0_conv1')).toBeUndefined();
  });

  it("kohya's default SD 1.5 LoRA covers 192 UNet and 72 text-encoder modules", () => {
    expect(unetModules.filter((m) => isKohyaDefaultTarget('unet', m))).toHaveLength(192);
    expect(teModules.filter((m) => isKohyaDefaultTarget('text_encoder', m))).toHaveLength(72);
  });
});
