// Loading FLUX.2 [klein] from real files: separate BFL/ComfyUI-style files (transformer under
// model.diffusion_model., Qwen3 text encoder, ae.safetensors in ldm names with bn statistics) and a
// diffusers folder (split projections, sharded text encoder); both give the same numbers as the weights
// they were written from. Mismatched parts are refused by name.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { vaeToLdm } from '../../../kernels/sd/keys/single-file';
import { vaeDecode, vaeEncode } from '../../../kernels/sd/vae';
import { FLUX2_TINY } from '../../../kernels/flux/config';
import { fluxTransformer, jointPositions } from '../../../kernels/flux/transformer';
import { fluxBflToDiffusers } from '../../../kernels/flux/keys';
import { QWEN3_TINY, qwen3TextFeatures } from '../../../kernels/flux/qwen3';
import { FLUX2_TINY_VAE, flux2LatentsToTokens } from '../../../kernels/flux/vae';
import { loadFlux2 } from '../../../kernels/flux/load';
import { buildByteLevelBpeTokenizerJson } from '../../../kernels/flux/bpe-tokenizer-json';
import { ropeTables } from '../../../kernels/dit';
import { runtime, rand } from '../gradcheck';

afterAll(() => runtime().close());

const dir = mkdtempSync(join(tmpdir(), 'flux2-load-'));
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

