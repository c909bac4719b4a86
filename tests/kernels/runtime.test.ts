// The runtime's session lifetime: past the memory budget the least recently used idle sessions are
// released and come back on their next run; handles sharing a graph do not release it for each other.
import { describe, it, expect } from 'vitest';
import * as K from '../../kernels';

/** y = sum(x · scale): a different scale is a different graph. */
const graph = (scale: number) => {
  const x = K.input('x', [4]);
  return K.compileGraph([x], { y: K.reduceSum(K.mul(x, scale)) });
};
const x = { dtype: 'float32' as const, shape: [4], data: new Float32Array([1, 2, 3, 4]) };

describe('Runtime sessions', () => {
  it('releases the least recently used idle session past the budget and reloads it on its next run', async () => {
    const a = graph(2), b = graph(3);
    // Room for one of the two graphs only.
    const rt = new K.Runtime({ threads: 1, sessionBudgetBytes: Math.max(a.bytes.byteLength + a.initializerBytes, b.bytes.byteLength + b.initializerBytes) + 1 });
    const sa = await rt.load(a);
    expect((await sa.run({ x })).y.data[0]).toBe(20);
    const sb = await rt.load(b);
    expect(rt.loadedSessions().count).toBe(1);
    expect(rt.stats.released).toBe(1);
    expect((await sb.run({ x })).y.data[0]).toBe(30);
    // A was released; running it loads it again (and releases B).
    expect((await sa.run({ x })).y.data[0]).toBe(20);
    expect(rt.stats.released).toBe(2);
    expect(rt.loadedSessions().count).toBe(1);
    await rt.close();
  });

  it('keeps a session another handle still holds', async () => {
    const g = graph(5);
    const one = new K.Runtime({ threads: 1 });
    const two = new K.Runtime({ threads: 1 });
    await one.load(g);
    const s2 = await two.load(g);
    await one.close();
    expect((await s2.run({ x })).y.data[0]).toBe(50);
    await two.close();
  });

  it('moves the buffers of feeds named in transfer to the worker (detached here) and copies the others', async () => {
    const rt = new K.Runtime({ threads: 1 });
    const s = await rt.load(graph(7));
    const moved = { ...x, data: new Float32Array([1, 2, 3, 4]) }, copied = { ...x, data: new Float32Array([1, 2, 3, 4]) };
    expect((await s.run({ x: moved }, { transfer: ['x'] })).y.data[0]).toBe(70);
    expect(moved.data.byteLength).toBe(0);
    expect((await s.run({ x: copied })).y.data[0]).toBe(70);
    expect(copied.data.byteLength).toBe(16);
    await rt.close();
  });
});
