// One Wan attention block against a direct JavaScript computation written from Wan's WanAttentionBlock: the
// shared time projection plus the block's own 6×dim table, chunked (shift, scale, gate) for self-attention then
// (shift, scale, gate) for the FFN; LayerNorm without affine modulated as norm(x)·(1 + scale) + shift; q and k
// RMS-normed over the full width (not per head), 3D RoPE on interleaved pairs (frame/row/col channels in the
// head's 4/4/4 split, angles pos·θ^(−2j/d_axis)), softmax(q·k/√d); the gated residual; norm3 (LayerNorm with
// affine) before cross-attention to the text with a plain residual; the FFN through GELU-tanh, gated.
import { afterAll, describe, expect, it } from 'vitest';
import * as K from '../../../kernels';
import { WAN_TINY, ropeAxes, type WanTransformerConfig } from '../../../kernels/wan/config';
import { wanBlock, wanRope, wanTokenPositions } from '../../../kernels/wan/transformer';
import { rand, runtime } from '../gradcheck';

afterAll(() => runtime().close());

const CFG: WanTransformerConfig = { ...WAN_TINY, name: 'wan-block-ref', dim: 24, ffnDim: 40, numHeads: 2, numLayers: 1, textDim: 24 };
const GRID: [number, number, number] = [2, 2, 2];
const CTX = 3;

type Vec = Float64Array;
const rows = (data: Float32Array, n: number, w: number): Vec[] => Array.from({ length: n }, (_, i) => Float64Array.from(data.subarray(i * w, (i + 1) * w)));

function reference(w: (name: string) => Float32Array, x: Vec[], e0: Vec[], ctx: Vec[]): Vec[] {
  const { dim: d, ffnDim: f, numHeads: H, eps } = CFG;
  const hd = d / H;
  const lin = (v: Vec, name: string, inF: number, outF: number) => {
    const W = w(`${name}.weight`), b = w(`${name}.bias`);
    return Float64Array.from({ length: outF }, (_, o) => { let s = b[o]!; for (let i = 0; i < inF; i++) s += W[o * inF + i]! * v[i]!; return s; });
  };
  const stats = (v: Vec) => { const m = v.reduce((a, b) => a + b, 0) / v.length; return [m, v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length] as const; };
  const layerNorm = (v: Vec, affine?: string) => {
    const [m, varc] = stats(v);
    const g = affine ? w(`${affine}.weight`) : undefined, b = affine ? w(`${affine}.bias`) : undefined;
    return v.map((a, i) => ((a - m) / Math.sqrt(varc + eps)) * (g ? g[i]! : 1) + (b ? b[i]! : 0));
  };
  const rms = (v: Vec, g: Float32Array) => { const ms = v.reduce((a, b) => a + b * b, 0) / v.length; return v.map((a, i) => (a / Math.sqrt(ms + eps)) * g[i]!); };
  const geluTanh = (a: number) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)));
  // Modulation: e0 (one row for all tokens) + the block's table, six vectors of width d.
  const table = w('blocks.0.modulation');
  const m = Array.from({ length: 6 }, (_, k) => Float64Array.from({ length: d }, (_, i) => e0[k]![i]! + table[k * d + i]!));
  const [shift1, scale1, gate1, shift2, scale2, gate2] = m;
  const mod = (v: Vec, sh: Vec, sc: Vec) => v.map((a, i) => a * (1 + sc[i]!) + sh[i]!);
  // RoPE: each head's pairs (2j, 2j+1); pairs [0, a0/2) turn by the frame, then rows, then cols.
  const axes = ropeAxes(CFG);
  const positions = wanTokenPositions(GRID);
  const rope = (v: Vec, pos: number[]) => {
    const out = Float64Array.from(v);
    for (let h = 0; h < H; h++) {
      let pair = 0;
      axes.forEach((a, ax) => {
        for (let j = 0; j < a / 2; j++, pair++) {
          const ang = pos[ax]! * 10000 ** (-(2 * j) / a);
          const i0 = h * hd + 2 * pair, re = v[i0]!, im = v[i0 + 1]!;
          out[i0] = re * Math.cos(ang) - im * Math.sin(ang);
          out[i0 + 1] = re * Math.sin(ang) + im * Math.cos(ang);
        }
      });
    }
    return out;
  };
  const attention = (q: Vec[], k: Vec[], v: Vec[]) => q.map((qi) => {
    const out = new Float64Array(d);
    for (let h = 0; h < H; h++) {
      const s = k.map((kj) => { let a = 0; for (let c = 0; c < hd; c++) a += qi[h * hd + c]! * kj[h * hd + c]!; return a / Math.sqrt(hd); });
      const mx = Math.max(...s), e = s.map((a) => Math.exp(a - mx)), z = e.reduce((a, b) => a + b, 0);
      v.forEach((vj, j) => { for (let c = 0; c < hd; c++) out[h * hd + c] += (e[j]! / z) * vj[h * hd + c]!; });
    }
    return out;
  });
  const sa = 'blocks.0.self_attn', ca = 'blocks.0.cross_attn';
  const xs = x.map((v) => mod(layerNorm(v), shift1!, scale1!));
  const q = xs.map((v, i) => rope(rms(lin(v, `${sa}.q`, d, d), w(`${sa}.norm_q.weight`)), positions[i]!));
  const k = xs.map((v, i) => rope(rms(lin(v, `${sa}.k`, d, d), w(`${sa}.norm_k.weight`)), positions[i]!));
  const v = xs.map((t) => lin(t, `${sa}.v`, d, d));
  const y = attention(q, k, v).map((t) => lin(t, `${sa}.o`, d, d));
  let h = x.map((t, i) => t.map((a, c) => a + y[i]![c]! * gate1![c]!));
  const n3 = h.map((t) => layerNorm(t, 'blocks.0.norm3'));
  const cq = n3.map((t) => rms(lin(t, `${ca}.q`, d, d), w(`${ca}.norm_q.weight`)));
  const ck = ctx.map((t) => rms(lin(t, `${ca}.k`, d, d), w(`${ca}.norm_k.weight`)));
  const cv = ctx.map((t) => lin(t, `${ca}.v`, d, d));
  const cy = attention(cq, ck, cv).map((t) => lin(t, `${ca}.o`, d, d));
  h = h.map((t, i) => t.map((a, c) => a + cy[i]![c]!));
  return h.map((t) => {
    const hidden = lin(mod(layerNorm(t), shift2!, scale2!), 'blocks.0.ffn.0', d, f).map(geluTanh);
    const o = lin(hidden, 'blocks.0.ffn.2', f, d);
    return t.map((a, c) => a + o[c]! * gate2![c]!);
  });
}

