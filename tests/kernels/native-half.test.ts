// Native half-precision multiplies for GPU EPs: a Builder given its EP's half dtypes runs a frozen layer
// whose weight is stored in one of them in that dtype (input cast down, output cast back, bias and LoRA
// float32), while the CPU EP keeps the float32 multiply after a Cast. Graph level on the symbolic graph (a
// layer, and the FLUX and Wan training graphs), then numerics on the WebGPU EP (Mesa's software Vulkan
// here) against the float32 CPU result.
import { describe, it, expect } from 'vitest';
import { mkdirSync } from 'node:fs';
import * as K from '../../kernels';
import { PrecisionWeights, nativeHalfDtypes, type Precision } from '../../kernels/nn/precision';
import { float16ToFloat32, float32ToFloat16 } from '../../kernels/io/dtypes';
import { AdapterSet } from '../../kernels/adapters/adapter-set';
import { FLUX2_TINY } from '../../kernels/flux/config';
import { buildFluxTrainGraph } from '../../kernels/flux/training-graph';
import { fluxKohyaName, fluxTargetSpec } from '../../kernels/flux/lora';
import { WAN_TINY } from '../../kernels/wan/config';
import { buildWanTrainGraph } from '../../kernels/wan/training-graph';
import { wanKohyaName, wanTargetSpec } from '../../kernels/wan/lora';

