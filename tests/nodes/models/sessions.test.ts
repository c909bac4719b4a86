// cachedSession keeps one session per weight source, runtime and key: the same owner and key on a
// second runtime gets its own session, which still runs after the first runtime is closed.
import { describe, it, expect } from 'vitest';
import * as K from '../../../kernels';
import { cachedSession } from '../../../nodes/models/sessions';

const doubling = () => { const x = K.input('x', [2]); return K.compileGraph([x], { y: K.mul(x, 2) }); };
const feed = { x: { dtype: 'float32' as const, shape: [2], data: Float32Array.from([1, 3]) } };

describe('cachedSession', () => {
  it('reuses a session on one runtime and makes another on a second runtime', async () => {
    const owner = {};
    const a = new K.Runtime(), b = new K.Runtime();
    let builds = 0;
    const build = () => { builds++; return doubling(); };
    const s1 = await cachedSession(owner, 'double', build, a);
    expect(await cachedSession(owner, 'double', build, a)).toBe(s1);
    expect(builds).toBe(1);
    const s2 = await cachedSession(owner, 'double', build, b);
    expect(s2).not.toBe(s1);
    expect(builds).toBe(2);
    await a.close();
    const out = await s2.run(feed);
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, 6]);
    await b.close();
  });
});
