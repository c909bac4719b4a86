// A miniature UNet-ish block built through the Builder (diffusers module names): a 3×3 conv in, a
// transformer block (attention + GEGLU-less feed-forward), a 1×1 proj_out and a strided 3×3 conv.
import * as K from '../../../kernels';

export const IMAGE = [2, 4, 6, 6];

export function tinyModel(b: K.Builder, x: K.Tensor): K.Tensor {
  const h = b.conv('conv_in', x, 4, 8, 3, { padding: 1 });
  const [n, c, H, W] = h.shape;
  const tokens = K.reshape(K.transpose(h, [0, 2, 3, 1]), [n, H * W, c]);
  const blk = b.scope('mid_block.attentions.0.transformer_blocks.0');
  const q = blk.linear('attn1.to_q', tokens, 8, 8, false);
  const k = blk.linear('attn1.to_k', tokens, 8, 8, false);
  const v = blk.linear('attn1.to_v', tokens, 8, 8, false);
  const a = blk.linear('attn1.to_out.0', K.scaledDotProductAttention(q, k, v), 8, 8);
  const f = blk.linear('ff.net.2', K.gelu(blk.linear('ff.net.0.proj', K.add(tokens, a), 8, 16)), 16, 8);
  const back = K.transpose(K.reshape(K.add(K.add(tokens, a), f), [n, H, W, c]), [0, 3, 1, 2]);
  const out = b.conv('mid_block.attentions.0.proj_out', back, 8, 8, 1);
  return b.conv('conv_down', out, 8, 4, 3, { stride: 2, padding: 1 });
}

export const ALL_MODULES = [
  'conv_in',
  'mid_block.attentions.0.transformer_blocks.0.attn1.to_q',
  'mid_block.attentions.0.transformer_blocks.0.attn1.to_k',
  'mid_block.attentions.0.transformer_blocks.0.attn1.to_v',
  'mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0',
  'mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj',
  'mid_block.attentions.0.transformer_blocks.0.ff.net.2',
  'mid_block.attentions.0.proj_out',
  'conv_down',
];

export function imageData(seed = 1): Float32Array {
  const n = IMAGE.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed) * 0.8);
}

/** Random non-zero values for every adapter tensor (so up/w2 are not zero). */
export function randomValues(set: { paramSpecs: { key: string; shape: number[] }[] }, scale = 0.3): Record<string, K.HostTensor> {
  const out: Record<string, K.HostTensor> = {};
  let s = 7;
  for (const p of set.paramSpecs) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    out[p.key] = { dtype: 'float32', shape: p.shape, data: Float32Array.from({ length: n }, () => { s = (s * 1103515245 + 12345) >>> 0; return ((s / 2 ** 32) * 2 - 1) * scale; }) };
  }
  return out;
}
