// LoRA metadata as the tools read it: kohya's ss_* keys with ss_resolution in sd-scripts' "(W, H)" form,
// the modelspec block sd-scripts writes (1.0.1, per-family architecture and implementation), and an alpha
// statement that cannot be applied twice: diffusers files have alpha folded in, so they say alpha = dim.
import { describe, it, expect } from 'vitest';
import { SD15 } from '../../kernels/sd/config';
import { SDXL_BASE } from '../../kernels/sdxl/config';
import { loraMetadata } from '../../nodes/models/lora-metadata';
import type { AdapterSpec, TrainingValue } from '../../nodes/sockets';

const spec = (algo: AdapterSpec['algo']): AdapterSpec => Object.freeze({
  kind: 'adapter' as const, algo, rank: 8, alpha: 4, convRank: 4, convAlpha: 1, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'all_linear' as const, include: [], exclude: [], trainTextEncoder: false, byteSize: () => 0,
});

function training(family: 'sd1' | 'sdxl', metadata: Record<string, string>): TrainingValue {
  return {
    kind: 'training', id: 'x', step: 300, adapter: spec('LoRA'), weights: {}, optimizerState: {}, optimizerName: 'AdamW', optimizerSteps: 300,
    rng: {}, lossHistory: [], metadata, byteSize: () => 0,
    base: { path: '/m.safetensors', label: 'm', family, id: 'abc', config: family === 'sd1' ? SD15 : SDXL_BASE },
  } as TrainingValue;
}

const now = new Date('2026-01-02T03:04:05Z');

describe('LoRA metadata', () => {
  it('SD 1.x kohya LoCon: sd-scripts modelspec, kohya resolution from the largest bucket, alpha as trained', () => {
    const m = loraMetadata({ training: training('sd1', { ss_resolution: '["512x512","448x576","576x448"]', ss_clip_skip: '2' }), spec: spec('LoCon'), name: 'star', format: 'kohya', usedEma: false, now });
    expect(m).toMatchObject({
      'modelspec.sai_model_spec': '1.0.1',
      'modelspec.architecture': 'stable-diffusion-v1/lora',
      'modelspec.implementation': 'diffusers',
      'modelspec.resolution': '512x512',
      'modelspec.prediction_type': 'epsilon',
      'modelspec.encoder_layer': '2',
      'modelspec.date': '2026-01-02T03:04:05',
      ss_base_model_version: 'sd_v1',
      ss_resolution: '(512, 512)', // the base size: buckets never exceed its area
      loragraph_buckets: '["512x512","448x576","576x448"]',
      ss_network_dim: '8',
      ss_network_alpha: '4',
      loragraph_format: 'kohya',
    });
    expect(JSON.parse(m.ss_network_args)).toEqual({ conv_dim: '4', conv_alpha: '1' });
  });

  it('diffusers files say alpha = dim (alpha folded into the weights), linear and conv', () => {
    const m = loraMetadata({ training: training('sd1', { ss_resolution: '(64, 64)' }), spec: spec('LoCon'), name: 'star', format: 'diffusers', usedEma: false, now });
    expect(m.ss_network_alpha).toBe(m.ss_network_dim);
    expect(JSON.parse(m.ss_network_args)).toEqual({ conv_dim: '4', conv_alpha: '4' });
    expect(m.loragraph_alpha).toMatch(/^folded into the up weights \(trained with alpha 4 over dim 8, conv alpha 1 over 4\); apply at scale 1/);
    expect(m.ss_resolution).toBe('(64, 64)');
    expect(m.loragraph_format).toBe('diffusers');
  });

  it('LoKr is labelled …/lora as sd-scripts labels every network; SDXL names its architecture and implementation', () => {
    const lokr = loraMetadata({ training: training('sd1', {}), spec: spec('LoKr'), name: 'k', format: 'kohya', usedEma: false, now });
    expect(lokr['modelspec.architecture']).toBe('stable-diffusion-v1/lora');
    expect(lokr.ss_network_module).toBe('lycoris.kohya');
    expect(lokr.ss_resolution).toBe('(512, 512)'); // no buckets recorded: the model's own size
    const xl = loraMetadata({ training: training('sdxl', { ss_resolution: '["1024x1024"]' }), spec: spec('LoRA'), name: 'x', format: 'kohya', usedEma: false, now });
    expect(xl).toMatchObject({
      'modelspec.architecture': 'stable-diffusion-xl-v1-base/lora',
      'modelspec.implementation': 'https://github.com/Stability-AI/generative-models',
      'modelspec.resolution': '1024x1024',
      ss_base_model_version: 'sdxl_base_v1-0',
      ss_resolution: '(1024, 1024)',
    });
  });
});