/** Builds a part over RandomWeights once to collect its named tensors. */
function tensorsOf(build: (b: K.Builder) => void, seed: number): Map<string, K.HostTensor> {
  const w = new K.RandomWeights(seed, 0.1);
  build(new K.Builder(w));
  return w.tensors;
}
const write = (path: string, tensors: Map<string, K.HostTensor>, rename: (k: string) => string = (k) => k, metadata: Record<string, string> = {}) =>
  writeSafetensors(path, Object.fromEntries([...tensors].map(([k, t]): [string, TensorToWrite] => [rename(k), { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])), metadata);

const T = 8, ROWS = 2, COLS = 2;
const transformerOut = (w: K.WeightSource) => {
  const img = K.input('img', [1, ROWS * COLS, 128]), txt = K.input('txt', [1, T, FLUX2_TINY.contextDim]), t = K.input('t', [1]);
  return { inputs: [img, txt, t], y: fluxTransformer(new K.Builder(w), FLUX2_TINY, { img, txt, timesteps: t, rope: ropeTables(jointPositions(FLUX2_TINY, T, ROWS, COLS), FLUX2_TINY.axesDim, FLUX2_TINY.theta) }) };
};
const textOut = (w: K.WeightSource) => {
  const ids = K.input('ids', [1, T], 'int64'), mask = K.input('mask', [1, T]);
  return { inputs: [ids, mask], y: qwen3TextFeatures(new K.Builder(w), QWEN3_TINY, ids, mask) };
};
const vaeOut = (w: K.WeightSource) => {
  const px = K.input('px', [1, 3, 32, 32]);
  const bn = { mean: w.get('bn.running_mean', [128]), variance: w.get('bn.running_var', [128]) };
  return { inputs: [px], y: flux2LatentsToTokens(vaeEncode(new K.Builder(w), FLUX2_TINY_VAE, px).mean, bn) };
};
const feeds = {
  transformer: { img: ht([1, 4, 128], rand(512)), txt: ht([1, T, 96], rand(T * 96)), t: ht([1], Float32Array.of(0.6)) },
  text: { ids: { dtype: 'int64' as const, shape: [1, T], data: BigInt64Array.from([3n, 7n, 260n, 9n, 1n, 0n, 0n, 0n]) }, mask: ht([1, T], Float32Array.from([1, 1, 1, 1, 1, 0, 0, 0])) },
  vae: { px: ht([1, 3, 32, 32], rand(3 * 32 * 32)) },
};
async function value(part: { inputs: K.Tensor[]; y: K.Tensor }, feed: Record<string, K.HostTensor>) {
  const s = await runtime().load(K.compileGraph(part.inputs, { y: part.y }));
  return (await s.run(feed)).y.data as Float32Array;
}

const transformer = tensorsOf((b) => fluxTransformer(b, FLUX2_TINY, {
  img: K.input('i', [1, 4, 128]), txt: K.input('x', [1, 2, 96]), timesteps: K.input('t', [1]),
  rope: ropeTables(jointPositions(FLUX2_TINY, 2, 2, 2), FLUX2_TINY.axesDim, FLUX2_TINY.theta),
}), 1);
const text = tensorsOf((b) => qwen3TextFeatures(b, QWEN3_TINY, K.input('ids', [1, 4], 'int64'), K.input('m', [1, 4])), 2);
const vae = tensorsOf((b) => { vaeEncode(b, FLUX2_TINY_VAE, K.input('px', [1, 3, 32, 32])); vaeDecode(b, FLUX2_TINY_VAE, K.input('z', [1, 32, 4, 4])); }, 3);
vae.set('bn.running_mean', ht([128], rand(128, 0.1)));
vae.set('bn.running_var', ht([128], rand(128).map((v) => Math.abs(v) + 0.5)));
const tokenizerJson = JSON.stringify(buildByteLevelBpeTokenizerJson(['a red circle on a blue background'], 20));

describe('FLUX.2 loading', () => {
  it('separate files (BFL transformer under model.diffusion_model., Qwen3, ae in ldm names) compute what their weights do', async () => {
    const sep = join(dir, 'separate');
    mkdirSync(sep);
    await write(join(sep, 'klein.safetensors'), transformer, (k) => `model.diffusion_model.${k}`);
    await write(join(sep, 'qwen3.safetensors'), text, (k) => k, { loragraph_text_max_length: '64' });
    await write(join(sep, 'ae.safetensors'), vae, (k) => (k.startsWith('bn.') ? k : vaeToLdm(FLUX2_TINY_VAE, k)), { loragraph_vae_norm_groups: '8' });
    writeFileSync(join(sep, 'tokenizer.json'), tokenizerJson);
    const m = await loadFlux2({ transformer: join(sep, 'klein.safetensors'), textEncoder: join(sep, 'qwen3.safetensors'), vae: join(sep, 'ae.safetensors'), tokenizer: join(sep, 'tokenizer.json') });
    expect(m.detection).toMatchObject({ layout: 'bfl', prefix: 'model.diffusion_model.' });
    expect({ ...m.transformerConfig, name: FLUX2_TINY.name }).toEqual(FLUX2_TINY);
    expect({ ...m.text!.config, name: QWEN3_TINY.name }).toEqual(QWEN3_TINY);
    expect(m.vae!.config).toEqual(FLUX2_TINY_VAE);
    expect(m.tokenizer!.maxLength).toBe(64);
    expect(await value(transformerOut(m.transformer), feeds.transformer)).toEqual(await value(transformerOut(new K.HostWeights(transformer)), feeds.transformer));
    expect(await value(textOut(m.text!.weights), feeds.text)).toEqual(await value(textOut(new K.HostWeights(text)), feeds.text));
    expect(await value(vaeOut(m.vae!.weights), feeds.vae)).toEqual(await value(vaeOut(new K.HostWeights(vae)), feeds.vae));
    m.close();
  });

  it('a diffusers folder (split q/k/v, swapped norm_out, sharded text encoder) computes the same', async () => {
    const root = join(dir, 'diffusers');
    for (const s of ['transformer', 'text_encoder', 'vae', 'tokenizer']) mkdirSync(join(root, s), { recursive: true });
    await write(join(root, 'transformer', 'diffusion_pytorch_model.safetensors'), fluxBflToDiffusers(FLUX2_TINY, transformer));
    const keys = [...text.keys()];
    await write(join(root, 'text_encoder', 'model-00001-of-00002.safetensors'), new Map(keys.slice(0, 20).map((k) => [k, text.get(k)!])), (k) => k, { loragraph_text_max_length: '64' });
    await write(join(root, 'text_encoder', 'model-00002-of-00002.safetensors'), new Map(keys.slice(20).map((k) => [k, text.get(k)!])));
    await write(join(root, 'vae', 'diffusion_pytorch_model.safetensors'), vae, (k) => k, { loragraph_vae_norm_groups: '8' });
    writeFileSync(join(root, 'tokenizer', 'tokenizer.json'), tokenizerJson);
    const m = await loadFlux2({ transformer: root });
    expect(m.detection.layout).toBe('diffusers');
    const got = await value(transformerOut(m.transformer), feeds.transformer);
    const want = await value(transformerOut(new K.HostWeights(transformer)), feeds.transformer);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    expect(await value(textOut(m.text!.weights), feeds.text)).toEqual(await value(textOut(new K.HostWeights(text)), feeds.text));
    expect(await value(vaeOut(m.vae!.weights), feeds.vae)).toEqual(await value(vaeOut(new K.HostWeights(vae)), feeds.vae));
    expect(m.tokenizer).toBeDefined();
    m.close();
  });

  it('a FLUX.2 VAE file without quant convs gets identity ones', async () => {
    const sep = join(dir, 'separate');
    const bare = new Map([...vae].filter(([k]) => !/quant_conv/.test(k)));
    await write(join(sep, 'ae-bare.safetensors'), bare, (k) => (k.startsWith('bn.') ? k : vaeToLdm(FLUX2_TINY_VAE, k)), { loragraph_vae_norm_groups: '8' });
    const m = await loadFlux2({ transformer: join(sep, 'klein.safetensors'), vae: join(sep, 'ae-bare.safetensors') });
    const withIdentity = new Map(bare);
    const eye = (n: number) => { const e = new Float32Array(n * n); for (let i = 0; i < n; i++) e[i * n + i] = 1; return e; };
    withIdentity.set('quant_conv.weight', ht([64, 64, 1, 1], eye(64)));
    withIdentity.set('quant_conv.bias', ht([64], new Float32Array(64)));
    expect(await value(vaeOut(m.vae!.weights), feeds.vae)).toEqual(await value(vaeOut(new K.HostWeights(withIdentity)), feeds.vae));
    m.close();
  });

  it('refuses a text encoder of the wrong width and an SD checkpoint, naming the file', async () => {
    const sep = join(dir, 'separate');
    const wide = new Map(text);
    wide.set('model.embed_tokens.weight', ht([512, 48], rand(512 * 48)));
    await write(join(sep, 'wide.safetensors'), wide);
    await expect(loadFlux2({ transformer: join(sep, 'klein.safetensors'), textEncoder: join(sep, 'wide.safetensors') })).rejects.toThrow(/wide\.safetensors: this Qwen3 gives 144 features per token/);
    await write(join(sep, 'sd.safetensors'), new Map([['model.diffusion_model.input_blocks.0.0.weight', ht([4], rand(4))]]));
    await expect(loadFlux2({ transformer: join(sep, 'sd.safetensors') })).rejects.toThrow(/sd\.safetensors: not a FLUX transformer/);
  });
});
