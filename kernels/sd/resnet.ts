// The convolutional pieces shared by the UNet and the VAE: ResnetBlock2D, Downsample2D, Upsample2D
// (diffusers' module names: norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut; conv).
import type { Builder } from '../nn/builder';
import type { Tensor } from '../tensor';
import { add, silu } from '../ops/elementwise';
import { pad, reshape } from '../ops/shape-and-reduce';
import { upsampleNearest2x } from '../ops/nn';

export interface ResnetOptions { groups: number; eps: number; temb?: Tensor; tembChannels?: number }

/** GroupNorm → SiLU → 3×3 conv (+ projected time embedding) → GroupNorm → SiLU → 3×3 conv, plus the shortcut. */
export function resnetBlock(b: Builder, x: Tensor, inCh: number, outCh: number, o: ResnetOptions): Tensor {
  let h = b.conv('conv1', silu(b.groupNorm('norm1', x, o.groups, inCh, o.eps)), inCh, outCh, 3, { padding: 1 });
  if (o.temb) {
    const t = b.linear('time_emb_proj', silu(o.temb), o.tembChannels ?? o.temb.shape[1], outCh);
    h = add(h, reshape(t, [t.shape[0], outCh, 1, 1]));
  }
  h = b.conv('conv2', silu(b.groupNorm('norm2', h, o.groups, outCh, o.eps)), outCh, outCh, 3, { padding: 1 });
  const shortcut = inCh === outCh ? x : b.conv('conv_shortcut', x, inCh, outCh, 1);
  return add(shortcut, h);
}

/**
 * Halves the resolution with a stride-2 3×3 conv. The UNet pads 1 on every side; the VAE pads only
 * right and bottom (its conv has padding 0), which is why `vaeStyle` exists.
 */
export function downsample(b: Builder, x: Tensor, ch: number, vaeStyle = false): Tensor {
  if (!vaeStyle) return b.conv('conv', x, ch, ch, 3, { stride: 2, padding: 1 });
  return b.conv('conv', pad(x, [0, 0, 0, 0], [0, 0, 1, 1]), ch, ch, 3, { stride: 2, padding: 0 });
}

/** Nearest-neighbour 2× then a 3×3 conv. */
export function upsample(b: Builder, x: Tensor, ch: number): Tensor {
  return b.conv('conv', upsampleNearest2x(x), ch, ch, 3, { padding: 1 });
}
