// Each optimizer, run in the training graph (TrainStep, ORT, float32), ends 50 steps where a plain
// float64 JS implementation of its published update rule ends; 8-bit AdamW and Adafactor stay near AdamW.
import { describe, it, expect, afterAll } from 'vitest';
import * as K from '../../../kernels';
import { adafactor, adamw, adamw8bit, lion, prodigy, sgd, type Optimizer } from '../../../kernels/optim';
import * as R from './reference';

const rt = new K.Runtime({ threads: 1 });
afterAll(() => rt.close());

const STEPS = 50;
const lrAt = (base: number) => (t: number) => base * (0.5 + 0.5 * Math.cos((Math.PI * (t - 1)) / STEPS)); // cosine, exercises fed lr

async function runGraph(optimizer: Optimizer, lr: (t: number) => number, steps = STEPS, extra: Partial<K.TrainStepSpec> = {}) {
  const pr = R.graphProblem();
  const ts = await K.TrainStep.create(rt, { inputs: pr.inputs, params: pr.params, loss: pr.loss, optimizer, ...extra });
  const init = R.initial();
  await ts.init({ W: R.f32([R.OUT, R.IN], init.W), b: R.f32([R.OUT], init.b) });
  const losses: number[] = [];
  for (let t = 1; t <= steps; t++) losses.push((await ts.step([pr.feeds], lr(t), t)).loss);
  const out = await ts.read(true);
  await ts.dispose();
  return { W: out.W.data as Float32Array, b: out.b.data as Float32Array, losses, state: out };
}

/** Largest |graph − reference| over all parameter elements. */
function maxDiff(g: { W: Float32Array; b: Float32Array }, r: R.Params) {
  let m = 0;
  for (const k of ['W', 'b'] as const) for (let i = 0; i < r[k].length; i++) m = Math.max(m, Math.abs(g[k][i] - r[k][i]));
  return m;
}
/** How far the parameters moved from the start (the scale the differences are judged against). */
function travel(r: R.Params) {
  const s = R.initial();
  let m = 0;
  for (const k of ['W', 'b'] as const) for (let i = 0; i < r[k].length; i++) m = Math.max(m, Math.abs(r[k][i] - s[k][i]));
  return m;
}

// Tolerances are absolute, and each case must move its parameters by at least 20× its tolerance.
// float32 vs float64 round-off over 50 steps stays well under them, except that Prodigy's d grows
// ~2.5× per step early on and amplifies round-off (checked step by step: equal to ~1e-6 relative at
// first), so its bound is looser; AdamW8bit may pick a neighbouring code where float32 and float64
// land on different sides of a midpoint.
const cases: [string, Optimizer, R.RefOptimizer, number, number][] = [
  ['AdamW', adamw({ weightDecay: 0.05 }), R.refAdamW({ weightDecay: 0.05 }), 2e-2, 1e-4],
  ['SGD momentum', sgd({ momentum: 0.9, weightDecay: 0.01 }), R.refSgd({ momentum: 0.9, weightDecay: 0.01 }), 0.2, 1e-4],
  ['SGD nesterov', sgd({ momentum: 0.8, nesterov: true }), R.refSgd({ momentum: 0.8, nesterov: true }), 0.2, 1e-4],
  ['SGD dampening', sgd({ momentum: 0.9, dampening: 0.3 }), R.refSgd({ momentum: 0.9, dampening: 0.3 }), 0.2, 1e-4],
  ['Lion', lion({ weightDecay: 0.1 }), R.refLion({ weightDecay: 0.1 }), 2e-3, 1e-4],
  ['Adafactor relative step', adafactor(), R.refAdafactor(), 0, 1e-4],
  ['Adafactor lr + beta1 + decay', adafactor({ relativeStep: false, scaleParameter: false, beta1: 0.9, weightDecay: 0.01 }), R.refAdafactor({ relativeStep: false, scaleParameter: false, beta1: 0.9, weightDecay: 0.01 }), 2e-2, 1e-4],
  ['Adafactor warmup init', adafactor({ warmupInit: true }), R.refAdafactor({ warmupInit: true }), 0, 1e-6],
  ['Prodigy', prodigy(), R.refProdigy(), 1, 2e-2],
  ['Prodigy bias correction, safeguard, decay, growth', prodigy({ useBiasCorrection: true, safeguardWarmup: true, weightDecay: 0.01, growthRate: 1.5 }),
    R.refProdigy({ useBiasCorrection: true, safeguardWarmup: true, weightDecay: 0.01, growthRate: 1.5 }), 1, 1e-6],
  ['Prodigy coupled decay', prodigy({ weightDecay: 0.01, decouple: false, dCoef: 0.5 }), R.refProdigy({ weightDecay: 0.01, decouple: false, dCoef: 0.5 }), 1, 2e-2],
  ['AdamW8bit (2 blocks of W quantised)', adamw8bit({ min8bitSize: 64 }), R.refAdamW8bit({ min8bitSize: 64 }), 2e-2, 1e-3],
];

describe('optimizers match float64 references over 50 steps', () => {
  for (const [name, opt, ref, lr, tol] of cases) {
    it(name, async () => {
      const g = await runGraph(opt, lrAt(lr));
      const r = R.runReference(ref, STEPS, lrAt(lr));
      const moved = travel(r), diff = maxDiff(g, r);
      console.log(`${name}: parameters moved up to ${moved.toExponential(2)}, graph − reference up to ${diff.toExponential(2)}`);
      expect(moved).toBeGreaterThan(20 * tol);
      expect(diff).toBeLessThan(tol);
      expect(g.losses[STEPS - 1]).toBeLessThan(g.losses[0]);
    });
  }

  it('AdamW8bit keeps uint8 codes and one absmax per 256-value block', async () => {
    const g = await runGraph(adamw8bit({ min8bitSize: 64 }), lrAt(2e-2), 3);
    expect(g.state['W:m'].dtype).toBe('uint8');
    expect(g.state['W:m_absmax'].shape).toEqual([2]);
    expect(g.state['b:m'].dtype).toBe('float32');
  });

  it('AdamW8bit and Adafactor stay near AdamW on the same problem', async () => {
    const base = await runGraph(adamw({ weightDecay: 0 }), () => 2e-2);
    const q8 = await runGraph(adamw8bit({ weightDecay: 0, min8bitSize: 64 }), () => 2e-2);
    const af = await runGraph(adafactor({ relativeStep: false, scaleParameter: false, beta1: 0.9 }), () => 2e-2);
    const start = R.initial();
    // Relative distance between the displacements from the start: ‖Δa − Δb‖ / ‖Δb‖.
    const rel = (a: { W: Float32Array }, b: { W: Float32Array }) => {
      let num = 0, den = 0;
      for (let i = 0; i < b.W.length; i++) { num += (a.W[i] - b.W[i]) ** 2; den += (b.W[i] - start.W[i]) ** 2; }
      return Math.sqrt(num / den);
    };
    const d8 = rel(q8, base), daf = rel(af, base);
    expect(d8).toBeLessThan(0.1);
    expect(daf).toBeLessThan(0.5); // factored v and no bias correction: same direction, different step sizes
    expect(Math.abs(q8.losses[STEPS - 1] - base.losses[STEPS - 1]) / base.losses[STEPS - 1]).toBeLessThan(0.05);
    expect(af.losses[STEPS - 1]).toBeLessThan(base.losses[0] * 0.8);
    console.log(`distance from AdamW after ${STEPS} steps: AdamW8bit ${d8.toExponential(2)}, Adafactor ${daf.toExponential(2)}`);
  });
});
