// Wan LoRA targets and names (ai-toolkit, kohya/musubi, diffusers; lightx2v-style files read), and the
// Wan 2.2 dual-expert logic: which expert a timestep belongs to, which expert trains at a step, and the
// per-expert file names ai-toolkit writes.
import { describe, it, expect } from 'vitest';
import { WAN21_FLF2V_14B, WAN21_I2V_14B, WAN21_T2V_1_3B, WAN22_I2V_A14B, WAN22_T2V_A14B, WAN_TINY } from '../../../kernels/wan/config';
import { wanTransformerShapes } from '../../../kernels/wan/shapes';
import { readWanLora, wanLoraStem, wanTargetSpec, writeWanLora, WAN_LORA_FORMATS, type WanLoraModule } from '../../../kernels/wan/lora';
import {
  defaultExpertBoundary, expertForTimestep, expertLoraFileName, expertsForSchedule, parseExpertLoraFileName, wanMultistage,
} from '../../../kernels/wan/experts';
import { selectTargets } from '../../../kernels/adapters/targets';
import { stageAt, withStageRange } from '../../../kernels/schedules/multistage';
import { rand } from '../gradcheck';

const targets = (cfg = WAN22_T2V_A14B, preset: Parameters<typeof wanTargetSpec>[0] = 'blocks') => selectTargets(wanTransformerShapes(cfg).modules, wanTargetSpec(preset)).map((m) => m.module);

describe('Wan LoRA targets and names', () => {
  it('blocks preset: the 10 linear layers of each block (400 for a 14B expert, 12 per block with 2.1 I2V image keys)', () => {
    const t = targets();
    expect(t.length).toBe(400);
    expect(t.slice(0, 10)).toEqual(['q', 'k', 'v', 'o'].map((n) => `blocks.0.self_attn.${n}`).concat(['q', 'k', 'v', 'o'].map((n) => `blocks.0.cross_attn.${n}`), ['blocks.0.ffn.0', 'blocks.0.ffn.2']));
    expect(targets(WAN21_I2V_14B).length).toBe(480);
    // 2.1 FLF2V: the same modules as 2.1 I2V (emb_pos is a parameter, not a layer), so the same LoRA names.
    expect(targets(WAN21_FLF2V_14B)).toEqual(targets(WAN21_I2V_14B));
    expect(targets(WAN21_T2V_1_3B, 'attention').length).toBe(240);
    expect(targets(WAN21_T2V_1_3B, 'all_linear')).toContain('time_projection.1');
  });

  it('stems: ai-toolkit diffusion_model.<Wan path>, musubi lora_unet_<path with _>, diffusers transformer.<diffusers path>', () => {
    expect(wanLoraStem('blocks.0.self_attn.q', 'ai-toolkit')).toBe('diffusion_model.blocks.0.self_attn.q');
    expect(wanLoraStem('blocks.0.self_attn.q', 'kohya')).toBe('lora_unet_blocks_0_self_attn_q');
    expect(wanLoraStem('blocks.0.self_attn.q', 'diffusers')).toBe('transformer.blocks.0.attn1.to_q');
    expect(wanLoraStem('blocks.7.cross_attn.k_img', 'diffusers')).toBe('transformer.blocks.7.attn2.add_k_proj');
    expect(wanLoraStem('blocks.7.ffn.2', 'kohya')).toBe('lora_unet_blocks_7_ffn_2');
  });

  const modules = () => {
    const m = new Map<string, WanLoraModule>();
    const add = (path: string, inF: number, outF: number, rank: number, alpha: number) =>
      m.set(path, { down: rand(rank * inF), up: rand(outF * rank), rank, inFeatures: inF, outFeatures: outF, alpha });
    add('blocks.0.self_attn.q', 48, 48, 4, 2);
    add('blocks.1.cross_attn.o', 48, 48, 4, 2);
    add('blocks.1.ffn.0', 48, 96, 2, 2);
    return m;
  };
  const delta = (m: WanLoraModule) => {
    const w = new Float64Array(m.outFeatures * m.inFeatures);
    for (let o = 0; o < m.outFeatures; o++) for (let r = 0; r < m.rank; r++) for (let i = 0; i < m.inFeatures; i++) w[o * m.inFeatures + i] += (m.up[o * m.rank + r] * m.down[r * m.inFeatures + i] * m.alpha) / m.rank;
    return w;
  };

  for (const format of WAN_LORA_FORMATS) {
    it(`${format}: written files read back to the same weight deltas`, () => {
      const src = modules();
      const file = writeWanLora(WAN_TINY, src, format);
      expect(file.size).toBe(format === 'kohya' ? 9 : 6);
      const back = readWanLora(WAN_TINY, file);
      expect([...back.keys()].sort()).toEqual([...src.keys()].sort());
      for (const [k, m] of src) {
        const a = delta(m), b = delta(back.get(k)!);
        expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThan(1e-6);
      }
      if (format === 'ai-toolkit') expect(file.has('diffusion_model.blocks.0.self_attn.q.lora_A.weight')).toBe(true);
      if (format === 'kohya') expect(file.get('lora_unet_blocks_0_self_attn_q.alpha')!.data[0]).toBe(2);
    });
  }

  it('reads diffusion_model.… lora_down/lora_up/alpha files (lightx2v layout) and refuses names of no layer', () => {
    const d = rand(2 * 48), u = rand(48 * 2);
    const f = new Map([
      ['diffusion_model.blocks.1.self_attn.v.lora_down.weight', { dtype: 'float32' as const, shape: [2, 48], data: d }],
      ['diffusion_model.blocks.1.self_attn.v.lora_up.weight', { dtype: 'float32' as const, shape: [48, 2], data: u }],
      ['diffusion_model.blocks.1.self_attn.v.alpha', { dtype: 'float32' as const, shape: [], data: Float32Array.of(1) }],
    ]);
    const m = readWanLora(WAN_TINY, f).get('blocks.1.self_attn.v')!;
    expect(m.alpha).toBe(1);
    expect(m.rank).toBe(2);
    f.set('diffusion_model.blocks.9.self_attn.v.lora_down.weight', f.get('diffusion_model.blocks.1.self_attn.v.lora_down.weight')!);
    expect(() => readWanLora(WAN_TINY, f)).toThrow(/names no linear layer/);
  });
});

