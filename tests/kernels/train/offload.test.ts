// Layer offloading: a tiny FLUX.2 transformer with LoRA, its frozen weights streamed from a
// safetensors file block by block (or from host memory), gives the resident graph's loss and gradients,
// and three SGD-momentum steps with clipping, two accumulated micro-batches and an extra output land
// on the resident TrainStep's parameters; bf16 weights (fed widened) too.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K from '../../../kernels';
import { AdapterSet } from '../../../kernels/adapters/adapter-set';
import { writeSafetensors, type TensorToWrite } from '../../../kernels/io/safetensors';
import { indexSafetensors } from '../../../kernels/flux/load';
import { CheckpointWeights } from '../../../kernels/sd/checkpoint-weights';
import { FLUX2_TINY as CFG } from '../../../kernels/flux/config';
import { fluxTransformer, jointPositions } from '../../../kernels/flux/transformer';
import { fluxKohyaName, fluxTargetSpec } from '../../../kernels/flux/lora';
import { ropeTables } from '../../../kernels/dit';
import { OffloadedStep } from '../../../kernels/train/offload';
import { sgd } from '../../../kernels/optim';
import { PrecisionWeights } from '../../../kernels/nn/precision';
import { rand, runtime } from '../gradcheck';

const T = 5, ROWS = 2, COLS = 3;
const dir = mkdtempSync(join(tmpdir(), 'lg-offload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loss of the tiny transformer's prediction against a target, LoRA on ai-toolkit's targets. */
function build(weights: K.WeightSource, checkpoint: boolean) {
  const adapters = new AdapterSet({ rank: 2, targets: fluxTargetSpec('ai_toolkit'), namer: fluxKohyaName });
  const b = new K.Builder(weights, adapters.hook({ training: true }));
  b.gradientCheckpointing = checkpoint;
  const img = K.input('img', [1, ROWS * COLS, 128]), txt = K.input('txt', [1, T, CFG.contextDim]), t = K.input('t', [1]), target = K.input('target', [1, ROWS * COLS, 128]);
  const y = fluxTransformer(b, CFG, { img, txt, timesteps: t, rope: ropeTables(jointPositions(CFG, T, ROWS, COLS), CFG.axesDim, CFG.theta) });
  const loss = K.reduceMean(K.square(K.sub(y, target)));
  return { adapters, inputs: [img, txt, t, target], loss };
}

const feeds: Record<string, K.HostTensor> = {
  img: { dtype: 'float32', shape: [1, ROWS * COLS, 128], data: rand(ROWS * COLS * 128) },
  txt: { dtype: 'float32', shape: [1, T, CFG.contextDim], data: rand(T * CFG.contextDim) },
  t: { dtype: 'float32', shape: [1], data: new Float32Array([0.6]) },
  target: { dtype: 'float32', shape: [1, ROWS * COLS, 128], data: rand(ROWS * COLS * 128) },
};

async function checkpointFile() {
  const w = new K.RandomWeights(7, 0.1);
  build(w, false);
  const path = join(dir, 'tiny-flux2.safetensors');
  await writeSafetensors(path, [...w.tensors].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]));
  return { host: w, path };
}

function maxRelDiff(a: K.HostTensor, b: K.HostTensor) {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  let d = 0, s = 0;
  for (let i = 0; i < x.length; i++) { d = Math.max(d, Math.abs(x[i] - y[i])); s = Math.max(s, Math.abs(x[i])); }
  return d / Math.max(s, 1e-12);
}