describe('Wan block against a direct computation', () => {
  it('self-attention with 3D RoPE, cross-attention and FFN, each modulated as Wan\'s block: within 1e-4', async () => {
    const L = GRID[0] * GRID[1] * GRID[2], d = CFG.dim;
    const rw = new K.RandomWeights(31, 0.35);
    const xIn = K.input('x', [1, L, d]), eIn = K.input('e0', [1, 1, 6, d]), cIn = K.input('ctx', [1, CTX, d]);
    const out = wanBlock(new K.Builder(rw).scope('blocks.0'), CFG, xIn, eIn, cIn, undefined, wanRope(CFG, GRID));
    const s = await runtime().load(K.compileGraph([xIn, eIn, cIn], { out }));
    const xd = rand(L * d), ed = rand(6 * d).map((v) => 0.5 * v), cd = rand(CTX * d);
    const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });
    const got = (await s.run({ x: f32([1, L, d], xd), e0: f32([1, 1, 6, d], ed), ctx: f32([1, CTX, d], cd) })).out.data as Float32Array;
    const weight = (name: string) => {
      const t = rw.tensors.get(name);
      if (!t) throw new Error(`no weight ${name} (has ${[...rw.tensors.keys()].join(', ')})`);
      return t.data as Float32Array;
    };
    const want = reference(weight, rows(xd, L, d), rows(ed, 6, d), rows(cd, CTX, d)).flatMap((r) => [...r]);
    expect(got.length).toBe(want.length);
    // The block changes its input by more than the bound, so the comparison means something.
    expect(Math.max(...want.map((v, i) => Math.abs(v - xd[i]!)))).toBeGreaterThan(0.1);
    expect(Math.max(...want.map((v, i) => Math.abs(v - got[i]!)))).toBeLessThan(1e-4);
  });
});
