// Frozen weights as ONNX external data: read by ORT straight from a safetensors file, or spilled
// to a weights.bin beside the model, with results identical to in-protobuf initializers.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../kernels';
import { writeSafetensors, openSafetensors } from '../../kernels/io/safetensors';

const dir = mkdtempSync(join(tmpdir(), 'lg-ext-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const rt = new K.Runtime({ threads: 1 });
afterAll(() => rt.close());

const w = Float32Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i) * 0.1);
const xv = Float32Array.from({ length: 4 * 64 }, (_, i) => Math.cos(i));
const feed = { x: { dtype: 'float32' as const, shape: [4, 64], data: xv } };

async function reference() {
  const x = K.input('x', [4, 64]);
  const s = await rt.load(K.compileGraph([x], { y: K.matmul(x, K.constant(w, [64, 32], 'float32', 'w')) }));
  return (await s.run(feed)).y.data as Float32Array;
}

describe('external data', () => {
  it('reads a weight straight out of a safetensors file', async () => {
    const file = join(dir, 'weights.safetensors');
    await writeSafetensors(file, { other: { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) }, w: { dtype: 'F32', shape: [64, 32], data: w } });
    const reader = await openSafetensors(file);
    const e = reader.entry('w');
    const x = K.input('x', [4, 64]);
    const wt = K.externalConstant({ path: file, offset: e.fileOffset, length: e.byteLength }, [64, 32], 'float32', 'w');
    const g = K.compileGraph([x], { y: K.matmul(x, wt) }, { externalDir: join(dir, 'm1') });
    expect(g.path && existsSync(g.path)).toBeTruthy();
    expect(g.bytes.length).toBeLessThan(w.byteLength);
    const s = await rt.load(g);
    expect((await s.run(feed)).y.data).toEqual(await reference());
  });

  it('spills big in-memory initializers to weights.bin', async () => {
    const x = K.input('x', [4, 64]);
    const g = K.compileGraph([x], { y: K.matmul(x, K.constant(w, [64, 32], 'float32', 'w')) }, { externalDir: join(dir, 'm2'), externalThreshold: 1024 });
    expect(g.bytes.length).toBeLessThan(w.byteLength);
    const s = await rt.load(g);
    expect((await s.run(feed)).y.data).toEqual(await reference());
  });

  it('writes a file-backed graph to an automatic folder when none is named', async () => {
    const file = join(dir, 'weights.safetensors');
    const e = (await openSafetensors(file)).entry('w');
    const x = K.input('x', [4, 64]);
    const wt = K.externalConstant({ path: file, offset: e.fileOffset, length: e.byteLength }, [64, 32], 'float32', 'w');
    K.setExternalDataRoot(join(dir, 'auto'));
    const g = K.compileGraph([x], { y: K.matmul(x, wt) });
    expect(g.path!.startsWith(join(dir, 'auto'))).toBe(true);
    expect((await (await rt.load(g)).run(feed)).y.data).toEqual(await reference());
  });
});