describe('Wan 2.2 experts', () => {
  it('official boundaries: 0.875 T2V, 0.900 I2V; t ≥ boundary is the high-noise expert', () => {
    expect(defaultExpertBoundary(WAN22_T2V_A14B)).toBe(0.875);
    expect(defaultExpertBoundary(WAN22_I2V_A14B)).toBe(0.9);
    expect(expertForTimestep(0.875, 0.875)).toBe('high_noise');
    expect(expertForTimestep(0.8749, 0.875)).toBe('low_noise');
    expect(expertsForSchedule([1, 0.95, 0.9, 0.85, 0.3], 0.9)).toEqual(['high_noise', 'high_noise', 'high_noise', 'low_noise', 'low_noise']);
    expect(() => expertForTimestep(0.5, 1)).toThrow(/boundary/);
  });

  it('training alternates every N steps between the trained experts, each on its own band of timesteps', () => {
    const ms = wanMultistage({ boundary: 0.875, switchEvery: 3 });
    expect([0, 1, 2, 3, 4, 5, 6].map((s) => stageAt(s, ms).name)).toEqual(['high_noise', 'high_noise', 'high_noise', 'low_noise', 'low_noise', 'low_noise', 'high_noise']);
    const high = stageAt(0, ms);
    expect(withStageRange({ timestepType: 'linear' }, high)).toMatchObject({ minTimestep: 0.875, maxTimestep: 1 });
    const lowOnly = wanMultistage({ boundary: 0.9, switchEvery: 5, train: { high_noise: false } });
    expect(new Set([0, 5, 10, 17].map((s) => stageAt(s, lowOnly).name))).toEqual(new Set(['low_noise']));
  });

  it('file names as ai-toolkit writes them, and read back', () => {
    expect(expertLoraFileName('walk', 'high_noise', 500)).toBe('walk_000000500_high_noise.safetensors');
    expect(expertLoraFileName('walk', 'low_noise')).toBe('walk_low_noise.safetensors');
    expect(parseExpertLoraFileName('my_walk_000000500_low_noise.safetensors')).toEqual({ name: 'my_walk', step: 500, expert: 'low_noise' });
    expect(parseExpertLoraFileName('walk_high_noise.safetensors')).toEqual({ name: 'walk', step: undefined, expert: 'high_noise' });
    expect(parseExpertLoraFileName('walk_000000500.safetensors')).toBeUndefined();
  });
});
