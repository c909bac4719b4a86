// SDXL's own pieces at tiny size: the size conditioning's Fourier features against a float64 reference
// in kohya's order, the text towers against the SD CLIP encoder they are built from (penultimate state
// = the state before the final norm; pooled = final-normed EOS state through text_projection), the
// UNet's dependence on label_emb's inputs, and finite-difference gradients through the new paths.
import { describe, it, expect, afterAll } from 'vitest';
import { Builder, RandomWeights, compileGraph, constant, input, Runtime, type HostTensor, type Tensor } from '../../../kernels';
import { SDXL_BASE, tinySdxlConfig } from '../../../kernels/sdxl/config';
import { addedEmbeddingInput, flippedCropLeft, sizeConditioningValues, sizeFeatures } from '../../../kernels/sdxl/conditioning';
import { bigGText, clipLPenultimate, sdxlTextEncode } from '../../../kernels/sdxl/text';
import { sdxlUnet } from '../../../kernels/sdxl/unet';
import { sdxlComponentTensors } from '../../../kernels/sdxl/keys';
import { clipTextEncoder } from '../../../kernels/sd/clip-text';
import { transformer2d } from '../../../kernels/sd/transformer2d';
import { gradCheck, rand } from '../gradcheck';

const cfg = tinySdxlConfig(300);
const rt = new Runtime({ threads: 1 });
afterAll(async () => { await rt.close(); });

async function run(inputs: Tensor[], outs: Record<string, Tensor>, feeds: Record<string, HostTensor>) {
  const s = await rt.load(compileGraph(inputs, outs));
  return s.run(feeds);
}
const f32 = (shape: number[], data: ArrayLike<number>): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) });
const ids = (b: number, seed: number): HostTensor => ({ dtype: 'int64', shape: [b, 77], data: BigInt64Array.from({ length: b * 77 }, (_, i) => BigInt((i * seed + 3) % 300)) });

describe('SDXL size conditioning', () => {
  it('six numbers in kohya order (original h, w; crop top, left; target h, w); a flip mirrors the crop left', () => {
    expect(sizeConditioningValues({ originalSize: [1200, 800], cropTopLeft: [16, 0], targetSize: [1152, 768] })).toEqual([1200, 800, 16, 0, 1152, 768]);
    expect(flippedCropLeft(768, 760)).toBe(8);
  });

  it('each number becomes dim Fourier features, cos first, frequencies 10000^(−i/half)', async () => {
    const dim = 8;
    const t = input('t', [2, 6]);
    const vals = [1024, 768, 0, 32, 1024, 1024, 512, 512, 7, 3, 512, 640];
    const out = (await run([t], { y: sizeFeatures(t, dim) }, { t: f32([2, 6], vals) })).y.data as Float32Array;
    expect(out.length).toBe(2 * 6 * dim);
    vals.forEach((v, k) => {
      for (let i = 0; i < dim / 2; i++) {
        const arg = v * Math.exp((-Math.log(10000) * i) / (dim / 2));
        expect(out[k * dim + i]).toBeCloseTo(Math.cos(arg), 4);
        expect(out[k * dim + dim / 2 + i]).toBeCloseTo(Math.sin(arg), 4);
      }
    });
  });

  it('label_emb input: pooled first, then the size features (2816 wide at full size)', () => {
    const p = input('p', [3, SDXL_BASE.textG.projectionDim]);
    expect(addedEmbeddingInput(p, input('t', [3, 6]), SDXL_BASE.sizeEmbeddingDim).shape).toEqual([3, 2816]);
    expect(() => sizeFeatures(input('t', [3, 5]), 8)).toThrow(/6 numbers/);
  });
});

describe('SDXL text towers', () => {
  it('CLIP-L penultimate = the SD CLIP encoder at clip skip 2 before its final layer norm', async () => {
    const w = new RandomWeights(7, 0.1);
    const x = input('ids', [2, 77], 'int64');
    const pen = clipLPenultimate(new Builder(w), cfg.textL, x);
    const b = new Builder(w).scope('text_model');
    const normed = b.layerNorm('final_layer_norm', pen, cfg.textL.hiddenSize, cfg.textL.layerNormEps);
    const skip2 = clipTextEncoder(new Builder(w), cfg.textL, x, { clipSkip: 2 }).hidden;
    const r = await run([x], { normed, skip2, pen }, { ids: ids(2, 5) });
    const a = r.normed.data as Float32Array, c = r.skip2.data as Float32Array;
    for (let i = 0; i < a.length; i += 37) expect(a[i]).toBeCloseTo(c[i], 5);
    // Without the final norm the penultimate state is not normalised: it differs from the normed one.
    expect(Math.max(...Array.from(r.pen.data as Float32Array, (v, i) => Math.abs(v - a[i])))).toBeGreaterThan(1e-2);
  });

  it('bigG pooled = text_projection · (final-normed state at the first EOS); context = [L | G] penultimate states', async () => {
    const w = new RandomWeights(11, 0.1);
    const x = input('ids', [2, 77], 'int64'), eos = input('eos', [2], 'int64');
    const g = bigGText(new Builder(w), cfg.textG, x, eos);
    const sd = clipTextEncoder(new Builder(w), cfg.textG, x, { eosIndex: eos });
    const both = sdxlTextEncode(new Builder(new RandomWeights(3, 0.1)), new Builder(w), cfg, x, x, eos);
    const r = await run([x, eos], { pooled: g.pooled, sdPooled: sd.pooled!, ctx: both.context, gHidden: g.hidden },
      { ids: ids(2, 9), eos: { dtype: 'int64', shape: [2], data: new BigInt64Array([4n, 12n]) } });
    const P = cfg.textG.projectionDim, D = cfg.textG.hiddenSize;
    const proj = w.tensors.get('text_projection.weight')!.data as Float32Array; // [P, D] as diffusers stores it
    const sdPooled = r.sdPooled.data as Float32Array, pooled = r.pooled.data as Float32Array;
    for (let b = 0; b < 2; b++) for (let o = 0; o < P; o++) {
      let s = 0;
      for (let i = 0; i < D; i++) s += proj[o * D + i] * sdPooled[b * D + i];
      expect(pooled[b * P + o]).toBeCloseTo(s, 4);
    }
    const W = cfg.textL.hiddenSize + cfg.textG.hiddenSize;
    expect(r.ctx.shape).toEqual([2, 77, W]);
    const ctx = r.ctx.data as Float32Array, gh = r.gHidden.data as Float32Array;
    for (let tok = 0; tok < 2 * 77; tok += 13) for (let i = 0; i < D; i++) expect(ctx[tok * W + cfg.textL.hiddenSize + i]).toBe(gh[tok * D + i]);
  });
});

