// dequantizeLinear through ORT equals codes × scale computed on the host: per row for int8 codes, one
// scale for uint8 bytes; shapes that do not fit are refused by name.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';

const rt = new K.Runtime({ threads: 1 });
afterAll(() => rt.close());

async function run(t: K.Tensor) {
  const s = await rt.load(K.compileGraph([], { t }));
  return (await s.run({})).t.data as Float32Array;
}

describe('dequantizeLinear', () => {
  it('int8 codes with one scale per row', async () => {
    const rows = 3, cols = 5;
    const codes = Int8Array.from({ length: rows * cols }, (_, i) => ((i * 37) % 255) - 127);
    const scales = Float32Array.from([0.5, 0.01, 3]);
    const got = await run(K.dequantizeLinear(K.constant(codes, [rows, cols], 'int8'), K.constant(scales, [rows])));
    expect([...got]).toEqual([...codes].map((c, i) => Math.fround(c * scales[Math.floor(i / cols)])));
  });

  it('uint8 bytes with one scale give the byte values', async () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    const got = await run(K.dequantizeLinear(K.constant(bytes, [256], 'uint8'), 1));
    expect([...got]).toEqual([...bytes]);
  });

  it('refuses float codes and a scale of the wrong length', () => {
    expect(() => K.dequantizeLinear(K.constant([1, 2], [2]), 1)).toThrow(/int8 or uint8/);
    expect(() => K.dequantizeLinear(K.constant(new Int8Array(6), [2, 3], 'int8'), K.constant([1, 2, 3], [3]))).toThrow(/one value per row \(2\)/);
  });
});
