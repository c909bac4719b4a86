// Adapter sets over a family: kohya names from the LoRA components; a family's own preset (as FLUX
// defines over its BFL paths) picks the denoiser modules, with include/exclude still applied on top.
import { describe, it, expect } from 'vitest';
import { familyAdapters } from '../../../kernels/families/adapters';
import type { ModelFamily } from '../../../kernels/families/contract';
import { sd1Family } from '../../../kernels/sd/sd1-family';
import { tinyConfig } from '../../../kernels/sd/config';

const cfg = tinyConfig();
const opts = { algo: 'lora' as const, rank: 2, alpha: 2, trainTextEncoder: true };

describe('familyAdapters', () => {
  it('names modules with each component\'s kohya prefix', () => {
    const sets = familyAdapters(sd1Family, cfg, { ...opts, targets: { preset: 'attention' } });
    expect(sets.denoiser.modules.every((m) => m.name.startsWith('lora_unet_down_blocks_') || m.name.startsWith('lora_unet_mid_block_') || m.name.startsWith('lora_unet_up_blocks_'))).toBe(true);
    expect(sets.text).toHaveLength(1);
    expect(sets.text[0].modules[0].name).toBe('lora_te_text_model_encoder_layers_0_self_attn_q_proj');
  });

  it('a family preset replaces the generic one for the denoiser; include/exclude narrow it; text encoders keep the generic preset', () => {
    const family: ModelFamily = { ...sd1Family, presetFilter: (p) => (p === 'attention' ? (m) => /attn2\.to_k$/.test(m.module) : undefined) };
    const own = familyAdapters(family, cfg, { ...opts, targets: { preset: 'attention' } });
    const generic = familyAdapters(sd1Family, cfg, { ...opts, targets: { preset: 'attention' } });
    expect(own.denoiser.modules.length).toBeGreaterThan(0);
    expect(own.denoiser.modules.every((m) => m.info.module.endsWith('attn2.to_k'))).toBe(true);
    expect(own.denoiser.modules.length).toBe(generic.denoiser.modules.filter((m) => m.info.module.endsWith('attn2.to_k')).length);
    expect(own.text[0].modules.map((m) => m.name)).toEqual(generic.text[0].modules.map((m) => m.name));
    const up = familyAdapters(family, cfg, { ...opts, targets: { preset: 'attention', include: ['up_blocks.*'] } });
    expect(up.denoiser.modules.length).toBeGreaterThan(0);
    expect(up.denoiser.modules.every((m) => m.info.module.startsWith('up_blocks.') && m.info.module.endsWith('attn2.to_k'))).toBe(true);
    // A preset the family does not define falls back to the generic rule.
    expect(familyAdapters(family, cfg, { ...opts, targets: { preset: 'all_linear' } }).denoiser.modules.length)
      .toBe(familyAdapters(sd1Family, cfg, { ...opts, targets: { preset: 'all_linear' } }).denoiser.modules.length);
  });
});
