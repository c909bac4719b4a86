// FLUX.1 through the ModelFamily contract: full-size parts without weights (11.90 B transformer, T5-XXL,
// CLIP-L, the quant-conv-free 16-channel VAE), the tiny config's CLIP + T5 → transformer (guidance
// embedded) → VAE path in ORT, and a diffusers folder written here loading to the same numbers.
import { describe, it, expect, afterAll } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { ClipJsonTokenizer } from '../../../kernels/text/clip-tokenizer-json';
import { flux1Family, tinyFlux1Config } from '../../../kernels/flux/family1';
import { fluxBflToDiffusers } from '../../../kernels/flux/keys';
import { loadFlux1 } from '../../../kernels/flux/load';
import { vaeToLdm } from '../../../kernels/sd/keys/single-file';
import { t5Encoder } from '../../../kernels/text/t5';
import { T5PromptTokenizer } from '../../../kernels/text/t5-tokenizer';
import { buildUnigramTokenizerJson } from '../../../kernels/text/unigram-tokenizer-json';
import { FamilyPipeline } from '../../../kernels/families/pipeline';
import { runtime, rand } from '../gradcheck';

afterAll(() => runtime().close());
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });
const TOKENIZER_DIR = join(__dirname, '../../../assets/tiny/tokenizer');

