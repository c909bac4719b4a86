// A random tiny FLUX.2 [klein] as ComfyUI keeps one — diffusion_models/ (BFL names under
// model.diffusion_model.), text_encoders/ (Qwen3 without `model.`), vae/ (BFL's ae names with the
// BatchNorm statistics) and the tokenizer.json beside the transformer — for node tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as K from '../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../kernels/io/safetensors';
import { vaeToLdm } from '../../kernels/sd/keys/single-file';
import { flux2Family, tinyFlux2Config, TINY_QWEN3_FIRST_ADDED_ID } from '../../kernels/flux/family';
import { buildByteLevelBpeTokenizerJson } from '../../kernels/flux/bpe-tokenizer-json';

export interface TinyKleinFiles { checkpoint: string; textEncoder: string; vae: string }

/** Writes the four files under `models` (paths relative to it; defaults are ComfyUI's folders) and returns where. */
export async function writeTinyKlein(models: string, at: Partial<TinyKleinFiles> = {}): Promise<TinyKleinFiles> {
  const files: TinyKleinFiles = { checkpoint: 'diffusion_models/klein-tiny.safetensors', textEncoder: 'text_encoders/qwen3-tiny.safetensors', vae: 'vae/flux2-ae.safetensors', ...at };
  const c = tinyFlux2Config();
  const collect = (i: number, seed: number) => { const w = new K.RandomWeights(seed, 0.1); flux2Family.parts(c)[i].trace(new K.Builder(w)); return w.tensors; };
  const put = (file: string, m: Map<string, K.HostTensor>, rename = (k: string) => k, md: Record<string, string> = {}) => {
    mkdirSync(dirname(join(models, file)), { recursive: true });
    return writeSafetensors(join(models, file), Object.fromEntries([...m].map(([k, t]): [string, TensorToWrite] => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])), md);
  };
  await put(files.checkpoint, collect(0, 21), (k) => `model.diffusion_model.${k}`);
  await put(files.textEncoder, collect(1, 22), (k) => k.replace(/^model\./, ''), { loragraph_text_max_length: String(c.text.maxLength) });
  // BatchNorm statistics: a variance must be positive (random normal values are not).
  const vae = collect(2, 23);
  for (const [k, t] of vae) if (/running_var$/.test(k)) t.data = (t.data as Float32Array).map((v) => 1 + Math.abs(v));
  await put(files.vae, vae, (k) => (k.startsWith('bn.') ? k : vaeToLdm(c.vae, k)), { loragraph_vae_norm_groups: String(c.vae.normGroups) });
  writeFileSync(join(models, dirname(files.checkpoint), 'tokenizer.json'), JSON.stringify(buildByteLevelBpeTokenizerJson(['a red star on a green background'], 50, { firstAddedId: TINY_QWEN3_FIRST_ADDED_ID })));
  return files;
}
