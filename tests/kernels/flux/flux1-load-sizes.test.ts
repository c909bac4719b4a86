// FLUX.1's loader reads the text encoders' and the VAE's sizes from their tensors: full-size CLIP-L and
// T5-XXL shapes (recorded without weights) give exactly the release configs; a CLIP whose heads cannot be
// told from its width, or an encoder that does not fit the transformer, is refused naming the file.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { clipConfigFromShapes, t5ConfigFromShapes } from '../../../kernels/flux/load';
import { flux1Family, tinyFlux1Config, FLUX1_DEV_FAMILY } from '../../../kernels/flux/family1';
import { vaeToLdm } from '../../../kernels/sd/keys/single-file';
import { SD15 } from '../../../kernels/sd/config';
import { T5_XXL } from '../../../kernels/text/t5';

const shapesOf = (i: number) => { const r = new K.ShapeRecorder(); flux1Family.parts(FLUX1_DEV_FAMILY)[i].trace(new K.Builder(r)); return r.shapes; };

describe('FLUX.1 text encoder sizes from tensors', () => {
  it('full-size CLIP-L and T5-XXL shapes give the release configs', () => {
    const clip = shapesOf(1), t5 = shapesOf(2);
    expect(clipConfigFromShapes((k) => clip.get(k), [...clip.keys()])).toEqual(SD15.text);
    expect(t5ConfigFromShapes((k) => t5.get(k), [...t5.keys()])).toEqual(T5_XXL);
    // A CLIP of another head width states its head count; without it the heads cannot be told.
    const narrow = new Map([...clip].map(([k, s]) => [k, s.map((d) => (d === 768 ? 96 : d))]));
    expect(clipConfigFromShapes((k) => narrow.get(k), [...narrow.keys()])).toBeUndefined();
    expect(clipConfigFromShapes((k) => narrow.get(k), [...narrow.keys()], { loragraph_num_heads: '3' })).toMatchObject({ hiddenSize: 96, numHeads: 3 });
  });

  it('Load Model\'s path: tiny files load with their own sizes, or are refused naming the file', async () => {
    const tiny = tinyFlux1Config();
    const dir = mkdtempSync(join(tmpdir(), 'flux1-sizes-'));
    const put = (file: string, c: typeof tiny, i: number, rename = (k: string) => k, md: Record<string, string> = {}) => {
      const w = new K.RandomWeights(40 + i, 0.1);
      flux1Family.parts(c)[i].trace(new K.Builder(w));
      return writeSafetensors(join(dir, file), Object.fromEntries([...w.tensors].map(([k, t]): [string, TensorToWrite] => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])), md);
    };
    const wide = { ...tiny, transformer: { ...tiny.transformer, pooledDim: 64 }, clip: { ...tiny.clip, hiddenSize: 64, numHeads: 1 } };
    await put('flux1.safetensors', wide, 0);
    await put('clip64.safetensors', wide, 1);
    await put('clip32.safetensors', tiny, 1);
    await put('t5.safetensors', tiny, 2, (k) => k, { loragraph_text_max_length: '24' });
    await put('ae.safetensors', tiny, 3, (k) => vaeToLdm(tiny.vae, k), { loragraph_vae_norm_groups: String(tiny.vae.normGroups) });
    const tokenizers = [{ tokenize: () => ({ ids: [] }) }, { tokenize: () => ({ ids: [] }) }] as never;
    const load = (clip: string) => flux1Family.load(join(dir, 'flux1.safetensors'), { textEncoderFiles: [join(dir, clip), join(dir, 't5.safetensors')], vaeFile: join(dir, 'ae.safetensors'), tokenizers });
    const m = await load('clip64.safetensors');
    expect(m.config.clip).toEqual(wide.clip);
    expect({ ...m.config.t5, name: tiny.t5.name }).toEqual({ ...tiny.t5, relativeMaxDistance: T5_XXL.relativeMaxDistance });
    expect(m.config.t5Length).toBe(24);
    expect(m.config.vae).toEqual(tiny.vae);
    expect(m.config.sampleSize).toBe(64);
    m.close();
    // 32 wide: not a multiple of CLIP-L's 64-wide heads, and no stated head count.
    await expect(load('clip32.safetensors')).rejects.toThrow(/clip32\.safetensors: cannot tell the CLIP text encoder's heads/);
  });
});
