// The tiny pretraining scripts' shared pieces: the training noise-level draw (shifted uniform, or the
// logit-normal at shift 0), the command line, and a phase's scratch files (resume, reuse, recipe).
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../kernels/random';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { finishedPhase, parsePretrainArgs, phaseMetadata, polishCycleOptions, polishCycles, pretrainSigma, saveTrainState, startPhase, type PretrainPhase, type TrainState } from '../../../kernels/train/pretrain-cli';

const draws = (shift: number, n = 20000) => { const rng = new Rng(9); return Array.from({ length: n }, () => pretrainSigma(rng, shift)); };
const share = (xs: number[], p: (x: number) => boolean) => xs.filter(p).length / xs.length;

describe('pretrainSigma', () => {
  it('shift s > 0: uniform u mapped to s·u / (1 + (s − 1)·u), one uniform draw per level', () => {
    const a = new Rng(4), b = new Rng(4);
    for (let i = 0; i < 100; i++) {
      const u = b.uniform();
      expect(pretrainSigma(a, 3)).toBeCloseTo((3 * u) / (1 + 2 * u), 12);
    }
    // P(σ > 0.9) at shift 3: u > 0.75, a quarter of the draws.
    expect(share(draws(3), (x) => x > 0.9)).toBeCloseTo(0.25, 1);
    expect(share(draws(1), (x) => x > 0.9)).toBeCloseTo(0.1, 1);
  });

  it('shift 0: the logit-normal (0, 1), centred on 0.5 and rarely past 0.9', () => {
    const xs = draws(0);
    expect(xs.every((x) => x > 0 && x < 1)).toBe(true);
    expect(share(xs, (x) => x < 0.5)).toBeCloseTo(0.5, 1);
    // P(logit σ > ln 9 ≈ 2.197) for a standard normal: 0.014.
    expect(share(xs, (x) => x > 0.9)).toBeLessThan(0.03);
  });
});

describe('parsePretrainArgs', () => {
  const defaults = { steps: 10, lr: 1e-3, extendTo: [4000, 8000], name: 'x' };
  it('sets numbers and lists by their kebab-case flags, and --out / --scratch as absolute paths', () => {
    const { o, out, scratch } = parsePretrainArgs(['--steps', '7', '--extend-to', '100,200,', '--out', 'rel/out', '--scratch', '/tmp/s'], defaults, '/default/out', '/default/scratch');
    expect(o).toEqual({ steps: 7, lr: 1e-3, extendTo: [100, 200], name: 'x' });
    expect(out).toBe(resolve('rel/out'));
    expect(scratch).toBe('/tmp/s');
    expect(defaults.extendTo).toEqual([4000, 8000]);
    expect(parsePretrainArgs([], defaults, '/o', '/s')).toEqual({ o: defaults, out: '/o', scratch: '/s' });
  });

  it('refuses unknown flags, bad numbers, bad lists, non-numeric options and a flag without a value, naming the flag', () => {
    expect(() => parsePretrainArgs(['--stepz', '7'], defaults, '/o', '/s')).toThrow('pretrain: unknown option --stepz or bad value 7');
    expect(() => parsePretrainArgs(['--lr', 'fast'], defaults, '/o', '/s')).toThrow('pretrain: unknown option --lr or bad value fast');
    expect(() => parsePretrainArgs(['--name', '3'], defaults, '/o', '/s')).toThrow('pretrain: unknown option --name or bad value 3');
    expect(() => parsePretrainArgs(['--extend-to', '4000,8k'], defaults, '/o', '/s')).toThrow('pretrain: --extend-to takes whole numbers separated by commas, like 4000,8000 (got 4000,8k)');
    expect(() => parsePretrainArgs(['--steps'], defaults, '/o', '/s')).toThrow('pretrain: --steps needs a value');
  });
});

