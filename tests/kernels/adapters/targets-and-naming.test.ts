// Target presets and include/exclude patterns pick the modules trainers expect, and tensors get the
// names kohya writes (so ComfyUI loads the file).
import { describe, it, expect } from 'vitest';
import { mkdtempSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { AdapterSet, selectTargets, kohyaNamer, factorization, type TargetSpec } from '../../../kernels/adapters';
import { writeSafetensors, openSafetensors } from '../../../kernels/io/safetensors';
import { tinyModel, IMAGE, ALL_MODULES } from './tiny-model';

function modules() {
  const b = new K.Builder(new K.ShapeRecorder());
  tinyModel(b, K.input('x', IMAGE));
  return b.modules;
}
const pick = (spec: TargetSpec) => selectTargets(modules(), spec).map((m) => m.module.replace('mid_block.attentions.0.', '').replace('transformer_blocks.0.', ''));

describe('target selection', () => {
  it('the builder reports every module', () => {
    expect(modules().map((m) => m.module)).toEqual(ALL_MODULES);
  });
  it('presets: attention, + feed-forward, all linear (with 1×1 convs), + convs', () => {
    expect(pick({ preset: 'attention' })).toEqual(['attn1.to_q', 'attn1.to_k', 'attn1.to_v', 'attn1.to_out.0']);
    expect(pick({ preset: 'attention_ff' })).toEqual(['attn1.to_q', 'attn1.to_k', 'attn1.to_v', 'attn1.to_out.0', 'ff.net.0.proj', 'ff.net.2']);
    expect(pick({ preset: 'all_linear' })).toEqual(['attn1.to_q', 'attn1.to_k', 'attn1.to_v', 'attn1.to_out.0', 'ff.net.0.proj', 'ff.net.2', 'proj_out']);
    expect(pick({ preset: 'all_linear_conv' })).toHaveLength(ALL_MODULES.length);
  });
  it('include narrows (glob or /regex/), exclude removes', () => {
    expect(pick({ preset: 'attention', include: ['*to_q', '*to_v'] })).toEqual(['attn1.to_q', 'attn1.to_v']);
    expect(pick({ preset: 'all_linear_conv', include: ['/^conv_/'] })).toEqual(['conv_in', 'conv_down']);
    expect(pick({ preset: 'attention_ff', exclude: ['*.ff.*', '/to_k$/'] })).toEqual(['attn1.to_q', 'attn1.to_v', 'attn1.to_out.0']);
    expect(pick({ preset: 'attention', include: ['attn1.to_q'] })).toEqual([]); // a glob matches the whole path
  });
  it('bad presets and patterns are reported by name', () => {
    expect(() => pick({ preset: 'everything' as never })).toThrow(/unknown target preset 'everything'/);
    expect(() => pick({ include: ['/attn[/'] })).toThrow(/target pattern \/attn\[\//);
  });
});

describe('naming and files', () => {
  it('kohya names: prefix + path with underscores; roots map sub-models', () => {
    const n = kohyaNamer({ text_encoder: 'lora_te', unet: 'lora_unet' });
    expect(n('unet.down_blocks.0.attentions.1.proj_in')).toBe('lora_unet_down_blocks_0_attentions_1_proj_in');
    expect(n('text_encoder.text_model.encoder.layers.0.mlp.fc1')).toBe('lora_te_text_model_encoder_layers_0_mlp_fc1');
    expect(kohyaNamer()('mid_block.attentions.0.proj_out')).toBe('lora_unet_mid_block_attentions_0_proj_out');
  });

  it('LoRA/LoCon tensors, alpha, count and exact file size', async () => {
    const set = new AdapterSet({ rank: 2, alpha: 1, convRank: 3, convAlpha: 6, targets: { preset: 'all_linear_conv' } });
    tinyModel(new K.Builder(new K.ShapeRecorder(), set.hook()), K.input('x', IMAGE));
    const keys = Object.keys(set.params);
    expect(keys).toContain('lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight');
    expect(keys).toContain('lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_up.weight');
    const specs = Object.fromEntries(set.paramSpecs.map((p) => [p.key, p.shape]));
    expect(specs['lora_unet_conv_in.lora_down.weight']).toEqual([3, 4, 3, 3]);
    expect(specs['lora_unet_conv_in.lora_up.weight']).toEqual([8, 3, 1, 1]);
    expect(specs['lora_unet_mid_block_attentions_0_proj_out.lora_down.weight']).toEqual([2, 8, 1, 1]);
    expect(specs['lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj.lora_up.weight']).toEqual([16, 2]);
    const algos = Object.fromEntries(set.modules.map((m) => [m.info.module, [m.algo, m.scale]]));
    expect(algos.conv_in).toEqual(['locon', 2]);
    expect(algos['mid_block.attentions.0.proj_out']).toEqual(['lora', 0.5]);
    expect(set.trainableCount).toBe(set.paramSpecs.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0));

    const dir = mkdtempSync(join(tmpdir(), 'adapters-'));
    try {
      const path = join(dir, 'my_lora.safetensors');
      const values = set.initialValues(42);
      await writeSafetensors(path, set.fileTensors(values, 'F16'), { ss_network_dim: '2' });
      expect(statSync(path).size).toBe(set.fileBytes('F16', { ss_network_dim: '2' }));
      const r = await openSafetensors(path);
      expect(r.names()).toContain('lora_unet_conv_in.alpha');
      expect(r.entry('lora_unet_conv_in.alpha').shape).toEqual([]);
      expect((await r.read('lora_unet_conv_in.alpha'))[0]).toBe(6);
      expect(r.metadata.ss_network_dim).toBe('2');
      await r.close();
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('initial values: down kaiming-uniform within ±1/√fanIn, up zero, reproducible from the seed', () => {
    const set = new AdapterSet({ rank: 4, targets: { preset: 'attention' } });
    tinyModel(new K.Builder(new K.ShapeRecorder(), set.hook()), K.input('x', IMAGE));
    const a = set.initialValues(1), b = set.initialValues(1), c = set.initialValues(2);
    const down = 'lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight';
    const d = a[down].data as Float32Array;
    const bound = 1 / Math.sqrt(8);
    expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...d.map(Math.abs))).toBeGreaterThan(bound * 0.6);
    expect(b[down].data).toEqual(d);
    expect(c[down].data).not.toEqual(d);
    expect([...(a[down.replace('lora_down', 'lora_up')].data as Float32Array)].every((v) => v === 0)).toBe(true);
  });

  it('LoKr: LyCORIS factorization and tensor layout', () => {
    expect(factorization(128)).toEqual([8, 16]);
    expect(factorization(127)).toEqual([1, 127]);
    expect(factorization(128, 4)).toEqual([4, 32]);
    expect(factorization(1024)).toEqual([32, 32]);
    expect(factorization(360)).toEqual([18, 20]);
    expect(factorization(1024, 16)).toEqual([16, 64]);
    const set = new AdapterSet({ algo: 'lokr', rank: 1, factor: 2, targets: { preset: 'attention_ff' } });
    tinyModel(new K.Builder(new K.ShapeRecorder(), set.hook()), K.input('x', IMAGE));
    const specs = Object.fromEntries(set.paramSpecs.map((p) => [p.key, p.shape]));
    const ff = 'lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj';
    // out 16 = 2·8, in 8 = 2·4; rank 1 < max(8, 4)/2 → w2 low-rank; w1 full.
    expect(specs[`${ff}.lokr_w1`]).toEqual([2, 2]);
    expect(specs[`${ff}.lokr_w2_a`]).toEqual([8, 1]);
    expect(specs[`${ff}.lokr_w2_b`]).toEqual([1, 4]);
    const full = new AdapterSet({ algo: 'lokr', rank: 4, alpha: 1, fullMatrix: true, targets: { preset: 'attention' } });
    tinyModel(new K.Builder(new K.ShapeRecorder(), full.hook()), K.input('x', IMAGE));
    expect(full.modules[0].params.map((p) => p.key.split('.').pop())).toEqual(['lokr_w1', 'lokr_w2']);
    expect(full.modules[0].scale).toBe(1);
    expect(full.modules[0].alpha).toBe(4);
  });
});
