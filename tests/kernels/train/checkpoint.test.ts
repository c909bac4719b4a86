// Checkpoints: a run resumed from a checkpoint (weights, optimizer state, RNG) ends with exactly the
// weights of an uninterrupted run; pruning keeps the newest files.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { Rng } from '../../../kernels/random';
import { saveCheckpoint, loadCheckpoint, listCheckpoints, latestCheckpoint, pruneCheckpoints } from '../../../kernels/train/checkpoint';

const dir = mkdtempSync(join(tmpdir(), 'lg-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

async function makeStep(rt: K.Runtime) {
  const x = K.input('x', [8, 4]);
  const w = K.input('w', [4, 2]);
  const loss = K.reduceMean(K.square(K.sub(K.tanh(K.matmul(x, w)), 0.3)));
  return K.TrainStep.create(rt, { inputs: [x], params: { w }, loss, optimizer: K.adamw() });
}
const batch = (rng: Rng) => [{ x: ht([8, 4], Float32Array.from({ length: 32 }, () => rng.normal())) }];

describe('training checkpoints', () => {
  it('resuming from a checkpoint ends bit-identical to an uninterrupted run', async () => {
    const rt = new K.Runtime({ threads: 1 });
    const init = { w: ht([4, 2], new Float32Array([0.1, -0.2, 0.3, 0.05, -0.1, 0.2, 0.15, -0.3])) };
    const a = await makeStep(rt);
    await a.init(init);
    const rngA = new Rng(7);
    for (let s = 1; s <= 20; s++) await a.step(batch(rngA), 0.05, s);
    const full = (await a.read(false)).w.data;
    const b = await makeStep(rt);
    await b.init(init);
    const rngB = new Rng(7);
    for (let s = 1; s <= 12; s++) await b.step(batch(rngB), 0.05, s);
    await saveCheckpoint(dir, { step: 12, tensors: await b.read(), meta: { rng: rngB.state() } });
    const ck = await loadCheckpoint(latestCheckpoint(dir)!.path);
    expect(ck.step).toBe(12);
    const c = await makeStep(rt);
    await c.load(ck.tensors);
    const rngC = Rng.fromState(ck.meta.rng as never);
    for (let s = 13; s <= 20; s++) await c.step(batch(rngC), 0.05, s);
    expect((await c.read(false)).w.data).toEqual(full);
    await rt.close();
  });

  it('keeps only the newest N checkpoints', async () => {
    const d = join(dir, 'prune');
    for (const step of [10, 20, 30, 40]) await saveCheckpoint(d, { step, tensors: { w: ht([1], new Float32Array([step])) }, meta: {} });
    pruneCheckpoints(d, 2);
    expect(listCheckpoints(d).map((c) => c.step)).toEqual([30, 40]);
    expect(latestCheckpoint(d, 35)!.step).toBe(30);
    expect(existsSync(join(d, 'step-00000010.safetensors'))).toBe(false);
  });
});
