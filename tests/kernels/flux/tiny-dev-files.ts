// A random tiny FLUX.2 [dev]-architecture model written as ComfyUI keeps one: diffusion_models/ (BFL
// names), text_encoders/ (a tiny Mistral under ComfyUI's `model.*` names with its tokenizer.json beside
// it — learned from BFL's system message so a short prompt fits the 64 tokens — or, as ComfyUI ships it,
// inside the file as mistral_common's tekken.json in `tekken_model`), vae/ (ldm names + bn).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { vaeToLdm } from '../../../kernels/sd/keys/single-file';
import { flux2Family, tinyFlux2DevConfig, type Flux2FamilyConfig } from '../../../kernels/flux/family';
import { buildTekkenStyleTokenizerJson, TEKKEN_CONTROL_TOKENS } from '../../../kernels/flux/tekken-tokenizer-json';
import { byteLevelAlphabet } from '../../../kernels/flux/bpe-tokenizer-json';
import type { TekkenJson } from '../../../kernels/flux/tekken';
import { FLUX2_SYSTEM_MESSAGE } from '../../../kernels/flux/mistral-tokenizer';

/** Writes the files under `root`'s diffusion_models/, text_encoders/ and vae/; returns their paths. */
export async function writeTinyDev(root: string, c: Flux2FamilyConfig = tinyFlux2DevConfig(), tokenizer: 'tokenizer.json' | 'tekken_model' = 'tokenizer.json') {
  for (const d of ['diffusion_models', 'text_encoders', 'vae']) mkdirSync(join(root, d), { recursive: true });
  const collect = (i: number, seed: number) => { const w = new K.RandomWeights(seed, 0.1); flux2Family.parts(c)[i].trace(new K.Builder(w)); return w.tensors; };
  const put = (file: string, m: Map<string, K.HostTensor>, rename = (k: string) => k, md: Record<string, string> = {}) =>
    writeSafetensors(file, Object.fromEntries([...m].map(([k, t]): [string, TensorToWrite] => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])), md);
  const files = { transformer: join(root, 'diffusion_models', 'flux2-dev-tiny.safetensors'), textEncoder: join(root, 'text_encoders', 'mistral_3_small_flux2_tiny.safetensors'), vae: join(root, 'vae', 'flux2-vae.safetensors') };
  await put(files.transformer, collect(0, 1));
  const text = collect(1, 2);
  for (const [k, t] of text) if (k.endsWith('layernorm.weight')) (t.data as Float32Array).forEach((x, i, a) => { a[i] = 1 + x; });
  const corpus = [FLUX2_SYSTEM_MESSAGE, FLUX2_SYSTEM_MESSAGE, 'a red circle on a blue background', 'a green square'];
  const tokJson = buildTekkenStyleTokenizerJson(corpus, 180) as Parameters<typeof tekkenOf>[0];
  const md = { loragraph_head_dim: String(c.text.headDim), loragraph_text_max_length: String(c.text.maxLength) };
  if (tokenizer === 'tokenizer.json') {
    await put(files.textEncoder, text, (k) => k, md);
    writeFileSync(files.textEncoder.replace(/\.safetensors$/, '.tokenizer.json'), JSON.stringify(tokJson));
  } else {
    const bytes = new TextEncoder().encode(JSON.stringify(tekkenOf(tokJson)));
    await writeSafetensors(files.textEncoder, {
      ...Object.fromEntries([...text].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])),
      tekken_model: { dtype: 'U8', shape: [bytes.length], data: bytes },
    }, md);
  }
  const vae = collect(2, 3);
  (vae.get('bn.running_var')!.data as Float32Array).forEach((x, i, a) => { a[i] = 1 + Math.abs(x); });
  await put(files.vae, vae, (k) => (k.startsWith('bn.') ? k : vaeToLdm(c.vae, k)), { loragraph_vae_norm_groups: String(c.vae.normGroups) });
  return files;
}

/** mistral_common's tekken.json for the test tokenizer.json: control tokens by rank, byte tokens ranked after them. */
export function tekkenOf(tokenizerJson: { model: { vocab: Record<string, number> }; pre_tokenizer: { pretokenizers: { pattern?: { Regex: string } }[] } }): TekkenJson {
  const fromByteLevel = new Map(byteLevelAlphabet().map((c, b) => [c, b]));
  const n = TEKKEN_CONTROL_TOKENS.length;
  const vocab = Object.entries(tokenizerJson.model.vocab).filter(([, id]) => id >= n)
    .map(([piece, id]) => ({ rank: id - n, token_bytes: Buffer.from(Array.from(piece, (c) => fromByteLevel.get(c)!)).toString('base64') }));
  return {
    config: { pattern: tokenizerJson.pre_tokenizer.pretokenizers[0].pattern!.Regex, default_vocab_size: n + vocab.length, default_num_special_tokens: n },
    vocab, special_tokens: TEKKEN_CONTROL_TOKENS.map((token_str, rank) => ({ rank, token_str })),
  };
}
