import { describe, expect, it } from 'vitest';
import { lrAt, lrCurve, lrMultiplierAt, type LrScheduleConfig } from '../../../kernels/schedules';

const base = { learningRate: 1e-4, totalSteps: 100, warmupSteps: 10 };

describe('LR schedulers follow diffusers get_scheduler formulas', () => {
  it('warmup ramps linearly from 0 for every scheduler (first update uses lr 0)', () => {
    for (const scheduler of ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts'] as const) {
      const cfg: LrScheduleConfig = { ...base, scheduler };
      expect(lrMultiplierAt(0, cfg)).toBe(0);
      expect(lrMultiplierAt(5, cfg)).toBe(0.5);
      expect(lrMultiplierAt(10, cfg)).toBe(1);
    }
  });

  it('constant and constant_with_warmup stay at the base rate after warmup', () => {
    expect(lrAt(50, { ...base, scheduler: 'constant' })).toBe(1e-4);
    expect(lrAt(99, { ...base, scheduler: 'constant_with_warmup' })).toBe(1e-4);
    expect(lrAt(0, { ...base, warmupSteps: 0, scheduler: 'constant' })).toBe(1e-4);
  });

  it('linear: (total - step) / (total - warmup), reaching 0 at the end', () => {
    const cfg: LrScheduleConfig = { ...base, scheduler: 'linear' };
    expect(lrMultiplierAt(55, cfg)).toBeCloseTo(45 / 90, 15);
    expect(lrMultiplierAt(100, cfg)).toBe(0);
    expect(lrMultiplierAt(150, cfg)).toBe(0);
  });

  it('cosine: 0.5 (1 + cos(2π · cycles · progress)) with half a wave by default', () => {
    const cfg: LrScheduleConfig = { ...base, scheduler: 'cosine' };
    expect(lrMultiplierAt(55, cfg)).toBeCloseTo(0.5, 15); // progress 0.5
    expect(lrMultiplierAt(100, cfg)).toBeCloseTo(0, 15);
    for (let s = 10; s <= 100; s++) {
      const p = (s - 10) / 90;
      expect(lrMultiplierAt(s, cfg)).toBeCloseTo(Math.max(0, 0.5 * (1 + Math.cos(Math.PI * p))), 14);
    }
    // A full wave (num_cycles 1) comes back up to 1 at the end.
    expect(lrMultiplierAt(100, { ...cfg, numCycles: 1 })).toBeCloseTo(1, 15);
  });

  it('cosine_with_restarts: each of num_cycles waves restarts at 1; 0 after the last', () => {
    const cfg: LrScheduleConfig = { scheduler: 'cosine_with_restarts', learningRate: 1, totalSteps: 80, numCycles: 2 };
    expect(lrMultiplierAt(0, cfg)).toBe(1);
    expect(lrMultiplierAt(20, cfg)).toBeCloseTo(0.5, 15); // progress 0.25: halfway down the first wave
    expect(lrMultiplierAt(39, cfg)).toBeLessThan(0.01);
    expect(lrMultiplierAt(40, cfg)).toBe(1); // restart
    expect(lrMultiplierAt(60, cfg)).toBeCloseTo(0.5, 15);
    expect(lrMultiplierAt(80, cfg)).toBe(0);
  });

  it('lrCurve lists every step; bad input is refused with the reason', () => {
    const curve = lrCurve({ ...base, scheduler: 'linear' });
    expect(curve.length).toBe(100);
    expect(curve[5]).toBeCloseTo(0.5e-4, 18);
    expect(() => lrAt(-1, { ...base, scheduler: 'linear' })).toThrow(/non-negative integer/);
    expect(() => lrAt(1, { ...base, scheduler: 'polynomial' as never })).toThrow(/unknown lr scheduler "polynomial"/);
  });
});
