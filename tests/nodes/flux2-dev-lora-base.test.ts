// A FLUX.2 [dev] LoRA as musubi-tuner labels it (modelspec.architecture Flux.2-dev/lora, no
// ss_base_model_version) loads onto a dev model and is refused by its label on a klein one, whose
// modules have the same shapes at tiny size: the metadata is what tells them apart.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../kernels/io/safetensors';
import { flux2Family, tinyFlux2Config, tinyFlux2DevConfig } from '../../kernels/flux/family';
import { writeFluxLora, type FluxLoraModule } from '../../kernels/flux/lora';
import { readLoraFile } from '../../nodes/models/lora-file';

describe('FLUX.2 [dev] LoRA metadata', () => {
  it('Flux.2-dev/lora loads on dev and is refused on klein, naming both', async () => {
    const dev = tinyFlux2DevConfig();
    const h = dev.transformer.hiddenSize, rank = 4;
    const down = Float32Array.from({ length: rank * h }, (_, i) => Math.sin(i) / 10);
    const up = Float32Array.from({ length: 3 * h * rank }, (_, i) => Math.cos(i) / 10);
    const modules = new Map<string, FluxLoraModule>([['double_blocks.0.img_attn.qkv', { down, up, rank, inFeatures: h, outFeatures: 3 * h, alpha: rank }]]);
    const tensors = writeFluxLora(dev.transformer, modules, 'ai-toolkit');
    const file = join(mkdtempSync(join(tmpdir(), 'flux2-dev-lora-')), 'musubi-dev.safetensors');
    await writeSafetensors(file, Object.fromEntries([...tensors].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])), { 'modelspec.architecture': 'Flux.2-dev/lora' });
    const loaded = await readLoraFile(file, dev, flux2Family);
    expect(loaded.spec.include).toEqual(['double_blocks.0.img_attn.qkv']);
    await expect(readLoraFile(file, tinyFlux2Config(), flux2Family)).rejects.toThrow(/made for Flux\.2-dev\/lora, not FLUX\.2 \[klein\]$/);
  });
});