describe('flux1Family', () => {
  it('full size: transformer 11.90 B, T5-XXL and CLIP-L shapes, a VAE without quant convs; guidance is a sample input', () => {
    const c = flux1Family.configs.full;
    const shapes = Object.fromEntries(flux1Family.parts(c).map((p) => { const r = new K.ShapeRecorder(); p.trace(new K.Builder(r)); return [p.id, r.shapes]; }));
    let n = 0;
    for (const s of shapes.transformer.values()) n += s.reduce((a: number, d: number) => a * d, 1);
    expect(n).toBe(11_901_408_320);
    expect(shapes.text_encoder_2.get('encoder.block.0.layer.1.DenseReluDense.wi_0.weight')).toEqual([10240, 4096]);
    expect(shapes.text_encoder.get('text_model.encoder.layers.11.mlp.fc2.weight')).toEqual([768, 3072]);
    expect(shapes.vae.has('quant_conv.weight')).toBe(false);
    expect(shapes.vae.get('encoder.conv_out.weight')).toEqual([32, 512, 3, 3]);
    expect(flux1Family.conditioning(c).map((x) => [x.name, x.shape, x.source])).toEqual([['context', [512, 4096], 'text'], ['pooled', [768], 'text'], ['guidance', [1], 'sample']]);
    expect(flux1Family.sampleConditioning(c, { originalSize: { width: 1, height: 1 }, cropTopLeft: { top: 0, left: 0 }, targetSize: { width: 1, height: 1 } }).guidance).toEqual(Float32Array.of(1));
  });

  it('tiny: a diffusers folder written here loads and computes like the weights it came from', async () => {
    const c = tinyFlux1Config();
    const dir = mkdtempSync(join(tmpdir(), 'flux1-'));
    const collect = (i: number) => { const w = new K.RandomWeights(10 + i, 0.1); flux1Family.parts(c)[i].trace(new K.Builder(w)); return w.tensors; };
    const parts = [0, 1, 2, 3].map(collect);
    const put = async (sub: string, m: Map<string, K.HostTensor>) => {
      mkdirSync(join(dir, sub), { recursive: true });
      await writeSafetensors(join(dir, sub, 'model.safetensors'), Object.fromEntries([...m].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])));
    };
    await put('transformer', fluxBflToDiffusers(c.transformer, parts[0]));
    await put('text_encoder', parts[1]);
    await put('text_encoder_2', parts[2]);
    await put('vae', parts[3]);
    mkdirSync(join(dir, 'tokenizer'));
    for (const f of readdirSync(TOKENIZER_DIR)) copyFileSync(join(TOKENIZER_DIR, f), join(dir, 'tokenizer', f));
    mkdirSync(join(dir, 'tokenizer_2'));
    writeFileSync(join(dir, 'tokenizer_2', 'tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(['a red circle on a blue background'])));
    const m = await flux1Family.load(dir, { config: c });
    const graph = (weights: { denoiser: K.WeightSource; clip: K.WeightSource; t5: K.WeightSource; vae: K.WeightSource }) => {
      const ids = K.input('ids', [1, 77], 'int64'), ids2 = K.input('ids2', [1, c.t5Length], 'int64'), px = K.input('px', [1, 3, 64, 64]), t = K.input('t', [1]), g = K.input('g', [1, 1]);
      const cond = flux1Family.encodeText([new K.Builder(weights.clip), new K.Builder(weights.t5)], c, [ids, ids2], { clipSkip: 1 });
      const latents = flux1Family.vaeEncode(new K.Builder(weights.vae), c, px);
      const v = flux1Family.denoise(new K.Builder(weights.denoiser), c, { sample: latents, timestep: t, cond: { ...cond, guidance: g } });
      return { inputs: [ids, ids2, px, t, g], outs: { latents, v, out: flux1Family.vaeDecode(new K.Builder(weights.vae), c, v) } };
    };
    const clipTok = ClipTokenizer.fromFolder(join(dir, 'tokenizer'));
    const t5Tok = T5PromptTokenizer.fromFile(join(dir, 'tokenizer_2', 'tokenizer.json'));
    const feed = {
      ids: { dtype: 'int64' as const, shape: [1, 77], data: BigInt64Array.from(Array.from(clipTok.tokenize('a red circle', { maxLength: 77 }).ids, BigInt)) },
      ids2: { dtype: 'int64' as const, shape: [1, c.t5Length], data: BigInt64Array.from(t5Tok.tokenize('a red circle', { maxLength: c.t5Length }).ids.map(BigInt)) },
      px: ht([1, 3, 64, 64], rand(3 * 64 * 64)), t: ht([1], Float32Array.of(500)), g: ht([1, 1], Float32Array.of(3.5)),
    };
    const run = async (gr: ReturnType<typeof graph>) => (await runtime().load(K.compileGraph(gr.inputs, gr.outs))).run(feed);
    const loaded = await run(graph({ denoiser: m.denoiser, clip: m.textEncoders[0].weights, t5: m.textEncoders[1].weights, vae: m.vae }));
    const direct = await run(graph({ denoiser: new K.HostWeights(parts[0]), clip: new K.HostWeights(parts[1]), t5: new K.HostWeights(parts[2]), vae: new K.HostWeights(parts[3]) }));
    expect(loaded.latents.shape).toEqual([1, 64, 4, 4]);
    expect(loaded.out.shape).toEqual([1, 3, 64, 64]);
    expect(loaded.latents.data).toEqual(direct.latents.data);
    (loaded.v.data as Float32Array).forEach((x, i) => expect(x).toBeCloseTo((direct.v.data as Float32Array)[i], 5));
    expect(m.textEncoders[1].tokenizer.tokenize('a red circle', { maxLength: 8 }).ids).toHaveLength(8);
    // CLIP-L's tokenizer is run by @huggingface/tokenizers (converted from the folder's vocab.json + merges.txt) and gives the SD tokenizer's ids.
    expect(m.textEncoders[0].tokenizer).toBeInstanceOf(ClipJsonTokenizer);
    expect(Array.from(m.textEncoders[0].tokenizer.tokenize('a red circle', { maxLength: 77 }).ids)).toEqual(Array.from(clipTok.tokenize('a red circle', { maxLength: 77 }).ids));
    // The Sampler node's path: the families' preview pipeline (guidance from sampleConditioning).
    const rt = new K.Runtime({ threads: 2 });
    const pipe = await FamilyPipeline.create(rt, { family: flux1Family, config: c, denoiser: m.denoiser, textEncoders: m.textEncoders, vae: m.vae }, { width: 64, height: 64 });
    const g = await pipe.generate({ prompt: 'a red circle', seed: 1, steps: 2, cfgScale: 1 });
    expect(g.images[0]).toHaveLength(64 * 64 * 3);
    expect(g.latents).toHaveLength(64 * 4 * 4);
    await rt.close();
    m.close();
  });

  it('separate ComfyUI-style files: BFL transformer, clip_l, t5 (embed_tokens name), ae.safetensors in ldm names', async () => {
    const c = tinyFlux1Config();
    const dir = mkdtempSync(join(tmpdir(), 'flux1-sep-'));
    const collect = (i: number) => { const w = new K.RandomWeights(20 + i, 0.1); flux1Family.parts(c)[i].trace(new K.Builder(w)); return w.tensors; };
    const parts = [0, 1, 2, 3].map(collect);
    const put = (file: string, m: Map<string, K.HostTensor>, rename = (k: string) => k) =>
      writeSafetensors(join(dir, file), Object.fromEntries([...m].map(([k, t]): [string, TensorToWrite] => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])));
    await put('flux1-tiny.safetensors', parts[0], (k) => `model.diffusion_model.${k}`);
    await put('clip_l.safetensors', parts[1]);
    await put('t5xxl.safetensors', parts[2], (k) => (k === 'shared.weight' ? 'encoder.embed_tokens.weight' : k));
    await put('ae.safetensors', parts[3], (k) => vaeToLdm(c.vae, k));
    const m = await loadFlux1({ transformer: join(dir, 'flux1-tiny.safetensors'), clip: join(dir, 'clip_l.safetensors'), t5: join(dir, 't5xxl.safetensors'), vae: join(dir, 'ae.safetensors') });
    expect(m.detection).toMatchObject({ layout: 'bfl', prefix: 'model.diffusion_model.' });
    expect({ ...m.transformerConfig, name: c.transformer.name }).toEqual(c.transformer);
    const ids = K.input('ids', [1, 6], 'int64');
    const feed = { ids: { dtype: 'int64' as const, shape: [1, 6], data: BigInt64Array.from([3n, 9n, 1n, 0n, 0n, 0n]) } };
    const t5 = async (w: K.WeightSource) => (await (await runtime().load(K.compileGraph([ids], { y: t5Encoder(new K.Builder(w), c.t5, ids) }))).run(feed)).y.data;
    expect(await t5(m.t5!)).toEqual(await t5(new K.HostWeights(parts[2])));
    const px = K.input('px', [1, 3, 64, 64]);
    const pxData = rand(3 * 64 * 64);
    const enc2 = async (w: K.WeightSource) => (await (await runtime().load(K.compileGraph([px], { y: flux1Family.vaeEncode(new K.Builder(w), c, px) }))).run({ px: ht([1, 3, 64, 64], pxData) })).y.data;
    expect(await enc2(m.vae!.weights)).toEqual(await enc2(new K.HostWeights(parts[3])));
    m.close();
  });
});