describe('stage D\'s cosine cycles', () => {
  it('cycle k runs steps[k − 1] from lr × decay^(k − 1); a cycle of 0 steps is skipped', () => {
    expect(polishCycles([5000, 3000], 2.5e-4, 0.5)).toEqual([{ cycle: 1, steps: 5000, lr: 2.5e-4 }, { cycle: 2, steps: 3000, lr: 1.25e-4 }]);
    expect(polishCycles([0, 10], 1, 0.1)).toEqual([{ cycle: 2, steps: 10, lr: 0.1 }]);
    expect(polishCycles([], 1, 0.5)).toEqual([]);
  });

  it('a cycle\'s recipe holds the steps of it and the cycles before, and the decay from cycle 2 on', () => {
    const o = { polishSteps: [5000, 3000, 1000], polishDecay: 0.5, polishLr: 1 };
    expect(polishCycleOptions(o, 1)).toEqual({ polishSteps: [5000], polishLr: 1 });
    expect(polishCycleOptions(o, 2)).toEqual({ polishSteps: [5000, 3000], polishLr: 1, polishDecay: 0.5 });
    expect(o.polishSteps).toEqual([5000, 3000, 1000]);
  });
});

describe('a pretraining phase\'s scratch files', () => {
  const one = (v: number): TrainState => ({ w: { dtype: 'float32', shape: [1], data: Float32Array.of(v) } });
  const phase = (recipe?: string): PretrainPhase<null> => {
    const dir = mkdtempSync(join(tmpdir(), 'lg-phase-'));
    return { label: 'stage X', stream: 'x-step', cfg: null, steps: 9, lr: 1, warmup: 0, progress: join(dir, 'progress.safetensors'), done: join(dir, 'done.safetensors'), recipe, init: (f) => ({ w: one(f.w.data[0] as number + 1).w }) };
  };
  const fakeStep = () => {
    const calls: string[] = [];
    return { calls, ts: { load: async (t: TrainState) => { calls.push(`load ${t.w.data[0]}`); }, init: async (t: TrainState) => { calls.push(`init ${t.w.data[0]}`); } } };
  };

  it('starts from its initial values through init, or resumes a checkpoint of its recipe (or of none) after its step', async () => {
    const p = phase('{"a":1}'), log: string[] = [];
    let f = fakeStep();
    expect(await startPhase(f.ts, p, () => one(5), (l) => log.push(l))).toBe(1);
    expect(f.calls).toEqual(['init 6']);
    await saveTrainState(p.progress, one(7), { step: '40', ...phaseMetadata(p) });
    f = fakeStep();
    expect(await startPhase(f.ts, p, () => one(5), (l) => log.push(l))).toBe(41);
    expect(f.calls).toEqual(['load 7']);
    expect(log).toEqual(['stage X: resuming at step 41']);
    await saveTrainState(p.progress, one(8), { step: '60' });
    f = fakeStep();
    expect(await startPhase(f.ts, p, () => one(5), () => {})).toBe(61);
    // Another recipe's checkpoint is not picked up.
    await saveTrainState(p.progress, one(9), { step: '80', recipe: '{"a":2}' });
    f = fakeStep();
    expect(await startPhase(f.ts, p, () => one(5), () => {})).toBe(1);
    expect(f.calls).toEqual(['init 6']);
  });

  it('reuses finished weights only of its own recipe', async () => {
    const p = phase('{"a":1}'), log: string[] = [];
    expect(await finishedPhase(p, () => {})).toBeUndefined();
    await saveTrainState(p.done, one(3), { recipe: '{"a":2}' });
    expect(await finishedPhase(p, () => {})).toBeUndefined();
    await saveTrainState(p.done, one(4), phaseMetadata(p));
    expect((await finishedPhase(p, (l) => log.push(l)))!.w.data[0]).toBe(4);
    expect(log).toEqual([`stage X: weights from ${p.done}`]);
    expect(phaseMetadata(phase())).toEqual({});
  });
});
