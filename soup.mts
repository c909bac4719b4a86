// Temporary: the average of two stage-D results, written as the pretraining writes its files.
import { cpSync, mkdirSync } from 'node:fs';
import { loadTrainState, saveTrainState } from './kernels/train/pretrain-cli';
import { TINY_FLUX_FILES } from './kernels/flux/tiny/pretrain';
const [a, b, out, wa] = [process.argv[2], process.argv[3], process.argv[4], Number(process.argv[5] ?? 0.5)];
const A = (await loadTrainState(a))!.tensors, B = (await loadTrainState(b))!.tensors;
const avg = Object.fromEntries(Object.entries(A).map(([k, t]) => {
  const x = t.data as Float32Array, y = B[k].data as Float32Array, z = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) z[i] = wa * x[i] + (1 - wa) * y[i];
  return [k, { ...t, data: z }];
}));
mkdirSync(out, { recursive: true });
const pick = (prefix: string) => Object.fromEntries(Object.entries(avg).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
const src = '/tmp/s13/tf-out';
const meta = (await loadTrainState(`${src}/${TINY_FLUX_FILES.transformer}`))!.metadata;
const tmeta = (await loadTrainState(`${src}/${TINY_FLUX_FILES.textEncoder}`))!.metadata;
await saveTrainState(`${out}/${TINY_FLUX_FILES.transformer}`, pick('transformer/'), meta, 'F16');
await saveTrainState(`${out}/${TINY_FLUX_FILES.textEncoder}`, pick('text_encoder/'), tmeta, 'F16');
cpSync(`${src}/${TINY_FLUX_FILES.vae}`, `${out}/${TINY_FLUX_FILES.vae}`);
cpSync(`${src}/${TINY_FLUX_FILES.tokenizer}`, `${out}/${TINY_FLUX_FILES.tokenizer}`);
console.log('wrote', out);
