// Each SD 1.x block at tiny size: output shapes, and numerics of the resnet block, the spatial
// transformer's attention, the CLIP layer and the VAE attention against float64 JS references.
import { describe, it, expect } from 'vitest';
import { Builder, RandomWeights, ShapeRecorder, compileGraph, input, Runtime, type HostTensor, type Tensor } from '../../../kernels';
import { tinyConfig } from '../../../kernels/sd/config';
import { resnetBlock, downsample, upsample } from '../../../kernels/sd/resnet';
import { transformer2d } from '../../../kernels/sd/transformer2d';
import { attention } from '../../../kernels/sd/attention';
import { clipLayer, clipTextEncoder } from '../../../kernels/sd/clip-text';
import { unet } from '../../../kernels/sd/unet';
import { vaeEncode, vaeDecode, vaeAttention } from '../../../kernels/sd/vae';
import * as R from './reference';

const cfg = tinyConfig(512);
const rt = new Runtime({ threads: 1 });
const rnd = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.618 + seed * 7.1) * 0.9);
const host = (shape: number[], seed: number): HostTensor => ({ dtype: 'float32', shape, data: rnd(shape.reduce((a, b) => a * b, 1), seed) });
const rec = () => new Builder(new ShapeRecorder());

async function run(inputs: Tensor[], out: Tensor, feeds: Record<string, HostTensor>) {
  const s = await rt.load(compileGraph(inputs, { out }));
  return (await s.run(feeds)).out.data as Float32Array;
}

describe('SD 1.x blocks: shapes at tiny size', () => {
  it('resnet, down/upsample, transformer keep or change shapes as the UNet expects', () => {
    const x = input('x', [2, 32, 8, 8]);
    const temb = input('t', [2, 128]);
    expect(resnetBlock(rec(), x, 32, 64, { groups: 8, eps: 1e-5, temb }).shape).toEqual([2, 64, 8, 8]);
    expect(downsample(rec(), x, 32).shape).toEqual([2, 32, 4, 4]);
    expect(downsample(rec(), x, 32, true).shape).toEqual([2, 32, 4, 4]);
    expect(upsample(rec(), x, 32).shape).toEqual([2, 32, 16, 16]);
    expect(transformer2d(rec(), x, input('c', [2, 77, 64]), 32, { heads: 2, contextDim: 64, groups: 8, linearProjection: false }).shape).toEqual([2, 32, 8, 8]);
  });

  it('the tiny UNet maps [B,4,16,16] latents to [B,4,16,16]; text and VAE have their shapes', () => {
    expect(unet(rec(), cfg.unet, { sample: input('x', [3, 4, 16, 16]), timestep: input('t', [3]), context: input('c', [3, 77, 64]) }).shape).toEqual([3, 4, 16, 16]);
    const te = clipTextEncoder(rec(), cfg.text, input('ids', [2, 77], 'int64'), { eosIndex: input('eos', [2], 'int64') });
    expect(te.hidden.shape).toEqual([2, 77, 64]);
    expect(te.pooled!.shape).toEqual([2, 64]);
    const enc = vaeEncode(rec(), cfg.vae, input('im', [2, 3, 64, 64]));
    expect(enc.mean.shape).toEqual([2, 4, 16, 16]);
    expect(enc.logvar.shape).toEqual([2, 4, 16, 16]);
    expect(vaeDecode(rec(), cfg.vae, input('z', [2, 4, 16, 16])).shape).toEqual([2, 3, 64, 64]);
    expect(() => unet(rec(), cfg.unet, { sample: input('x', [1, 4, 10, 10]), timestep: input('t', [1]), context: input('c', [1, 77, 64]) })).toThrow(/multiple of 4/);
  });
});