describe('SDXL UNet', () => {
  it('has no attention at the first level and 2/10 transformer blocks per attention at full size', () => {
    const mods = sdxlComponentTensors(SDXL_BASE, 'unet').modules.map((m) => m.module);
    expect(mods.some((m) => m.startsWith('down_blocks.0.attentions'))).toBe(false);
    const blocks = (prefix: string) => new Set(mods.filter((m) => m.startsWith(prefix)).map((m) => /transformer_blocks\.(\d+)/.exec(m)?.[1]).filter(Boolean)).size;
    expect(blocks('down_blocks.1.attentions.0.')).toBe(2);
    expect(blocks('down_blocks.2.attentions.1.')).toBe(10);
    expect(blocks('mid_block.attentions.0.')).toBe(10);
    expect(blocks('up_blocks.0.attentions.2.')).toBe(10);
    expect(blocks('up_blocks.1.attentions.2.')).toBe(2);
    expect(mods.some((m) => m.startsWith('up_blocks.2.attentions'))).toBe(false);
    expect(sdxlComponentTensors(SDXL_BASE, 'unet').shapes.get('down_blocks.1.attentions.0.proj_in.weight')).toEqual([640, 640]);
  });

  it('its prediction depends on the pooled text and on every size number', async () => {
    const w = new RandomWeights(5, 0.05);
    const x = input('x', [1, 4, 8, 8]), t = input('t', [1]), c = input('c', [1, 77, cfg.unet.crossAttentionDim]);
    const p = input('p', [1, cfg.textG.projectionDim]), tid = input('tid', [1, 6]);
    const y = sdxlUnet(new Builder(w), cfg, { sample: x, timestep: t, context: c, pooled: p, timeIds: tid });
    expect(y.shape).toEqual([1, 4, 8, 8]);
    const s = await rt.load(compileGraph([x, t, c, p, tid], { y }));
    const base = { x: f32([1, 4, 8, 8], rand(256)), t: f32([1], [500]), c: f32([1, 77, cfg.unet.crossAttentionDim], rand(77 * cfg.unet.crossAttentionDim)), p: f32([1, cfg.textG.projectionDim], rand(cfg.textG.projectionDim)) };
    const at = async (tids: number[], pooled = base.p) => (await s.run({ ...base, p: pooled, tid: f32([1, 6], tids) })).y.data as Float32Array;
    const ref = await at([64, 64, 0, 0, 64, 64]);
    const differs = (a: Float32Array) => a.some((v, i) => Math.abs(v - ref[i]) > 1e-6);
    for (let k = 0; k < 6; k++) {
      const tids = [64, 64, 0, 0, 64, 64];
      tids[k] += 16;
      expect(differs(await at(tids)), `size number ${k}`).toBe(true);
    }
    expect(differs(await at([64, 64, 0, 0, 64, 64], f32([1, cfg.textG.projectionDim], rand(cfg.textG.projectionDim))))).toBe(true);
    expect(differs(await at([64, 64, 0, 0, 64, 64]))).toBe(false);
  });
});

describe('SDXL gradients (finite differences)', () => {
  it('through the size features and label_emb input', async () => {
    const worst = await gradCheck((p: Tensor, t: Tensor) => addedEmbeddingInput(p, t, 8), [{ shape: [2, 5] }, { shape: [2, 6] }]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('through a linear-projection spatial transformer of depth 2 (input and context)', async () => {
    const w = new RandomWeights(9, 0.2);
    const worst = await gradCheck((x: Tensor, c: Tensor) => transformer2d(new Builder(w), x, c, 16, { heads: 2, contextDim: 12, groups: 4, linearProjection: true, depth: 2 }),
      [{ shape: [1, 16, 2, 3] }, { shape: [1, 5, 12] }]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('through the whole tiny UNet into the pooled vector and size numbers (label_emb path)', async () => {
    const w = new RandomWeights(13, 0.05);
    const cx = new RandomWeights(1, 1);
    const worst = await gradCheck((p: Tensor, tid: Tensor) => {
      const ctx = cx.get('ctx', [1, 77, cfg.unet.crossAttentionDim]);
      const sample = cx.get('sample', [1, 4, 4, 4]);
      return sdxlUnet(new Builder(w), cfg, { sample, timestep: constant(new Float32Array([500]), [1]), context: ctx, pooled: p, timeIds: tid });
    }, [{ shape: [1, cfg.textG.projectionDim] }, { shape: [1, 6] }], { directions: 2 });
    expect(worst).toBeLessThan(3e-2);
  });
});
