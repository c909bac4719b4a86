// Gradients flow through the whole tiny UNet into a LoRA-style parameter injected by the adapter hook:
// autodiff's gradient matches finite differences.
import { describe, it, expect } from 'vitest';
import { Builder, RandomWeights, constant, matmul, transpose, mul, type Tensor, type ModuleInfo } from '../../../kernels';
import { tinyConfig } from '../../../kernels/sd/config';
import { unet } from '../../../kernels/sd/unet';
import { gradCheck, rand } from '../gradcheck';

const cfg = tinyConfig(256);
const TARGET = 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k';

describe('tiny UNet gradient through an adapter hook', () => {
  it('d loss / d (LoRA down, up) on the cross-attention key projection matches finite differences', async () => {
    const rank = 2;
    const hooked: ModuleInfo[] = [];
    const worst = await gradCheck((down: Tensor, up: Tensor) => {
      const b = new Builder(new RandomWeights(11, 0.15), (info, x) => {
        if (info.module !== TARGET || info.kind !== 'linear') return undefined;
        hooked.push(info);
        return mul(matmul(matmul(x, transpose(down)), transpose(up)), 0.5);
      });
      return unet(b, cfg.unet, {
        sample: constant(rand(4 * 8 * 8), [1, 4, 8, 8]),
        timestep: constant([500], [1]),
        context: constant(rand(77 * 64), [1, 77, 64]),
      });
    }, [
      { shape: [rank, 64], data: rand(rank * 64, 0.5) },
      { shape: [32, rank], data: rand(32 * rank, 0.5) },
    ], { eps: 1e-2, directions: 3 });
    expect(hooked.map((h) => h.module)).toEqual([TARGET]);
    expect(worst).toBeLessThan(2e-2);
  });
});