describe('SD 1.x blocks: numerics against float64 references', () => {
  it('ResnetBlock2D with a time embedding and a conv shortcut', async () => {
    const w = new RandomWeights(3, 0.2);
    const x = input('x', [1, 8, 5, 5]), t = input('t', [1, 16]);
    const y = await run([x, t], resnetBlock(new Builder(w), x, 8, 16, { groups: 4, eps: 1e-5, temb: t, tembChannels: 16 }), { x: host([1, 8, 5, 5], 1), t: host([1, 16], 2) });
    const p = (k: string) => w.tensors.get(k)!.data as Float32Array;
    const xs = R.f64(rnd(200, 1));
    let h = R.conv2d(R.silu(R.groupNorm(xs, [1, 8, 5, 5], 4, p('norm1.weight'), p('norm1.bias'), 1e-5)), [1, 8, 5, 5], p('conv1.weight'), p('conv1.bias'), 16, 3, 1).y;
    const te = R.linear(R.silu(R.f64(rnd(16, 2))), 1, 16, p('time_emb_proj.weight'), 16, p('time_emb_proj.bias'));
    h = h.map((v, i) => v + te[Math.floor(i / 25)]);
    h = R.conv2d(R.silu(R.groupNorm(h, [1, 16, 5, 5], 4, p('norm2.weight'), p('norm2.bias'), 1e-5)), [1, 16, 5, 5], p('conv2.weight'), p('conv2.bias'), 16, 3, 1).y;
    const sc = R.conv2d(xs, [1, 8, 5, 5], p('conv_shortcut.weight'), p('conv_shortcut.bias'), 16, 1, 0).y;
    expect(R.maxRelErr(y, R.addArr(sc, h))).toBeLessThan(1e-4);
  });

  it('cross-attention with several heads (the UNet attn2)', async () => {
    const w = new RandomWeights(4, 0.3);
    const x = input('x', [1, 6, 8]), c = input('c', [1, 5, 12]);
    const y = await run([x, c], attention(new Builder(w), x, c, 8, { heads: 2, contextDim: 12, qkvBias: false }), { x: host([1, 6, 8], 3), c: host([1, 5, 12], 4) });
    const p = (k: string) => w.tensors.get(k)!.data as Float32Array;
    const xs = R.f64(rnd(48, 3)), cs = R.f64(rnd(60, 4));
    const q = R.linear(xs, 6, 8, p('to_q.weight'), 8), k = R.linear(cs, 5, 12, p('to_k.weight'), 8), v = R.linear(cs, 5, 12, p('to_v.weight'), 8);
    const want = R.linear(R.mha(q, k, v, 6, 5, 8, 2), 6, 8, p('to_out.0.weight'), 8, p('to_out.0.bias'));
    expect(R.maxRelErr(y, want)).toBeLessThan(1e-4);
  });

  it('a CLIP encoder layer: pre-LN, causal self-attention, quick_gelu MLP', async () => {
    const w = new RandomWeights(5, 0.2);
    const tc = { ...cfg.text, hiddenSize: 8, intermediateSize: 16, numHeads: 2 };
    const x = input('x', [1, 4, 8]);
    const y = await run([x], clipLayer(new Builder(w), tc, x), { x: host([1, 4, 8], 5) });
    const p = (k: string) => w.tensors.get(k)!.data as Float32Array;
    const xs = R.f64(rnd(32, 5));
    const a = R.layerNorm(xs, 4, 8, p('layer_norm1.weight'), p('layer_norm1.bias'), 1e-5);
    const q = R.linear(a, 4, 8, p('self_attn.q_proj.weight'), 8, p('self_attn.q_proj.bias'));
    const k = R.linear(a, 4, 8, p('self_attn.k_proj.weight'), 8, p('self_attn.k_proj.bias'));
    const v = R.linear(a, 4, 8, p('self_attn.v_proj.weight'), 8, p('self_attn.v_proj.bias'));
    const h = R.addArr(xs, R.linear(R.mha(q, k, v, 4, 4, 8, 2, true), 4, 8, p('self_attn.out_proj.weight'), 8, p('self_attn.out_proj.bias')));
    const m = R.linear(R.quickGelu(R.linear(R.layerNorm(h, 4, 8, p('layer_norm2.weight'), p('layer_norm2.bias'), 1e-5), 4, 8, p('mlp.fc1.weight'), 16, p('mlp.fc1.bias'))), 4, 16, p('mlp.fc2.weight'), 8, p('mlp.fc2.bias'));
    expect(R.maxRelErr(y, R.addArr(h, m))).toBeLessThan(1e-4);
  });

  it('the VAE mid-block attention over pixels (single head, residual)', async () => {
    const w = new RandomWeights(6, 0.3);
    const x = input('x', [1, 8, 3, 3]);
    const y = await run([x], vaeAttention(new Builder(w), x, 8, 4), { x: host([1, 8, 3, 3], 6) });
    const p = (k: string) => w.tensors.get(k)!.data as Float32Array;
    const xs = R.f64(rnd(72, 6));
    const n = R.groupNorm(xs, [1, 8, 3, 3], 4, p('group_norm.weight'), p('group_norm.bias'), 1e-6);
    const tok = new Float64Array(72);
    for (let c = 0; c < 8; c++) for (let i = 0; i < 9; i++) tok[i * 8 + c] = n[c * 9 + i];
    const q = R.linear(tok, 9, 8, p('to_q.weight'), 8, p('to_q.bias')), k = R.linear(tok, 9, 8, p('to_k.weight'), 8, p('to_k.bias')), v = R.linear(tok, 9, 8, p('to_v.weight'), 8, p('to_v.bias'));
    const o = R.linear(R.mha(q, k, v, 9, 9, 8, 1), 9, 8, p('to_out.0.weight'), 8, p('to_out.0.bias'));
    const want = xs.map((val, idx) => val + o[(idx % 9) * 8 + Math.floor(idx / 9)]);
    expect(R.maxRelErr(y, want)).toBeLessThan(1e-4);
  });
});
