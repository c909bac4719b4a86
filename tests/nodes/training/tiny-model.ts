// A random-weight tiny SD model as MODEL/CLIP/VAE values with real encoder sessions, for trainer tests
// that must not depend on the pretrained asset.
import { join } from 'node:path';
import * as K from '../../../kernels';
import { Builder, RandomWeights } from '../../../kernels';
import { tinyConfig } from '../../../kernels/sd/config';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import { clipTextEncoder } from '../../../kernels/sd/clip-text';
import { vaeEncode } from '../../../kernels/sd/vae';
import type { ClipValue, ModelValue, VaeValue, ModelSource } from '../../../nodes/sockets';
import { repoRoot } from '../../../server/paths';

export function tinyRandomModel(seed = 1) {
  const config = tinyConfig();
  const tokenizer = ClipTokenizer.fromFiles(join(repoRoot, 'assets/tiny/tokenizer/vocab.json'), join(repoRoot, 'assets/tiny/tokenizer/merges.txt'));
  const unet = new RandomWeights(seed, 0.05);
  const text = new RandomWeights(seed + 1, 0.05);
  const vae = new RandomWeights(seed + 2, 0.05);
  const source: ModelSource = { path: 'test:random', label: 'random-tiny', family: 'sd1', id: `random-${seed}` };
  const rt = K.defaultRuntime();
  const L = config.text.maxPositions;
  const textSession = (n: number) => {
    const ids = K.input('ids', [n, L], 'int64');
    return rt.load(K.compileGraph([ids], { hidden: clipTextEncoder(new Builder(text), config.text, ids).hidden }));
  };
  const encoders = new Map<string, Promise<K.Session>>();
  const clip: ClipValue = {
    kind: 'clip', source, config, weights: text, tokenizer, clipSkip: 1, quantization: 'none',
    textEmbeddingEncoder: {
      id: `text:${source.id}`,
      async encode(captions) {
        const s = await textSession(captions.length);
        const ids = new BigInt64Array(captions.length * L);
        captions.forEach((c, i) => { const t = tokenizer.tokenize(c, { maxLength: L }); for (let j = 0; j < L; j++) ids[i * L + j] = BigInt(t.ids[j]); });
        const h = (await s.run({ ids: { dtype: 'int64', shape: [captions.length, L], data: ids } })).hidden.data as Float32Array;
        const per = L * config.text.hiddenSize;
        return captions.map((_, i) => ({ dims: [L, config.text.hiddenSize], data: h.slice(i * per, (i + 1) * per) }));
      },
    },
    byteSize: () => 1e6,
  };
  const vaeValue: VaeValue = {
    kind: 'vae', source, config, weights: vae,
    latentEncoder: {
      id: `vae:${source.id}`,
      async encode(pixels) {
        const key = pixels.dims.join('x');
        let s = encoders.get(key);
        if (!s) {
          const x = K.input('pixels', pixels.dims);
          s = rt.load(K.compileGraph([x], { latents: K.mul(vaeEncode(new Builder(vae), config.vae, x).mean, config.vae.scalingFactor) }));
          encoders.set(key, s);
        }
        const out = (await (await s).run({ pixels: { dtype: 'float32', shape: pixels.dims, data: pixels.data } })).latents;
        const n = pixels.dims[0], per = out.data.length / n;
        return Array.from({ length: n }, (_, i) => ({ dims: out.shape.slice(1), data: (out.data as Float32Array).slice(i * per, (i + 1) * per) }));
      },
    },
    byteSize: () => 1e6,
  };
  const model: ModelValue = { kind: 'model', source, config, unet, quantization: 'none', byteSize: () => 1e6 };
  return { model, clip, vae: vaeValue, config };
}
