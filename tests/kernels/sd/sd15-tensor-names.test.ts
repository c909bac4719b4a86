// The full SD 1.5 config, built without allocating weights, asks for exactly the tensors of the real
// SD 1.5 checkpoint (names and shapes) in both layouts, and the single-file ↔ diffusers key map is a
// bijection over them.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { SD15 } from '../../../kernels/sd/config';
import { componentTensors, COMPONENTS } from '../../../kernels/sd/keys/expected';
import { SingleFileKeyMap, toSingleFileShape } from '../../../kernels/sd/keys/single-file';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/sd15-tensors.json', import.meta.url), 'utf8')) as {
  singleFile: Record<string, number[]>;
  diffusers: Record<string, Record<string, number[]>>;
};

describe('SD 1.5 tensor names and shapes', () => {
  for (const component of COMPONENTS) {
    it(`the ${component} asks for exactly the diffusers checkpoint's tensors with their shapes`, () => {
      const got = Object.fromEntries(componentTensors(SD15, component).shapes);
      const want = fixture.diffusers[component];
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      for (const [name, shape] of Object.entries(want)) expect(got[name], name).toEqual(shape);
    });
  }

  it('counts match the published SD 1.5 sizes (UNet 859.52M, text 123.06M, VAE 83.65M parameters)', () => {
    const params = (c: (typeof COMPONENTS)[number]) => [...componentTensors(SD15, c).shapes.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    expect(params('unet')).toBe(859_520_964);
    expect(params('text_encoder')).toBe(123_060_480);
    expect(params('vae')).toBe(83_653_863);
  });

  it('single-file keys map onto diffusers names one to one, with the VAE attention reshaped', () => {
    const map = new SingleFileKeyMap(SD15);
    const singleKeys = Object.keys(fixture.singleFile);
    expect(map.singleFileKeys().sort()).toEqual([...singleKeys].sort());
    const seen = new Set<string>();
    for (const key of singleKeys) {
      const d = map.toDiffusers(key);
      expect(d, key).toBeDefined();
      const diffusersShape = fixture.diffusers[d!.component][d!.name];
      expect(diffusersShape, `${key} → ${d!.component}/${d!.name}`).toBeDefined();
      expect(toSingleFileShape(d!.component, d!.name, diffusersShape)).toEqual(fixture.singleFile[key]);
      expect(map.toSingleFile(d!.component, d!.name)).toBe(key);
      seen.add(`${d!.component}/${d!.name}`);
    }
    const diffusersCount = COMPONENTS.reduce((n, c) => n + Object.keys(fixture.diffusers[c]).length, 0);
    expect(seen.size).toBe(diffusersCount);
    expect(singleKeys.length).toBe(diffusersCount);
  });

  it('spot checks against names people see in A1111/ComfyUI tooling', () => {
    const map = new SingleFileKeyMap(SD15);
    expect(map.toSingleFile('unet', 'up_blocks.1.upsamplers.0.conv.weight')).toBe('model.diffusion_model.output_blocks.5.2.conv.weight');
    expect(map.toSingleFile('unet', 'up_blocks.0.upsamplers.0.conv.bias')).toBe('model.diffusion_model.output_blocks.2.1.conv.bias');
    expect(map.toSingleFile('unet', 'mid_block.resnets.1.time_emb_proj.weight')).toBe('model.diffusion_model.middle_block.2.emb_layers.1.weight');
    expect(map.toSingleFile('vae', 'decoder.up_blocks.0.upsamplers.0.conv.weight')).toBe('first_stage_model.decoder.up.3.upsample.conv.weight');
    expect(map.toSingleFile('vae', 'decoder.mid_block.attentions.0.to_out.0.weight')).toBe('first_stage_model.decoder.mid.attn_1.proj_out.weight');
    expect(map.toDiffusers('cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.bias'))
      .toEqual({ component: 'text_encoder', name: 'text_model.encoder.layers.11.mlp.fc2.bias' });
    expect(map.toDiffusers('model.diffusion_model.label_emb.0.0.weight')).toBeUndefined();
  });
});
