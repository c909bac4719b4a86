import { describe, expect, it } from 'vitest';
import {
  ddpmNoisy,
  ddpmSchedule,
  ddpmTarget,
  ddpmTimestepIndex,
  minSnrWeight,
  sigmaAt,
  snrAt,
} from '../../../kernels/schedules';
import { Rng } from '../../../kernels/random';

describe('DDPM scaled-linear schedule (Stable Diffusion)', () => {
  const s = ddpmSchedule();

  it('betas run from 0.00085 to 0.012, linear in sqrt(beta)', () => {
    expect(s.betas.length).toBe(1000);
    expect(s.betas[0]).toBeCloseTo(0.00085, 15);
    expect(s.betas[999]).toBeCloseTo(0.012, 15);
    const mid = (Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) * (500 / 999)) ** 2;
    expect(s.betas[500]).toBeCloseTo(mid, 15);
  });

  it("reproduces SD's well-known sigma range (k-diffusion: 0.0292 to 14.6146)", () => {
    expect(sigmaAt(s, 0)).toBeCloseTo(0.0291675, 6);
    expect(sigmaAt(s, 999)).toBeCloseTo(14.614642, 4);
  });

  it('SNR = ᾱ/(1-ᾱ) = 1/σ² and falls monotonically with t', () => {
    for (const t of [0, 10, 250, 500, 999]) expect(snrAt(s, t) * sigmaAt(s, t) ** 2).toBeCloseTo(1, 12);
    for (let t = 1; t < 1000; t++) expect(snrAt(s, t)).toBeLessThan(snrAt(s, t - 1));
    expect(() => snrAt(s, 1000)).toThrow(/integer in \[0, 999\]/);
  });

  it('the v target recovers x0 and ε from x_t; the epsilon target is ε', () => {
    const rng = new Rng(1);
    const x0 = rng.fillNormal(new Float32Array(64));
    const eps = rng.fillNormal(new Float32Array(64));
    for (const t of [0, 400, 999]) {
      const ab = s.alphasCumprod[t];
      const xt = ddpmNoisy(x0, eps, t, s);
      const v = ddpmTarget('v_prediction', x0, eps, t, s);
      for (let i = 0; i < 64; i++) {
        expect(Math.sqrt(ab) * xt[i] - Math.sqrt(1 - ab) * v[i]).toBeCloseTo(x0[i], 5);
        expect(Math.sqrt(1 - ab) * xt[i] + Math.sqrt(ab) * v[i]).toBeCloseTo(eps[i], 5);
      }
      expect(ddpmTarget('epsilon', x0, eps, t, s)).toEqual(eps);
    }
  });

  it('min-SNR-γ weights: min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR+1) for v', () => {
    expect(minSnrWeight(20, 5, 'epsilon')).toBeCloseTo(0.25, 15);
    expect(minSnrWeight(2, 5, 'epsilon')).toBe(1);
    expect(minSnrWeight(20, 5, 'v_prediction')).toBeCloseTo(5 / 21, 15);
    expect(minSnrWeight(2, 5, 'v_prediction')).toBeCloseTo(2 / 3, 15);
    // Low-noise steps (large SNR) are down-weighted, high-noise ones kept.
    expect(minSnrWeight(snrAt(s, 0), 5, 'epsilon')).toBeLessThan(0.01);
    expect(minSnrWeight(snrAt(s, 900), 5, 'epsilon')).toBe(1);
    expect(() => minSnrWeight(1, 0, 'epsilon')).toThrow(/gamma must be > 0/);
  });

  it('maps a noise level in [0, 1] to an integer training timestep', () => {
    expect(ddpmTimestepIndex(0)).toBe(0);
    expect(ddpmTimestepIndex(0.5)).toBe(500);
    expect(ddpmTimestepIndex(1)).toBe(999);
  });
});
