// Quantised weights stay packed inside an ORT session: the optimised model ORT writes after its graph
// optimisations (constant folding included) keeps the packed bytes and no float32 copy of the weight,
// for every scheme. The control — a Cast×scale chain on the same constants — is folded into float32,
// which is what made quantised bases use more memory than float32 ones.
import { describe, it, expect } from 'vitest';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { quantizeWeight, type QuantScheme } from '../../../kernels/quant';
import { dequantizeInGraph } from '../../../kernels/quant/dequant';
import { Rng } from '../../../kernels/random';

const ort = createRequire(import.meta.url)('onnxruntime-node');
const rows = 256, cols = 512, fp32Bytes = rows * cols * 4;
const weight = new Rng('unfolded').fillNormal(new Float32Array(rows * cols), 0, 0.05);

/** Bytes of the model ORT writes after optimising a linear layer over `w` (level 'all', as the runtime uses). */
async function optimizedModelBytes(w: K.Tensor): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'lg-unfolded-'));
  try {
    const x = K.input('x', [4, cols]);
    const g = K.compileGraph([x], { y: K.linear(x, w) });
    const out = join(dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(g.bytes, { graphOptimizationLevel: 'all', executionProviders: ['cpu'], optimizedModelFilePath: out });
    await s.release();
    return statSync(out).size;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('quantised weights are not constant-folded by ORT', () => {
  const cases: [QuantScheme, number][] = [['int8', 1], ['nf4', 0.5], ['int4', 0.5], ['fp8_e4m3', 1]];
  for (const [scheme, bytesPerWeight] of cases) {
    it(`${scheme}: the optimised model holds the packed weight, not a float32 copy`, async () => {
      const q = quantizeWeight(weight, [rows, cols], scheme, {});
      const size = await optimizedModelBytes(dequantizeInGraph(q, 'layer'));
      expect(size).toBeGreaterThan(rows * cols * bytesPerWeight);
      expect(size).toBeLessThan(rows * cols * bytesPerWeight + fp32Bytes / 4);
    });
  }

  it('control: a Cast × scale chain on constants is folded into a float32 weight', async () => {
    const q = quantizeWeight(weight, [rows, cols], 'int8', {});
    const codes = K.constant(q.packed as Int8Array, [rows, cols], 'int8', 'layer.qweight');
    const w = K.mul(K.cast(codes, 'float32'), K.reshape(K.constant(q.scales, [rows], 'float32'), [rows, 1]));
    expect(await optimizedModelBytes(w)).toBeGreaterThanOrEqual(fp32Bytes);
  });
});
