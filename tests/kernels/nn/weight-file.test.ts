// Frozen weights written to a scratch file (narrowed or quantised) reach ORT as external data: the
// layer computes the same values as with the weights in memory, the JS side keeps none of them, and
// PrecisionWeights narrows weights that its source leaves in a checkpoint file.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { PrecisionWeights } from '../../../kernels/nn/precision';
import { WeightFile, bytesOf } from '../../../kernels/nn/weight-file';
import { QuantizedWeights } from '../../../kernels/quant/graph-weights';
import { QUANT_SCHEMES } from '../../../kernels/quant';
import { Rng } from '../../../kernels/random';
import { rand, runtime } from '../gradcheck';

const rows = 96, cols = 160;
const weight = new Rng('weight-file').fillNormal(new Float32Array(rows * cols), 0, 0.05);
const host = () => new K.HostWeights(new Map([['layer.weight', { dtype: 'float32', shape: [rows, cols], data: weight }]]));
const dir = mkdtempSync(join(tmpdir(), 'wf-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function layerOutput(source: K.WeightSource, xs: Float32Array) {
  const x = K.input('x', [3, cols]);
  const g = K.compileGraph([x], { y: new K.Builder(source).linear('layer', x, cols, rows, false) }, { externalDir: join(dir, `g${Math.random().toString(36).slice(2)}`) });
  return (await (await runtime().load(g)).run({ x: { dtype: 'float32', shape: [3, cols], data: xs } })).y.data as Float32Array;
}

/** The constants a graph reads: how many are external data, and the most elements one held in memory has. */
function constants(t: K.Tensor) {
  const all = K.topoOrder([t]).filter((c) => c.source.kind === 'const');
  const inMemory = all.filter((c) => (c.source as { data?: unknown }).data);
  return { external: all.length - inMemory.length, largestInMemory: Math.max(0, ...inMemory.map((c) => c.size)) };
}

describe('weights written to a scratch file', () => {
  for (const scheme of QUANT_SCHEMES) {
    it(`${scheme}: a quantised layer read from the file equals the in-memory one, and no packed bytes stay in JS`, async () => {
      const file = new WeightFile(dir, scheme);
      const spilled = new QuantizedWeights(host(), { scheme, minElements: 1, file });
      const x = K.input('x', [3, cols]);
      // Packed bytes and scales from the file; in memory only tables and zero points (≤ 512 values).
      const read = constants(new K.Builder(spilled).linear('layer', x, cols, rows, false));
      expect(read.external).toBe(2);
      expect(read.largestInMemory).toBeLessThanOrEqual(512);
      expect(spilled.layers.get('layer.weight')!.quantized.packed.length).toBe(0);
      expect(file.bytes).toBeGreaterThan(spilled.summary().linear.quantBytes - 1);
      const xs = rand(3 * cols);
      const a = await layerOutput(spilled, xs);
      const b = await layerOutput(new QuantizedWeights(host(), { scheme, minElements: 1 }), xs);
      expect(a).toEqual(b);
      file.remove();
    });
  }

  for (const precision of ['bf16', 'fp16'] as const) {
    it(`${precision}: a weight left in its checkpoint file (external data) is narrowed, and written to the scratch file`, async () => {
      // A source like CheckpointWeights with external data: the float32 bytes stay in a file.
      const ckpt = join(dir, `ckpt-${precision}.bin`);
      writeFileSync(ckpt, bytesOf(weight));
      const external: K.WeightSource = { get: (_p, shape) => K.externalConstant({ path: ckpt, offset: 0, length: weight.byteLength }, shape, 'float32', 'layer.weight') };
      const file = new WeightFile(dir, precision);
      const narrowed = new PrecisionWeights(external, { precision, file });
      const x = K.input('x', [3, cols]);
      const y = new K.Builder(narrowed).linear('layer', x, cols, rows, false);
      expect(constants(y)).toEqual({ external: 1, largestInMemory: 0 });
      expect(K.topoOrder([y]).some((t) => t.source.kind === 'const' && t.dtype === (precision === 'bf16' ? 'bfloat16' : 'float16'))).toBe(true);
      expect(narrowed.storedBytes).toBe(rows * cols * 2);
      const xs = rand(3 * cols);
      expect(await layerOutput(narrowed, xs)).toEqual(await layerOutput(new PrecisionWeights(host(), { precision }), xs));
      file.remove();
    });
  }

  it('an fp16 weight stays in its fp16 checkpoint file when the precision is fp16', () => {
    const ckpt = join(dir, 'ckpt-f16.bin');
    writeFileSync(ckpt, new Uint8Array(rows * cols * 2));
    const ext = { path: ckpt, offset: 0, length: rows * cols * 2 };
    const fp16File: K.WeightSource = { get: (_p, shape) => K.cast(K.externalConstant(ext, shape, 'float16', 'layer.weight'), 'float32') };
    const y = new K.Builder(new PrecisionWeights(fp16File, { precision: 'fp16' })).linear('layer', K.input('x', [3, cols]), cols, rows, false);
    const read = K.topoOrder([y]).filter((t) => t.source.kind === 'const' && (t.source as { external?: unknown }).external);
    expect(read.map((t) => (t.source as { external: { path: string } }).external.path)).toEqual([ckpt]);
  });
});