describe('layer offloading', () => {
  it('streams each block\'s weights from the safetensors file and gives the resident loss and gradients', async () => {
    const { path } = await checkpointFile();
    const { tensors } = await indexSafetensors(path);
    const rt = runtime();
    // Resident: the whole graph in one session, weights as initializers.
    const resident = build(new CheckpointWeights(tensors, path), false);
    const params = resident.adapters.params;
    const init = resident.adapters.initialValues(3);
    // LoRA B starts at zero; give it values so every gradient path is exercised.
    for (const [n, v] of Object.entries(init)) if (/lora_up|lora_B/.test(n)) init[n] = { ...v, data: rand(v.data.length, 0.05) };
    const names = Object.keys(params);
    const gs = K.grad(resident.loss, names.map((n) => params[n]));
    const s = await rt.load(K.compileGraph([...resident.inputs, ...names.map((n) => params[n])], { loss: resident.loss, ...Object.fromEntries(gs.map((g, i) => [`g${i}`, g])) }));
    const want = await s.run({ ...feeds, ...init });

    // Offloaded: external constants (bytes stay in the file), read per segment run.
    const off = build(new CheckpointWeights(tensors, path, { external: true }), true);
    const step = await OffloadedStep.create(rt, { inputs: off.inputs, params: off.adapters.params, loss: off.loss, optimizer: K.adamw() });
    await step.init(init);
    const got = await step.gradients(feeds);
    expect(Math.abs(got.loss - (want.loss.data[0] as number)) / (want.loss.data[0] as number)).toBeLessThan(1e-5);
    names.forEach((n, i) => expect(maxRelDiff(want[`g${i}`], got.grads[n]), n).toBeLessThan(1e-4));
    // 2 double + 2 single blocks and the glue around them; the blocks of one kind share sessions.
    const { segments, sessions } = step.layout;
    expect(segments).toBeGreaterThanOrEqual(CFG.depthDouble + CFG.depthSingle + 2);
    expect(sessions).toBeLessThan(2 * segments);
    // What ORT holds of the model at once is one segment's weights, well under the whole file.
    const fileBytes = [...tensors.values()].reduce((a, t) => a + t.entry.byteLength, 0);
    expect(step.maxSegmentWeightBytes).toBeGreaterThan(0);
    expect(step.maxSegmentWeightBytes).toBeLessThan(fileBytes / 2);
    await step.dispose();
  });

  it('trains like the resident step: three SGD-momentum steps from host-memory weights reach the same parameters', async () => {
    const { host } = await checkpointFile();
    const rt = runtime();
    const a = build(host, false);
    const init = a.adapters.initialValues(5);
    // SGD rather than Adam: Adam's m/√v turns float32 round-off in near-zero gradients into whole-lr
    // steps, which would compare the optimiser's sensitivity rather than the gradients.
    const optimizer = sgd({ momentum: 0.9 });
    const common = { optimizer, maxGradNorm: 1e-3, accumulation: 2 };
    const resident = await K.TrainStep.create(rt, { inputs: a.inputs, params: a.adapters.params, loss: a.loss, extraOutputs: { half: K.mul(a.loss, 0.5) }, ...common });
    await resident.init(init);
    const b = build(host, true);
    const offloaded = await OffloadedStep.create(rt, { inputs: b.inputs, params: b.adapters.params, loss: b.loss, extraOutputs: { half: K.mul(b.loss, 0.5) }, ...common });
    const micro = [feeds, { ...feeds, target: { ...feeds.target, data: rand(feeds.target.data.length) } }];
    await offloaded.init(init);
    let first = NaN;
    for (let i = 1; i <= 3; i++) {
      const r = await resident.step(micro, 20, i);
      const o = await offloaded.step(micro, 20, i);
      expect(o.extra.half.data[0] as number).toBeCloseTo(r.extra.half.data[0] as number, 5);
      expect(Math.abs(o.loss - r.loss) / r.loss).toBeLessThan(1e-4);
      expect(Math.abs(o.gradNorm - r.gradNorm) / r.gradNorm).toBeLessThan(1e-4);
      if (i === 1) first = r.loss;
    }
    const [pr, po] = [await resident.read(false), await offloaded.read(false)];
    for (const n of Object.keys(pr)) expect(maxRelDiff(pr[n], po[n]), n).toBeLessThan(1e-4);
    // The parameters moved (the comparison is not between two untouched copies): lora_up started at 0.
    const up = Object.keys(pr).filter((n) => /lora_up/.test(n));
    for (const n of up) expect(Math.max(...(pr[n].data as Float32Array).map(Math.abs)), n).toBeGreaterThan(1e-4);
    // and the loss fell.
    expect((await resident.step(micro, 0, 4)).loss).toBeLessThan(first);
    await offloaded.dispose();
    await resident.dispose();
  });

  it('bf16 frozen weights (Load Model precision), which ORT cannot be fed, are widened per segment: the resident bf16 loss and gradients', async () => {
    const { host } = await checkpointFile();
    const rt = runtime();
    const bf16 = new PrecisionWeights(host, { precision: 'bf16', minElements: 16 });
    const a = build(bf16, false), b = build(bf16, true);
    const init = a.adapters.initialValues(3);
    for (const [n, v] of Object.entries(init)) if (/lora_up|lora_B/.test(n)) init[n] = { ...v, data: rand(v.data.length, 0.05) };
    const resident = await K.TrainStep.create(rt, { inputs: a.inputs, params: a.adapters.params, loss: a.loss, optimizer: sgd(), memoryLimitBytes: 0 });
    await resident.init(init);
    const offloaded = await OffloadedStep.create(rt, { inputs: b.inputs, params: b.adapters.params, loss: b.loss, optimizer: sgd(), memoryLimitBytes: 0 });
    await offloaded.init(init);
    const [r, o] = [await resident.step([feeds], 0.1, 1), await offloaded.step([feeds], 0.1, 1)];
    expect(Math.abs(o.loss - r.loss) / r.loss).toBeLessThan(1e-5);
    expect(Math.abs(o.gradNorm - r.gradNorm) / r.gradNorm).toBeLessThan(1e-4);
    const [pr, po] = [await resident.read(false), await offloaded.read(false)];
    for (const n of Object.keys(pr)) expect(maxRelDiff(pr[n], po[n]), n).toBeLessThan(1e-4);
    await offloaded.dispose();
    await resident.dispose();
  });

  it('refuses a model built without blocks, naming the setting, and a step over the memory limit before any session', async () => {
    const { host } = await checkpointFile();
    const m = build(host, false);
    await expect(OffloadedStep.create(runtime(), { inputs: m.inputs, params: m.adapters.params, loss: m.loss, optimizer: K.adamw() })).rejects.toThrow(/gradient checkpointing/);
    const c = build(host, true);
    const spec = { inputs: c.inputs, params: c.adapters.params, loss: c.loss, optimizer: K.adamw() };
    const fits = await OffloadedStep.create(runtime(), { ...spec, memoryLimitBytes: 0 });
    expect(fits.memoryEstimate.total).toBeGreaterThan(fits.memoryEstimate.runtime);
    await expect(OffloadedStep.create(runtime(), { ...spec, memoryLimitBytes: fits.memoryEstimate.total - 1, memorySettings: { batch: 1 } }))
      .rejects.toThrow(/offloaded training step.*batch/s);
    await fits.dispose();
  });
});