if (!process.env.XDG_RUNTIME_DIR) {
  mkdirSync('/tmp/loragraph-xdg', { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = '/tmp/loragraph-xdg';
}

// The linear's output [6, 48] is the conv's input [1, 8, 6, 6], so the linear's LoRA gradient flows
// back through the frozen conv.
const ROWS = 6, IN = 32, OUT = 48, C = 8, HW = 6, RANK = 4;
const r = (n: number, s: number, scale = 0.5) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * scale);
const f32 = (shape: number[], data: Float32Array): K.HostTensor => ({ dtype: 'float32', shape, data });

function weights() {
  return new K.HostWeights(new Map<string, K.HostTensor>([
    ['fc.weight', f32([OUT, IN], r(OUT * IN, 1, 0.2))], ['fc.bias', f32([OUT], r(OUT, 2))],
    ['conv.weight', f32([C, C, 3, 3], r(C * C * 9, 3, 0.2))], ['conv.bias', f32([C], r(C, 4))],
  ]));
}

/**
 * A linear and a conv with LoRA on both, the base stored in `precision`, built for `ep`. Returns the
 * inputs, the frozen linear's output alone, the loss and the LoRA gradients.
 */
function layers(precision: Precision, ep: K.ExecutionProvider) {
  const x = K.input('x', [ROWS, IN]);
  const lora = {
    fcDown: K.input('fc_down', [RANK, IN]), fcUp: K.input('fc_up', [OUT, RANK]),
    // A 1×1 down projection: the weight gradient of a 3×3 one (a grouped one-hot conv, channel
    // multiplier 9) comes out wrong on ORT 1.24's WebGPU EP in float32 already, a separate problem.
    convDown: K.input('conv_down', [RANK, C, 1, 1]), convUp: K.input('conv_up', [C, RANK, 1, 1]),
  };
  const hook: K.AdapterHook = (info, h) => info.kind === 'linear'
    ? K.linear(K.linear(h, lora.fcDown), lora.fcUp)
    : K.conv2d(K.conv2d(h, lora.convDown), lora.convUp);
  const b = new K.Builder(new PrecisionWeights(weights(), { precision, minElements: 16 }), hook);
  b.halfKernels = nativeHalfDtypes(ep);
  const y = b.linear('fc', x, IN, OUT);
  const yc = b.conv('conv', K.reshape(K.tanh(y), [1, C, HW, HW]), C, C, 3, { padding: 1 });
  const loss = K.reduceMean(K.square(K.tanh(yc)));
  const frozen = new K.Builder(new PrecisionWeights(weights(), { precision, minElements: 16 }));
  frozen.halfKernels = b.halfKernels;
  const base = frozen.linear('fc', x, IN, OUT, false);
  const params = Object.values(lora);
  return { inputs: [x, ...params], y, yc, base, loss, grads: K.grad(loss, params), lora };
}

/** The ops computing the frozen multiplies (Gemm and Conv of the weights), with their operands' dtypes. */
function frozenMultiplies(roots: K.Tensor[]) {
  const isFrozen = (w: K.Tensor): boolean => {
    const s = w.source;
    if (s.kind === 'const') return /(fc|conv)\.weight$/.test(s.name ?? '');
    return s.kind === 'op' && (s.op === 'after' || s.op === 'cast') && isFrozen(s.inputs[0]);
  };
  return K.topoOrder(roots).flatMap((t) => {
    const s = t.source;
    return s.kind === 'op' && (s.op === 'linear' || s.op === 'conv2d') && isFrozen(s.inputs[1])
      ? [{ op: s.op, x: s.inputs[0].dtype, w: s.inputs[1].dtype, y: t.dtype, weight: s.inputs[1] }] : [];
  });
}

describe('native half-precision multiplies', () => {
  it('GPU EPs multiply in the stored half dtype; the CPU EP casts the weight up and multiplies in float32', () => {
    for (const [precision, ep, dtype] of [['fp16', 'webgpu', 'float16'], ['fp16', 'cuda', 'float16'], ['bf16', 'cuda', 'bfloat16']] as const) {
      const g = layers(precision, ep);
      const muls = frozenMultiplies([g.y, g.yc]);
      expect(muls.map((m) => m.op).sort(), `${precision} on ${ep}`).toEqual(['conv2d', 'linear']);
      for (const m of muls) expect([m.x, m.w, m.y], `${precision} ${m.op} on ${ep}`).toEqual([dtype, dtype, dtype]);
      // Everything outside the multiply stays float32: the layer outputs and the LoRA gradients.
      expect([g.y.dtype, g.yc.dtype, ...g.grads.map((t) => t.dtype)]).toEqual(Array(6).fill('float32'));
      // The backward pass multiplies in half too: the gradient through the frozen conv to the linear's LoRA.
      const forward = new Set(K.topoOrder([g.loss]));
      const back = K.topoOrder(g.grads).filter((t) => !forward.has(t) && t.source.kind === 'op' && ['conv2dInputGrad', 'conv2d'].includes(t.source.op));
      expect(back.filter((t) => t.dtype === dtype).map((t) => t.source.kind === 'op' && t.source.op), `${precision} backward on ${ep}`).toEqual(['conv2dInputGrad']);
      K.compileGraph(g.inputs, { loss: g.loss, ...Object.fromEntries(g.grads.map((t, i) => [`g${i}`, t])) });
    }
    // CPU (and bf16 on WebGPU, which has no bf16 kernels): the float32 multiply after a Cast, as before.
    for (const [precision, ep, stored] of [['fp16', 'cpu', 'float16'], ['bf16', 'cpu', 'bfloat16'], ['bf16', 'webgpu', 'bfloat16']] as const) {
      const g = layers(precision, ep);
      const muls = frozenMultiplies([g.y, g.yc]);
      expect(muls.length).toBe(2);
      for (const m of muls) {
        expect([m.x, m.w, m.y], `${precision} ${m.op} on ${ep}`).toEqual(['float32', 'float32', 'float32']);
        const src = m.weight.source;
        expect(src.kind === 'op' && src.op === 'cast' && src.inputs[0].dtype === stored, `${m.op}: a Cast of the ${stored} weight`).toBe(true);
      }
    }
  });

  it('the FLUX and Wan LoRA training graphs multiply fp16 frozen weights natively on WebGPU, after a Cast on the CPU EP', () => {
    const half = () => new PrecisionWeights(new K.RandomWeights(21, 0.05), { precision: 'fp16', minElements: 16 });
    const graphs = {
      flux: (ep?: K.ExecutionProvider) => buildFluxTrainGraph({
        config: FLUX2_TINY, weights: half(), batch: 1, grid: [2, 2], textTokens: 4, ep,
        adapters: new AdapterSet({ rank: 4, alpha: 2, targets: fluxTargetSpec('ai_toolkit'), namer: fluxKohyaName }),
      }),
      wan: (ep?: K.ExecutionProvider) => buildWanTrainGraph({
        config: WAN_TINY, weights: half(), batch: 1, latentSize: [2, 2, 2], textTokens: 4, ep,
        adapters: new AdapterSet({ rank: 4, alpha: 2, targets: wanTargetSpec('blocks'), namer: wanKohyaName }),
      }),
    };
    // A frozen weight as the linear gets it: the fp16 constant itself, or a Cast of it, behind `after`s.
    const stored = (w: K.Tensor): K.Tensor | undefined => {
      const s = w.source;
      return s.kind === 'const' ? w : s.kind === 'op' && (s.op === 'after' || s.op === 'cast') ? stored(s.inputs[0]) : undefined;
    };
    const halfLinears = (loss: K.Tensor) => K.topoOrder([loss]).flatMap((t) => {
      const s = t.source;
      return s.kind === 'op' && s.op === 'linear' && stored(s.inputs[1])?.dtype === 'float16' ? [t.dtype] : [];
    });
    for (const [name, build] of Object.entries(graphs)) {
      const cpu = halfLinears(build().loss);
      expect(cpu.length, `${name}: fp16-stored linears`).toBeGreaterThan(4);
      expect(new Set(cpu), `${name} on cpu (the default)`).toEqual(new Set(['float32']));
      expect(halfLinears(build('cpu').loss)).toEqual(cpu);
      const gpu = halfLinears(build('webgpu').loss);
      expect(gpu.length).toBe(cpu.length);
      expect(new Set(gpu), `${name} on webgpu`).toEqual(new Set(['float16']));
    }
  });

  it('WebGPU: a fp16 LoRA layer forward and backward matches the float32 CPU result', async (ctx) => {
    const feeds = {
      x: f32([ROWS, IN], r(ROWS * IN, 10)),
      fc_down: f32([RANK, IN], r(RANK * IN, 12, 0.1)), fc_up: f32([OUT, RANK], r(OUT * RANK, 13, 0.1)),
      conv_down: f32([RANK, C, 1, 1], r(RANK * C, 14, 0.1)), conv_up: f32([C, RANK, 1, 1], r(C * RANK, 15, 0.1)),
    };
    const run = async (ep: K.ExecutionProvider) => {
      const g = layers('fp16', ep);
      const rt = new K.Runtime({ ep, threads: 1 });
      try {
        const s = await rt.load(K.compileGraph(g.inputs, { base: g.base, y: g.y, yc: g.yc, loss: g.loss, ...Object.fromEntries(g.grads.map((t, i) => [`g${i}`, t])) }));
        const out = await s.run(feeds);
        return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
      } finally { await rt.close(); }
    };
    const cpu = await run('cpu');
    let gpu: Record<string, Float32Array>;
    try {
      gpu = await run('webgpu');
    } catch (e) {
      console.warn(`skipped: the WebGPU EP could not run float16 Gemm/Conv here: ${(e as Error).message}`);
      return ctx.skip();
    }
    // Proof the multiply ran in fp16 on the adapter: the frozen output went through float16 (every value
    // is a float16 number), where the CPU EP's float32 multiply gives values between them. Without
    // shader-f16 ORT would place the float16 nodes on its CPU EP, which widens them to float32.
    const isHalf = (a: Float32Array) => { const h = float16ToFloat32(float32ToFloat16(a)); return a.every((v, i) => h[i] === v); };
    expect(isHalf(cpu.base), 'the CPU EP multiplies in float32').toBe(false);
    if (!isHalf(gpu.base)) {
      console.warn('skipped: this WebGPU adapter has no fp16 (the float16 multiplies ran in float32 on the CPU EP)');
      return ctx.skip();
    }
    // Tolerance: fp16 rounds the activations and the product to 11 significant bits (relative 2⁻¹¹ ≈ 5e-4
    // each); over 32–72-term sums of values ≤ 1 that stays well under 1% of the largest magnitude.
    for (const k of ['y', 'yc', 'loss', 'g0', 'g1', 'g2', 'g3']) {
      const a = cpu[k], b = gpu[k];
      const scale = Math.max(...a.map(Math.abs));
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      console.log(`${k}: max |webgpu fp16 − cpu fp32| = ${worst.toExponential(2)} (${(worst / scale).toExponential(2)} of max |cpu| ${scale.toExponential(2)})`);
      expect(worst / scale, k).toBeLessThan(1e-2);
      expect(worst, `${k} differs from float32 (fp16 really used)`).toBeGreaterThan(0);
    }
  });
});
