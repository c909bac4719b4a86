// The umT5 loader: sizes read from an encoder's tensors (umT5-XXL's exactly, and a T5 v1.1 — one
// position table — is not taken for umT5); a ComfyUI-style file with `encoder.embed_tokens` instead of
// `shared` and a `spiece_model` blob gives the same features; beside a Wan transformer the umT5 of the
// right width is chosen over a T5 and a wider umT5; a missing tokenizer.json and fp8 files are refused
// naming what to do.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { t5Encoder, T5_XXL, type T5Config } from '../../../kernels/text/t5';
import { buildUnigramTokenizerJson } from '../../../kernels/text/unigram-tokenizer-json';
import { UMT5_TINY, UMT5_XXL } from '../../../kernels/wan/umt5';
import { umt5ConfigFromShapes } from '../../../kernels/wan/load';
import { tinyWanConfig, wanFamily } from '../../../kernels/wan/family';

const rt = new K.Runtime({ threads: 2 });
afterAll(() => rt.close());

function traced(cfg: T5Config, w: K.WeightSource = new K.ShapeRecorder()) {
  t5Encoder(new K.Builder(w), cfg, K.input('ids', [1, 4], 'int64'));
}
const shapesOf = (cfg: T5Config) => { const rec = new K.ShapeRecorder(); traced(cfg, rec); return rec.shapes; };

describe('umT5 sizes from tensors', () => {
  it('umT5-XXL\'s tensors give UMT5_XXL exactly; T5 v1.1 XXL\'s (one position table) are not umT5', () => {
    const s = shapesOf(UMT5_XXL);
    expect(umt5ConfigFromShapes((k) => s.get(k), [...s.keys()])).toEqual(UMT5_XXL);
    const t5 = shapesOf(T5_XXL);
    expect(umt5ConfigFromShapes((k) => t5.get(k), [...t5.keys()])).toBeUndefined();
  });
});

describe('umT5 files beside a Wan transformer', () => {
  const root = mkdtempSync(join(tmpdir(), 'loragraph-umt5-'));
  const tiny = tinyWanConfig();
  const file = (m: Map<string, K.HostTensor>, rename: (k: string) => string = (k) => k): Record<string, TensorToWrite> =>
    Object.fromEntries([...m].map(([k, t]) => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]));
  const part = (id: string, seed: number) => { const rw = new K.RandomWeights(seed, 0.08); wanFamily.parts(tiny).find((p) => p.id === id)!.trace(new K.Builder(rw)); return rw.tensors; };
  const text = part('text_encoder', 5);
  const tokenizer = JSON.stringify(buildUnigramTokenizerJson(['a red circle', 'a blue star']));

  async function layout(name: string, textFiles: Record<string, Record<string, TensorToWrite>>, withTokenizer = true): Promise<string> {
    const models = join(root, name);
    for (const d of ['diffusion_models', 'text_encoders', 'vae']) mkdirSync(join(models, d), { recursive: true });
    const t = join(models, 'diffusion_models', 'wan-tiny.safetensors');
    await writeSafetensors(t, file(part('transformer', 3)), { loragraph_num_heads: '4' });
    await writeSafetensors(join(models, 'vae', 'vae.safetensors'), file(part('vae', 6)));
    for (const [f, tensors] of Object.entries(textFiles)) {
      await writeSafetensors(join(models, 'text_encoders', `${f}.safetensors`), tensors);
      if (withTokenizer) writeFileSync(join(models, 'text_encoders', `${f}.tokenizer.json`), tokenizer);
    }
    return t;
  }

  async function features(path: string): Promise<Float32Array> {
    const m = await wanFamily.load(path);
    try {
      const ids = K.input('ids', [1, m.config.textLength], 'int64');
      const s = await rt.load(K.compileGraph([ids], { c: wanFamily.encodeText([new K.Builder(m.textEncoders[0].weights)], m.config, [ids], { clipSkip: 1 }).context }));
      const tok = Array.from(m.textEncoders[0].tokenizer.tokenize('a red circle', { maxLength: m.config.textLength }).ids);
      return (await s.run({ ids: { dtype: 'int64', shape: [1, tok.length], data: BigInt64Array.from(tok.map(BigInt)) } })).c.data as Float32Array;
    } finally {
      m.close();
    }
  }

  it('ComfyUI\'s naming (encoder.embed_tokens, a spiece_model blob) gives the features transformers\' naming gives', async () => {
    const a = await features(await layout('transformers-names', { umt5: file(text) }));
    const comfy = { ...file(text, (k) => (k === 'shared.weight' ? 'encoder.embed_tokens.weight' : k)), spiece_model: { dtype: 'U8' as const, shape: [16], data: new Uint8Array(16) } };
    const b = await features(await layout('comfy-names', { umt5: comfy }));
    expect(a.some((v) => v !== 0)).toBe(true);
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('among text encoders the umT5 as wide as the transformer\'s text input is chosen, not a T5 or a wider umT5', async () => {
    const t5 = new K.RandomWeights(8, 0.08); traced({ ...T5_XXL, vocabSize: 512, dModel: 32, dKv: 8, dFf: 64, numLayers: 2, numHeads: 4 }, t5);
    const wide = new K.RandomWeights(9, 0.08); traced({ ...UMT5_TINY, dModel: 64, dKv: 16 }, wide);
    const path = await layout('several', { a_t5: file(t5.tensors), b_wide_umt5: file(wide.tensors), c_umt5: file(text) });
    const m = await wanFamily.load(path);
    try {
      expect(m.config.text).toMatchObject({ dModel: 32, numLayers: 2, biasPerLayer: true });
      expect(m.params.text_encoder).toBe([...text.values()].reduce((n, t) => n + t.data.length, 0));
    } finally {
      m.close();
    }
  });

  it('refuses a umT5 without its tokenizer.json, and fp8 files, saying what to use', async () => {
    await expect(wanFamily.load(await layout('no-tokenizer', { umt5: file(text) }, false))).rejects.toThrow(/no umT5 tokenizer\.json found/);
    const fp8 = Object.fromEntries(Object.entries(file(text)).map(([k, t]) => [k, { dtype: 'F8_E4M3' as const, shape: t.shape, data: new Uint8Array((t.data as Float32Array).length) }]));
    await expect(wanFamily.load(await layout('fp8', { umt5_xxl_fp8_e4m3fn_scaled: fp8 }))).rejects.toThrow(/F8_E4M3 \(fp8\) weights.*fp16 or bf16/);
  });
});
