// The same small training run on the CPU and WebGPU execution providers (WebGPU runs on Mesa's software
// Vulkan where there is no GPU), with adapter-like state resident on the device between steps.
import { describe, it, expect } from 'vitest';
import { mkdirSync } from 'node:fs';
import * as K from '../../kernels';

if (!process.env.XDG_RUNTIME_DIR) {
  mkdirSync('/tmp/loragraph-xdg', { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = '/tmp/loragraph-xdg';
}

const r = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);
const ht = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

async function train(ep: K.ExecutionProvider) {
  const rt = new K.Runtime({ ep, threads: 1 });
  const x = K.input('x', [8, 16]);
  const w = K.constant(r(16 * 16, 5), [16, 16], 'float32', 'frozen.weight');
  const down = K.input('down', [4, 16]);
  const up = K.input('up', [16, 4]);
  const h = K.add(K.linear(x, w), K.linear(K.linear(x, down), up));
  const loss = K.reduceMean(K.square(K.sub(K.gelu(h), 0.25)));
  const ts = await K.TrainStep.create(rt, { inputs: [x], params: { down, up }, loss, optimizer: K.adamw(), maxGradNorm: 1 });
  await ts.init({ down: ht([4, 16], r(64, 1)), up: ht([16, 4], r(64, 2)) });
  const losses: number[] = [];
  for (let s = 1; s <= 10; s++) losses.push((await ts.step([{ x: ht([8, 16], r(128, 10 + s)) }], 1e-2, s)).loss);
  const final = await ts.read();
  await rt.close();
  return { losses, final };
}

describe('WebGPU execution provider', () => {
  it('matches the CPU provider on a small LoRA-style training run', async () => {
    const cpu = await train('cpu');
    const gpu = await train('webgpu');
    expect(cpu.losses[9]).toBeLessThan(cpu.losses[0]);
    for (let i = 0; i < 10; i++) expect(Math.abs(gpu.losses[i] - cpu.losses[i]) / cpu.losses[i]).toBeLessThan(1e-3);
    for (const k of ['down', 'up', 'down:m', 'up:v']) {
      const a = cpu.final[k].data as Float32Array;
      const b = gpu.final[k].data as Float32Array;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (Math.abs(a[i]) + 1e-3));
      expect(worst, k).toBeLessThan(1e-2);
    }
  });
});
