import { describe, expect, it } from 'vitest';
import { Rng } from '../../../kernels/random';
import { multistageStages, sampleTimesteps, stageAt, withStageRange } from '../../../kernels/schedules';

describe('multistage experts', () => {
  const wan = { boundaries: [0.875], switchEvery: 10 };

  it('splits the noise range at the boundary into high- and low-noise stages', () => {
    expect(multistageStages(wan)).toEqual([
      { index: 0, name: 'high_noise', minTimestep: 0.875, maxTimestep: 1 },
      { index: 1, name: 'low_noise', minTimestep: 0, maxTimestep: 0.875 },
    ]);
    expect(multistageStages({ boundaries: [0.9, 0.5] }).map((s) => s.name)).toEqual(['stage_0', 'stage_1', 'stage_2']);
  });

  it('switches every N steps', () => {
    const names = Array.from({ length: 45 }, (_, step) => stageAt(step, wan).name);
    expect(names.slice(0, 10).every((n) => n === 'high_noise')).toBe(true);
    expect(names.slice(10, 20).every((n) => n === 'low_noise')).toBe(true);
    expect(names.slice(20, 30).every((n) => n === 'high_noise')).toBe(true);
    expect(names[40]).toBe('high_noise');
    expect(stageAt(1, { boundaries: [0.875] }).name).toBe('low_noise'); // switchEvery defaults to 1
  });

  it('trains only the selected stages', () => {
    const lowOnly = { ...wan, trainStages: [false, true] };
    for (let step = 0; step < 50; step++) expect(stageAt(step, lowOnly).name).toBe('low_noise');
    expect(() => stageAt(0, { ...wan, trainStages: [false, false] })).toThrow(/at least one trained stage/);
  });

  it("draws each stage's timesteps inside its band", () => {
    const cfg = { timestepType: 'sigmoid' as const };
    for (const step of [0, 10]) {
      const stage = stageAt(step, wan);
      const ts = sampleTimesteps(new Rng(step), 5000, withStageRange(cfg, stage));
      expect(Math.min(...ts)).toBeGreaterThanOrEqual(stage.minTimestep);
      expect(Math.max(...ts)).toBeLessThanOrEqual(stage.maxTimestep);
    }
    expect(() => withStageRange({ timestepType: 'linear', maxTimestep: 0.5 }, stageAt(0, wan))).toThrow(/does not overlap stage high_noise/);
  });

  it('refuses malformed boundaries', () => {
    expect(() => multistageStages({ boundaries: [0.5, 0.9] })).toThrow(/descending/);
    expect(() => multistageStages({ boundaries: [1] })).toThrow(/descending values in \(0, 1\)/);
  });
});
