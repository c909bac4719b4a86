// Gradient checks with recomputation and mixed precision on together: a half-precision (fp16/bf16)
// frozen base, recomputed blocks and memory-efficient (chunked) attention inside them — the way SD
// attention runs under gradient checkpointing — against finite differences, and the tiny UNet's LoRA
// gradients against the same bf16 model built plainly.
import { describe, it, expect } from 'vitest';
import * as K from '../../kernels';
import { PrecisionWeights, type Precision } from '../../kernels/nn/precision';
import { Rng } from '../../kernels/random';
import { attention } from '../../kernels/sd/attention';
import { tinyConfig } from '../../kernels/sd/config';
import { unet } from '../../kernels/sd/unet';
import { gradCheck, rand, runtime } from './gradcheck';

const dim = 32, tokens = 12;
const frozen = (seed: string) => {
  const rng = new Rng(seed);
  return new K.HostWeights(new Map<string, K.HostTensor>(['to_q', 'to_k', 'to_v', 'to_out.0'].flatMap((n): [string, K.HostTensor][] => [
    [`attn.${n}.weight`, { dtype: 'float32' as const, shape: [dim, dim], data: rng.fillNormal(new Float32Array(dim * dim), 0, 0.2) }],
    ...(n === 'to_out.0' ? [[`attn.${n}.bias`, { dtype: 'float32' as const, shape: [dim], data: new Float32Array(dim) }] as [string, K.HostTensor]] : []),
  ])));
};

/** A LoRA (down, up) on to_q and to_v of one attention layer over a half-precision base. */
const loraOn = (down: K.Tensor, up: K.Tensor): K.AdapterHook => (info, h) =>
  (/to_(q|v)$/.test(info.module) ? K.matmul(K.matmul(h, K.transpose(down)), K.transpose(up)) : undefined);

function maxRelDiff(a: Float32Array, b: Float32Array) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num = Math.max(num, Math.abs(a[i] - b[i])); den = Math.max(den, Math.abs(b[i])); }
  return num / den;
}

describe('recomputation with mixed precision', () => {
  for (const precision of ['fp16', 'bf16'] as Precision[]) {
    it(`${precision} base, recomputed block, chunked attention: LoRA and input gradients match finite differences (≤ 2e-2 relative)`, async () => {
      const worst = await gradCheck((x, down, up) => {
        const b = new K.Builder(new PrecisionWeights(frozen('attn'), { precision, minElements: 1 }), loraOn(down, up));
        b.gradientCheckpointing = true;
        b.attentionChunk = 5; // 12 queries in chunks of 5, 5 and 2
        return b.block(() => attention(b.scope('attn'), x, undefined, dim, { heads: 4, qkvBias: false }));
      }, [{ shape: [1, tokens, dim] }, { shape: [2, dim], data: rand(2 * dim, 0.3) }, { shape: [dim, 2], data: rand(2 * dim, 0.3) }]);
      expect(worst).toBeLessThan(2e-2);
    });
  }

  it('tiny UNet on a bf16 base: LoRA gradients with checkpointing and chunked attention equal the plain build (≤ 1e-4 relative)', async () => {
    const cfg = tinyConfig(256);
    const rank = 2;
    const base = new PrecisionWeights(new K.RandomWeights(11, 0.15), { precision: 'bf16', minElements: 256 });
    const context = rand(77 * 64, 1);
    const build = (checkpoint: boolean) => {
      const params: K.Tensor[] = [];
      const b = new K.Builder(base, (info, x) => {
        if (info.kind !== 'linear' || !/attn\d\.to_(q|k|v|out\.0)$/.test(info.module)) return undefined;
        const down = K.input(`${info.module}.down`, [rank, info.inFeatures]);
        const up = K.input(`${info.module}.up`, [info.outFeatures, rank]);
        params.push(down, up);
        return K.matmul(K.matmul(x, K.transpose(down)), K.transpose(up));
      });
      b.gradientCheckpointing = checkpoint;
      if (checkpoint) b.attentionChunk = 24; // 64 tokens at the first level: chunks of 24, 24, 16
      const sample = K.input('sample', [1, 4, 8, 8]);
      const pred = unet(b, cfg.unet, { sample, timestep: K.constant([500], [1]), context: K.constant(context, [1, 77, 64]) });
      const loss = K.reduceSum(K.mul(pred, pred));
      const grads = K.grad(loss, [sample, ...params]);
      const chunked = K.topoOrder([loss]).filter((t) => t.source.kind === 'op' && t.source.op === 'chunkedAttention').length;
      return { graph: K.compileGraph([sample, ...params], { loss, ...Object.fromEntries(grads.map((g, i) => [`g${i}`, g])) }), inputs: [sample, ...params], chunked };
    };
    const plain = build(false), ckpt = build(true);
    expect(ckpt.inputs.length).toBeGreaterThan(8);
    // The checkpointed build runs its first level's attention in chunks; the plain one does not.
    expect(plain.chunked).toBe(0);
    expect(ckpt.chunked).toBeGreaterThan(0);
    const rng = new Rng('bf16-ckpt');
    const feeds: Record<string, K.HostTensor> = Object.fromEntries(plain.inputs.map((t) =>
      [(t.source as { name: string }).name, { dtype: 'float32' as const, shape: [...t.shape], data: rng.fillNormal(new Float32Array(t.size), 0, 0.3) }]));
    const a = await (await runtime().load(plain.graph)).run(feeds);
    const c = await (await runtime().load(ckpt.graph)).run(feeds);
    expect(Math.abs((c.loss.data[0] as number) / (a.loss.data[0] as number) - 1)).toBeLessThan(1e-5);
    for (let i = 0; i < plain.inputs.length; i++) expect(maxRelDiff(c[`g${i}`].data as Float32Array, a[`g${i}`].data as Float32Array), `g${i}`).toBeLessThan(1e-4);
  });
});
