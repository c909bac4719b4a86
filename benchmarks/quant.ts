// `npm run bench:quant`: memory saved and error of each quantisation scheme on a 1024 -> 4096 Linear
// layer (weight [4096, 1024]) with random normal weights and inputs. The host columns use the
// reference dequantize + a float64 matmul; the ORT columns run the layer as an ONNX graph whose weight
// is dequantised in-graph (kernels/quant/dequant.ts) and time it against the float32 layer (ORT may
// constant-fold the dequantisation at load, so run times are close to float32's).
import { Rng } from '../kernels/random';
import { dequantizeWeight, quantizeWeight, type QuantizedWeight, type QuantizeOptions, type QuantScheme } from '../kernels/quant';
import { dequantizeInGraph } from '../kernels/quant/dequant';
import { compileGraph, constant, input, matmul, transpose, Runtime, type Tensor } from '../kernels';

const IN_FEATURES = 1024;
const OUT_FEATURES = 4096;
const BATCH = 32;

/** y[b, o] = Σ_i x[b, i] · W[o, i] — a Linear layer without bias, accumulated in float64. */
export function runLinear(x: Float32Array, batch: number, weight: Float32Array, outFeatures: number, inFeatures: number): Float32Array {
  const y = new Float32Array(batch * outFeatures);
  for (let b = 0; b < batch; b++) {
    const xo = b * inFeatures;
    for (let o = 0; o < outFeatures; o++) {
      const wo = o * inFeatures;
      let acc = 0;
      for (let i = 0; i < inFeatures; i++) acc += x[xo + i] * weight[wo + i];
      y[b * outFeatures + o] = acc;
    }
  }
  return y;
}

function relativeError(approx: Float32Array, exact: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < exact.length; i++) {
    num += (approx[i] - exact[i]) ** 2;
    den += exact[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const rng = new Rng('bench-quant');
// Kaiming-like scale, as a trained Linear weight roughly has.
const weight = rng.fork('weight').fillNormal(new Float32Array(OUT_FEATURES * IN_FEATURES), 0, 1 / Math.sqrt(IN_FEATURES));
const x = rng.fork('input').fillNormal(new Float32Array(BATCH * IN_FEATURES));
const exact = runLinear(x, BATCH, weight, OUT_FEATURES, IN_FEATURES);
const fp32Bytes = weight.byteLength;

const cases: { label: string; scheme: QuantScheme; opts?: QuantizeOptions }[] = [
  { label: 'int8 per-channel', scheme: 'int8' },
  { label: 'nf4 block 64', scheme: 'nf4', opts: { blockSize: 64 } },
  { label: 'int4 block 64', scheme: 'int4', opts: { blockSize: 64 } },
  { label: 'fp8 e4m3 per-tensor', scheme: 'fp8_e4m3', opts: { fp8Scale: 'tensor' } },
  { label: 'fp8 e4m3 per-channel', scheme: 'fp8_e4m3', opts: { fp8Scale: 'channel' } },
];

console.log(`Linear ${IN_FEATURES} -> ${OUT_FEATURES} (weight [${OUT_FEATURES}, ${IN_FEATURES}]), batch ${BATCH}, host matmul`);
console.log(
  ['scheme'.padEnd(22), 'fp32 bytes'.padStart(11), 'quant bytes'.padStart(12), 'ratio'.padStart(7), 'weight rel err'.padStart(15), 'output rel err'.padStart(15), 'quantize ms'.padStart(12)].join(' '),
);
for (const c of cases) {
  const t0 = performance.now();
  const q: QuantizedWeight = quantizeWeight(weight, [OUT_FEATURES, IN_FEATURES], c.scheme, c.opts);
  const ms = performance.now() - t0;
  const dq = dequantizeWeight(q);
  const y = runLinear(x, BATCH, dq, OUT_FEATURES, IN_FEATURES);
  console.log(
    [
      c.label.padEnd(22),
      String(fp32Bytes).padStart(11),
      String(q.bytes).padStart(12),
      (fp32Bytes / q.bytes).toFixed(2).padStart(7),
      relativeError(dq, weight).toExponential(3).padStart(15),
      relativeError(y, exact).toExponential(3).padStart(15),
      ms.toFixed(0).padStart(12),
    ].join(' '),
  );
}

// --- through ORT: the same layer with the weight dequantised inside the graph -------------------
const rt = new Runtime({ threads: 0 });
const xT = input('x', [BATCH, IN_FEATURES]);
const xFeed = { x: { dtype: 'float32' as const, shape: [BATCH, IN_FEATURES], data: x } };

async function ortLinear(w: Tensor) {
  const s = await rt.load(compileGraph([xT], { y: matmul(xT, transpose(w)) }));
  const y = (await s.run(xFeed)).y.data as Float32Array;
  const runs = 10;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await s.run(xFeed);
  return { y, ms: (performance.now() - t0) / runs };
}

const fp32 = await ortLinear(constant(weight, [OUT_FEATURES, IN_FEATURES], 'float32', 'weight'));
console.log(`\nORT (CPU EP), in-graph dequantisation; float32 layer ${fp32.ms.toFixed(2)} ms/run`);
console.log(['scheme'.padEnd(22), 'output rel err'.padStart(15), 'vs host ref'.padStart(12), 'ms/run'.padStart(8), 'time ×fp32'.padStart(11)].join(' '));
for (const c of cases) {
  const q = quantizeWeight(weight, [OUT_FEATURES, IN_FEATURES], c.scheme, c.opts);
  const r = await ortLinear(dequantizeInGraph(q, 'weight'));
  const hostY = runLinear(x, BATCH, dequantizeWeight(q), OUT_FEATURES, IN_FEATURES);
  console.log(
    [
      c.label.padEnd(22),
      relativeError(r.y, exact).toExponential(3).padStart(15),
      relativeError(r.y, hostY).toExponential(1).padStart(12),
      r.ms.toFixed(2).padStart(8),
      (r.ms / fp32.ms).toFixed(2).padStart(11),
    ].join(' '),
  );
}
await rt.close();
