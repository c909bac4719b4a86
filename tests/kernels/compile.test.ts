// The compiler: shared weights are emitted once, stopGradient blocks gradients, inputs are checked.
import { describe, it, expect } from 'vitest';
import * as K from '../../kernels';

describe('compileGraph', () => {
  it('emits a weight asked for twice (same name, same bytes) as one initializer', () => {
    const data = new Float32Array(64 * 64).fill(0.5);
    const x = K.input('x', [2, 64]);
    const w1 = K.constant(data, [64, 64], 'float32', 'layer.weight');
    const w2 = K.constant(data, [64, 64], 'float32', 'layer.weight');
    const g = K.compileGraph([x], { y: K.add(K.matmul(x, w1), K.matmul(x, w2)) });
    expect(g.initializerBytes).toBeLessThan(data.byteLength * 1.5);
    // Same name, different bytes: both kept.
    const w3 = K.constant(new Float32Array(64 * 64), [64, 64], 'float32', 'layer.weight');
    const g2 = K.compileGraph([x], { y: K.add(K.matmul(x, w1), K.matmul(x, w3)) });
    expect(g2.initializerBytes).toBeGreaterThanOrEqual(data.byteLength * 2);
  });

  it('stopGradient passes values but no gradient', async () => {
    const w = K.input('w', [3]);
    const loss = K.reduceSum(K.mul(w, K.stopGradient(w)));
    const [g] = K.grad(loss, [w]);
    const rt = new K.Runtime({ threads: 1 });
    const s = await rt.load(K.compileGraph([w], { loss, g }));
    const out = await s.run({ w: { dtype: 'float32', shape: [3], data: new Float32Array([1, 2, 3]) } });
    expect(out.loss.data[0]).toBe(14);
    expect(Array.from(out.g.data as Float32Array)).toEqual([1, 2, 3]); // not 2w
    await rt.close();
  });

  it('gives the same graph built twice the same bytes and hash (so its session is reused), another graph another', () => {
    const build = (scale: number) => {
      const x = K.input('x', [2, 8]);
      const w = K.input('w', [8, 8]);
      const loss = K.reduceSum(K.mul(K.matmul(x, w), scale));
      const [g] = K.grad(loss, [w]);
      return K.compileGraph([x, w], { loss, g });
    };
    const a = build(2);
    K.input('unrelated', [3]); // tensors made in between move the process-wide ids on
    const b = build(2);
    expect(b.hash).toBe(a.hash);
    expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
    expect(build(3).hash).not.toBe(a.hash);
  });

  it('names an input that is used but not listed', () => {
    const a = K.input('a', [2]);
    const b = K.input('forgotten', [2]);
    expect(() => K.compileGraph([a], { y: K.add(a, b) })).toThrow(/forgotten/);
  });
});
