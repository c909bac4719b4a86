// Mixed precision: frozen weights stored in bf16/fp16 stay half-size inside ORT sessions (the cast to
// float32 is not folded at load), layers match a float32 reference on the rounded weights, gradients
// through a half-precision base pass finite differences, and a bf16 run of the tiny UNet's LoRA
// training tracks the fp32 run over 200 steps.
import { describe, it, expect } from 'vitest';
import * as K from '../../kernels';
import { PrecisionWeights, type Precision } from '../../kernels/nn/precision';
import { optimizedModel } from '../../kernels/onnx/inspect';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../../kernels/io/dtypes';
import { Rng } from '../../kernels/random';
import { tinyConfig } from '../../kernels/sd/config';
import { sdAdapters } from '../../kernels/sd/lora';
import { buildSdTrainGraph } from '../../kernels/sd/training-graph';
import { gradCheck, rand, runtime } from './gradcheck';

const rows = 256, cols = 512;
const weight = new Rng('precision').fillNormal(new Float32Array(rows * cols), 0, 0.05);
const host = () => new K.HostWeights(new Map([['layer.weight', { dtype: 'float32', shape: [rows, cols], data: weight }]]));
const rounded = (p: Precision) => (p === 'bf16' ? bfloat16ToFloat32(float32ToBfloat16(weight)) : float16ToFloat32(float32ToFloat16(weight)));

describe('half-precision frozen weights', () => {
  for (const precision of ['bf16', 'fp16'] as const) {
    it(`${precision}: the optimised model stores the weight in 2 bytes per value and the layer matches float32 on the rounded weight`, async () => {
      const x = K.input('x', [4, cols]);
      const b = new K.Builder(new PrecisionWeights(host(), { precision }));
      const g = K.compileGraph([x], { y: b.linear('layer', x, cols, rows, false) });
      const size = (await optimizedModel(g.bytes)).byteLength;
      expect(size).toBeGreaterThan(rows * cols * 2);
      expect(size).toBeLessThan(rows * cols * 2 + rows * cols); // a float32 copy would add 4 bytes per value

      const xs = rand(4 * cols);
      const y = (await (await runtime().load(g)).run({ x: { dtype: 'float32', shape: [4, cols], data: xs } })).y.data as Float32Array;
      const w = rounded(precision);
      let worst = 0;
      for (let i = 0; i < 4; i++) for (let r = 0; r < rows; r++) {
        let ref = 0;
        for (let c = 0; c < cols; c++) ref += xs[i * cols + c] * w[r * cols + c];
        worst = Math.max(worst, Math.abs(ref - y[i * rows + r]));
      }
      expect(worst).toBeLessThan(1e-4);
    });
  }

  it('gradients through a bf16 base (recomputed) into float32 LoRA parameters match finite differences', async () => {
    const worst = await gradCheck((x, down, up) => {
      const b = new K.Builder(new PrecisionWeights(host(), { precision: 'bf16' }), (info, h) => K.matmul(K.matmul(h, K.transpose(down)), K.transpose(up)));
      b.gradientCheckpointing = true;
      return b.block(() => K.tanh(b.linear('layer', x, cols, rows, false)));
    }, [{ shape: [2, cols] }, { shape: [2, cols], data: rand(2 * cols, 0.05) }, { shape: [rows, 2], data: rand(2 * rows, 0.05) }]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('tiny UNet LoRA training: the bf16 base tracks the fp32 base over 200 steps', async () => {
    const cfg = tinyConfig(256);
    const B = 1, S = 8, steps = 200;
    const base = new K.RandomWeights(7, 0.1);
    const rng = new Rng('bf16-track');
    const normal = (shape: number[]): K.HostTensor => ({ dtype: 'float32', shape, data: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))) });
    // A fixed small dataset: 4 batches of latents, noise and text states, cycled.
    const data = Array.from({ length: 4 }, (_, i) => ({
      latents: normal([B, 4, S, S]), noise: normal([B, 4, S, S]), context: normal([B, 77, 64]),
      timesteps: { dtype: 'int64' as const, shape: [B], data: BigInt64Array.from([BigInt(100 + 211 * i)]) },
    }));
    const run = async (precision: Precision) => {
      const adapters = sdAdapters(cfg, { rank: 4, alpha: 4, targets: { preset: 'attention' }, trainTextEncoder: false });
      const g = buildSdTrainGraph({ config: cfg, unetWeights: new PrecisionWeights(base, { precision, minElements: 1024 }), adapters, batch: B, latentSize: [S, S], gradientCheckpointing: true });
      const ts = await K.TrainStep.create(runtime(), { inputs: g.inputs, params: g.params, loss: g.loss, optimizer: K.adamw(), maxGradNorm: 1 });
      await ts.init(adapters.unet.initialValues(new Rng('bf16-track-init')));
      const losses: number[] = [];
      for (let s = 0; s < steps; s++) losses.push((await ts.step([data[s % data.length]], 1e-3, s + 1)).loss);
      await ts.dispose();
      return losses;
    };
    const fp32 = await run('fp32');
    const bf16 = await run('bf16');
    // Bound: per step, |bf16 − fp32| ≤ 5% of the fp32 loss (bf16 keeps 8 mantissa bits: ~0.4% weight
    // error), and training makes progress in both (the last 20 steps below the first 20).
    const rel = fp32.map((l, i) => Math.abs(bf16[i] - l) / l);
    expect(Math.max(...rel)).toBeLessThan(0.05);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    for (const curve of [fp32, bf16]) expect(mean(curve.slice(-20))).toBeLessThan(mean(curve.slice(0, 20)));
  }, 400_000);
});
