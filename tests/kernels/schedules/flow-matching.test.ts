import { describe, expect, it } from 'vitest';
import {
  dynamicShiftMu,
  flowNoisy,
  flowTarget,
  imageSeqLen,
  shiftSigma,
  timeShiftExponential,
  unshiftSigma,
} from '../../../kernels/schedules';

describe('rectified flow', () => {
  const x0 = new Float32Array([1, -2, 0.5]);
  const eps = new Float32Array([0.3, 0.1, -1]);

  it('x_t runs from x0 at t=0 to noise at t=1, and the target is its t-derivative ε - x0', () => {
    expect(flowNoisy(x0, eps, 0)).toEqual(x0);
    expect(flowNoisy(x0, eps, 1)).toEqual(eps);
    const h = 1e-3;
    const a = flowNoisy(x0, eps, 0.4 - h);
    const b = flowNoisy(x0, eps, 0.4 + h);
    const target = flowTarget(x0, eps);
    for (let i = 0; i < 3; i++) expect((b[i] - a[i]) / (2 * h)).toBeCloseTo(target[i], 3);
    expect(() => flowNoisy(x0, eps, 1.5)).toThrow(/in \[0, 1\]/);
  });
});

describe('timestep shifts', () => {
  it('fixed shift: identity at s=1, moves mid-levels up for s>1, keeps the ends, and inverts', () => {
    expect(shiftSigma(0.3, 1)).toBeCloseTo(0.3, 15);
    expect(shiftSigma(0.5, 3)).toBeCloseTo(0.75, 15);
    expect(shiftSigma(0, 3)).toBe(0);
    expect(shiftSigma(1, 3)).toBe(1);
    for (const s of [0.5, 3, 7]) for (const x of [0.1, 0.5, 0.9]) expect(unshiftSigma(shiftSigma(x, s), s)).toBeCloseTo(x, 14);
  });

  it('the exponential time shift with μ equals a fixed shift of e^μ', () => {
    for (const mu of [0.5, 1.15, 2]) {
      for (const x of [0.05, 0.3, 0.5, 0.95]) expect(timeShiftExponential(mu, x)).toBeCloseTo(shiftSigma(x, Math.exp(mu)), 14);
    }
  });

  it('μ is linear in the latent token count: 0.5 at 256 tokens, 1.15 at 4096 (Flux defaults)', () => {
    expect(dynamicShiftMu(256)).toBeCloseTo(0.5, 15);
    expect(dynamicShiftMu(4096)).toBeCloseTo(1.15, 15);
    expect(dynamicShiftMu(2176)).toBeCloseTo(0.825, 15);
    expect(imageSeqLen(1024, 1024)).toBe(4096);
    expect(imageSeqLen(512, 512)).toBe(1024);
    expect(imageSeqLen(1024, 768)).toBe(3072);
    expect(dynamicShiftMu(4096, { maxShift: 1.16 })).toBeCloseTo(1.16, 15);
  });
});
