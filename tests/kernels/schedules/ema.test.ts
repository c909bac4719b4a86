import { describe, expect, it } from 'vitest';
import { emaDecayAt, emaInit, emaStep, emaUpdate } from '../../../kernels/schedules';

describe('EMA', () => {
  it("decay follows diffusers' EMAModel.get_decay: copy first, then the chosen rule, capped by decay", () => {
    const cfg = { decay: 0.99 };
    expect(emaDecayAt(1, cfg)).toBe(0);
    expect(emaDecayAt(2, cfg)).toBe(0.99);
    const ramp = { decay: 0.999, warmup: 'diffusers' as const };
    expect(emaDecayAt(2, ramp)).toBeCloseTo(2 / 11, 15); // s = 1: (1 + 1) / (10 + 1)
    expect(emaDecayAt(100, ramp)).toBeCloseTo(100 / 109, 15);
    expect(emaDecayAt(100_000, ramp)).toBe(0.999);
    const power = { decay: 0.9999, warmup: 'power' as const, power: 0.75 };
    expect(emaDecayAt(11, power)).toBeCloseTo(1 - 11 ** -0.75, 15);
    expect(emaDecayAt(5, { decay: 0.9, updateAfterStep: 10 })).toBe(0);
    expect(emaDecayAt(12, { decay: 0.9, updateAfterStep: 10 })).toBe(0.9);
    expect(emaDecayAt(2, { decay: 0.99, warmup: 'diffusers', minDecay: 0.5 })).toBe(0.5);
    expect(() => emaDecayAt(2, { decay: 1 })).toThrow(/\[0, 1\)/);
  });

  it('tracks a float64 reference average over 50 steps without changing its inputs', () => {
    const cfg = { decay: 0.9, warmup: 'diffusers' as const };
    let state = emaInit({ w: new Float32Array([0, 0]) });
    const ref = [0, 0];
    for (let step = 1; step <= 50; step++) {
      const weights = new Float32Array([Math.sin(step), step / 10]);
      const before = state.average.w.slice();
      const next = emaStep(state, { w: weights }, cfg);
      expect(state.average.w).toEqual(before); // immutable value
      state = next;
      const d = emaDecayAt(step, cfg);
      for (let i = 0; i < 2; i++) ref[i] = d * ref[i] + (1 - d) * weights[i];
    }
    expect(state.step).toBe(50);
    expect(state.average.w[0]).toBeCloseTo(ref[0], 5);
    expect(state.average.w[1]).toBeCloseTo(ref[1], 5);
  });

  it('emaUpdate with decay 0 copies the weights; mismatched tensors are named', () => {
    expect(emaUpdate(new Float32Array([5]), new Float32Array([2]), 0)).toEqual(new Float32Array([2]));
    expect(() => emaStep(emaInit({ a: new Float32Array(1) }), {}, { decay: 0.9 })).toThrow(/tensor "a"/);
  });
});
